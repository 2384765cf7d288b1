// Few-shot training: the hand-written gradient against finite differences,
// zero offsets against the training-free step, training on a synthetic
// few-shot problem, and typed errors that leave the network unchanged.

#include "adapter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "dmn.h"
#include "random.h"

namespace dualmem {
namespace {

std::vector<float> Gaussian(SplitMix64* random, int count, double sigma) {
  std::vector<float> values(count);
  for (float& value : values) {
    // Box-Muller from two uniforms. The test needs spread, not exact normals.
    double u = 1.0 - random->NextDouble(), v = random->NextDouble();
    value = static_cast<float>(sigma * std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307 * v));
  }
  return values;
}

std::vector<float> Unit(std::vector<float> values) {
  double sum = 0.0;
  for (float value : values) sum += static_cast<double>(value) * value;
  for (float& value : values) value = static_cast<float>(value / std::sqrt(sum));
  return values;
}

// Classes whose means differ only in the first `signal` dimensions while the
// other dimensions carry large noise: a per-dimension query scale can learn
// to ignore them, which the training-free readout cannot.
struct Problem {
  int dim, classes, signal;
  std::vector<std::vector<float>> means;
  SplitMix64 random{99};

  Problem(int dim_, int classes_, int signal_) : dim(dim_), classes(classes_), signal(signal_) {
    for (int c = 0; c < classes; ++c) {
      std::vector<float> mean = Gaussian(&random, dim, 0.0);
      std::vector<float> head = Gaussian(&random, signal, 1.0);
      for (int i = 0; i < signal; ++i) mean[i] = head[i];
      means.push_back(Unit(mean));
    }
  }
  // Noise of shots and test queries, in the signal and the other dimensions.
  double shot_signal_noise = 0.05, shot_nuisance = 0.2;

  std::vector<float> Sample(int c) { return Sample(c, shot_signal_noise, shot_nuisance); }
  std::vector<float> Sample(int c, double signal_noise, double nuisance) {
    std::vector<float> x = means[c];
    std::vector<float> a = Gaussian(&random, dim, 1.0);
    for (int i = 0; i < dim; ++i) x[i] += static_cast<float>(a[i] * (i < signal ? signal_noise : nuisance));
    return Unit(x);
  }
};

std::unique_ptr<DualMemoryNetwork> MakeNetwork(Problem* problem, int shots, int views,
                                               double text_noise) {
  std::unique_ptr<DualMemoryNetwork> network;
  EXPECT_TRUE(DualMemoryNetwork::Create(problem->dim, DmnConfig(), &network).ok());
  for (int c = 0; c < problem->classes; ++c) {
    std::vector<float> text = problem->Sample(c, text_noise, text_noise);
    EXPECT_TRUE(network->AddClass(text.data(), text.size()).ok());
  }
  for (int s = 0; s < shots; ++s) {
    for (int c = 0; c < problem->classes; ++c) {
      std::vector<float> all;
      for (int v = 0; v < views; ++v) {
        std::vector<float> x = problem->Sample(c);
        all.insert(all.end(), x.begin(), x.end());
      }
      EXPECT_TRUE(network->AddShot(c, all.data(), all.size(), views).ok());
    }
  }
  return network;
}

// A small memory with every kind of slot: 3 classes, text slots and two
// shots of two views each per class.
AdapterMemory SmallMemory(int dim) {
  SplitMix64 random(5);
  AdapterMemory memory;
  memory.dim = dim;
  memory.num_classes = 3;
  memory.beta = 5.5f;
  memory.logit_scale = 20.0f;
  memory.class_begin.push_back(0);
  int64_t shot = 0;
  for (int c = 0; c < 3; ++c) {
    std::vector<float> text = Unit(Gaussian(&random, dim, 1.0));
    memory.text.insert(memory.text.end(), text.begin(), text.end());
    memory.slots.insert(memory.slots.end(), text.begin(), text.end());
    memory.slot_shot.push_back(-1);
    for (int s = 0; s < 2; ++s, ++shot) {
      for (int v = 0; v < 2; ++v) {
        std::vector<float> x = Unit(Gaussian(&random, dim, 1.0));
        memory.slots.insert(memory.slots.end(), x.begin(), x.end());
        memory.slot_shot.push_back(shot);
      }
    }
    memory.class_begin.push_back(static_cast<int>(memory.slot_shot.size()));
  }
  return memory;
}

TEST(Adapter, GradientMatchesFiniteDifferences) {
  std::unique_ptr<Adapter> adapter = Adapter::Untrained(SmallMemory(8));
  SplitMix64 random(17);
  std::vector<double> parameters(adapter->num_parameters());
  for (double& value : parameters) value = 0.1 * (random.NextDouble() - 0.5);
  const std::vector<int>& queries = adapter->shot_slots();
  const double smoothing = 0.1;

  std::vector<double> gradient, unused;
  adapter->LossAndGradient(parameters, queries, smoothing, &gradient);

  const double step = 1e-6;
  for (int group = 0; group < Adapter::kNumGroups; ++group) {
    double difference = 0.0, norm_analytic = 0.0, norm_numeric = 0.0;
    for (size_t i = adapter->group_offset(group); i < adapter->group_offset(group + 1); ++i) {
      std::vector<double> plus = parameters, minus = parameters;
      plus[i] += step;
      minus[i] -= step;
      double numeric = (adapter->LossAndGradient(plus, queries, smoothing, &unused) -
                        adapter->LossAndGradient(minus, queries, smoothing, &unused)) /
                       (2 * step);
      difference += (numeric - gradient[i]) * (numeric - gradient[i]);
      norm_analytic += gradient[i] * gradient[i];
      norm_numeric += numeric * numeric;
    }
    double relative = std::sqrt(difference) /
                      std::max(1e-12, std::max(std::sqrt(norm_analytic), std::sqrt(norm_numeric)));
    EXPECT_GT(std::sqrt(norm_analytic), 1e-8) << Adapter::GroupName(group) << " has no gradient";
    EXPECT_LT(relative, 1e-3) << Adapter::GroupName(group) << ": |numeric - analytic| / |g| = "
                              << relative << ", expected < 1e-3";
  }
}

void ExpectSameOutputs(const StepOutput& expected, const StepOutput& actual, double tolerance,
                       int step) {
  const std::vector<float> StepOutput::*fields[] = {&StepOutput::text, &StepOutput::confident,
                                                    &StepOutput::static_probs,
                                                    &StepOutput::dynamic, &StepOutput::fused};
  const char* names[] = {"text", "confident", "static", "dynamic", "fused"};
  for (int f = 0; f < 5; ++f) {
    const std::vector<float>& a = expected.*fields[f];
    const std::vector<float>& b = actual.*fields[f];
    ASSERT_EQ(a.size(), b.size());
    for (size_t c = 0; c < a.size(); ++c) {
      EXPECT_NEAR(a[c], b[c], tolerance) << names[f] << "[" << c << "] at step " << step;
    }
  }
  EXPECT_EQ(expected.label, actual.label) << "step " << step;
  EXPECT_EQ(expected.inserted, actual.inserted) << "step " << step;
}

// A learning rate of 0 keeps every offset at zero but switches Step to the
// adapter's explicit readout, which must equal the training-free one.
TEST(Adapter, ZeroOffsetsMatchTrainingFreeStep) {
  Problem problem_a(64, 5, 16), problem_b(64, 5, 16);
  std::unique_ptr<DualMemoryNetwork> plain = MakeNetwork(&problem_a, 3, 2, 0.3);
  std::unique_ptr<DualMemoryNetwork> adapted = MakeNetwork(&problem_b, 3, 2, 0.3);
  TrainConfig config;
  config.epochs = 2;
  config.learning_rate = 0.0f;
  TrainResult result;
  ASSERT_TRUE(adapted->Train(config, &result).ok());
  ASSERT_TRUE(adapted->trained());

  StepOutput expected, actual;
  for (int step = 0; step < 40; ++step) {
    std::vector<float> views;
    for (int v = 0; v < 4; ++v) {
      std::vector<float> x = problem_a.Sample(step % 5, 0.1, 0.3);
      views.insert(views.end(), x.begin(), x.end());
    }
    ASSERT_TRUE(plain->Step(views.data(), views.size(), 4, step, true, &expected).ok());
    ASSERT_TRUE(adapted->Step(views.data(), views.size(), 4, step, true, &actual).ok());
    ExpectSameOutputs(expected, actual, 1e-6, step);
  }
}

double StaticAccuracy(DualMemoryNetwork* network, Problem* problem, int per_class) {
  StepOutput out;
  int correct = 0;
  for (int i = 0; i < per_class; ++i) {
    for (int c = 0; c < problem->classes; ++c) {
      std::vector<float> x = problem->Sample(c);
      EXPECT_TRUE(network->Step(x.data(), x.size(), 1, 0, false, &out).ok());
      int best = 0;
      for (int k = 1; k < problem->classes; ++k) {
        if (out.static_probs[k] > out.static_probs[best]) best = k;
      }
      correct += best == c;
    }
  }
  return static_cast<double>(correct) / (per_class * problem->classes);
}

TEST(Adapter, TrainingReducesLossAndImprovesHeldOutAccuracy) {
  Problem problem(64, 10, 8);
  problem.shot_signal_noise = 0.15;
  problem.shot_nuisance = 0.4;
  std::unique_ptr<DualMemoryNetwork> network = MakeNetwork(&problem, 8, 1, 0.5);
  SplitMix64 saved = problem.random;
  double before = StaticAccuracy(network.get(), &problem, 40);

  TrainConfig config;
  config.epochs = 30;
  TrainResult result;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(network->Train(config, &result).ok());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(result.loss_per_epoch.size(), 30u);
  problem.random = saved;  // the same held-out queries as before training
  double after = StaticAccuracy(network.get(), &problem, 40);
  std::printf("loss %.4f -> %.4f, held-out static accuracy %.3f -> %.3f, %.3f s\n",
              result.loss_per_epoch.front(), result.loss_per_epoch.back(), before, after, seconds);
  EXPECT_LT(result.loss_per_epoch.back(), 0.8 * result.loss_per_epoch.front());
  EXPECT_GT(after, before + 0.05) << "accuracy before " << before << ", after " << after;
}

TEST(Adapter, SameSeedGivesSameLossCurve) {
  Problem problem_a(32, 4, 8), problem_b(32, 4, 8);
  std::unique_ptr<DualMemoryNetwork> a = MakeNetwork(&problem_a, 5, 2, 0.5);
  std::unique_ptr<DualMemoryNetwork> b = MakeNetwork(&problem_b, 5, 2, 0.5);
  TrainConfig config;
  config.epochs = 5;
  config.batch_size = 4;
  TrainResult first, second, other;
  ASSERT_TRUE(a->Train(config, &first).ok());
  ASSERT_TRUE(b->Train(config, &second).ok());
  EXPECT_EQ(first.loss_per_epoch, second.loss_per_epoch);
  config.seed = 1;
  ASSERT_TRUE(b->Train(config, &other).ok());
  EXPECT_NE(first.loss_per_epoch, other.loss_per_epoch);
}

TEST(Adapter, BadConfigLeavesNetworkUnchanged) {
  Problem problem(32, 4, 8);
  std::unique_ptr<DualMemoryNetwork> network = MakeNetwork(&problem, 3, 1, 0.5);
  TrainConfig good;
  good.epochs = 3;
  TrainResult result;
  ASSERT_TRUE(network->Train(good, &result).ok());
  std::vector<float> query = problem.Sample(1);
  StepOutput before, after;
  ASSERT_TRUE(network->Step(query.data(), query.size(), 1, 0, false, &before).ok());

  std::vector<TrainConfig> bad(10, good);
  bad[9].per_class_rate_scale = -1.0f;
  bad[0].epochs = 0;
  bad[1].epochs = -3;
  bad[2].learning_rate = std::nanf("");
  bad[3].learning_rate = -1e-3f;
  bad[4].learning_rate = INFINITY;
  bad[5].weight_decay = -0.1f;
  bad[6].label_smoothing = 1.0f;
  bad[7].batch_size = 0;
  bad[8].epochs = kMaxTrainEpochs + 1;
  for (size_t i = 0; i < bad.size(); ++i) {
    TrainResult unused;
    unused.loss_per_epoch = {42.0f};
    Status status = network->Train(bad[i], &unused);
    EXPECT_EQ(status.code, StatusCode::kInvalidArgument) << "case " << i;
    EXPECT_FALSE(status.message.empty()) << "case " << i;
    EXPECT_EQ(unused.loss_per_epoch, std::vector<float>{42.0f}) << "case " << i;
    EXPECT_TRUE(network->trained()) << "case " << i;
  }
  ASSERT_TRUE(network->Step(query.data(), query.size(), 1, 0, false, &after).ok());
  EXPECT_EQ(before.fused, after.fused);
}

TEST(Adapter, TrainWithoutShotsFails) {
  Problem problem(16, 3, 4);
  std::unique_ptr<DualMemoryNetwork> network = MakeNetwork(&problem, 0, 1, 0.5);
  TrainResult result;
  Status status = network->Train(TrainConfig(), &result);
  EXPECT_EQ(status.code, StatusCode::kInvalidArgument);
  EXPECT_NE(status.message.find("no class has shots"), std::string::npos) << status.message;
  EXPECT_FALSE(network->trained());
}

TEST(Adapter, ChangingShotsDropsTheAdapter) {
  Problem problem_a(32, 4, 8), problem_b(32, 4, 8);
  std::unique_ptr<DualMemoryNetwork> trained = MakeNetwork(&problem_a, 3, 1, 0.5);
  std::unique_ptr<DualMemoryNetwork> plain = MakeNetwork(&problem_b, 3, 1, 0.5);
  TrainResult result;
  ASSERT_TRUE(trained->Train(TrainConfig(), &result).ok());
  std::vector<float> shot = problem_a.Sample(2);
  ASSERT_TRUE(trained->AddShot(2, shot.data(), shot.size(), 1).ok());
  ASSERT_TRUE(plain->AddShot(2, shot.data(), shot.size(), 1).ok());
  EXPECT_FALSE(trained->trained());

  std::vector<float> query = problem_a.Sample(0);
  StepOutput expected, actual;
  ASSERT_TRUE(plain->Step(query.data(), query.size(), 1, 0, false, &expected).ok());
  ASSERT_TRUE(trained->Step(query.data(), query.size(), 1, 0, false, &actual).ok());
  EXPECT_EQ(expected.fused, actual.fused);
}

TEST(Adapter, ResetAdapterRestoresTrainingFreeOutputs) {
  Problem problem(32, 4, 8);
  std::unique_ptr<DualMemoryNetwork> network = MakeNetwork(&problem, 3, 1, 0.5);
  std::vector<float> query = problem.Sample(3);
  StepOutput before, trained, reset;
  ASSERT_TRUE(network->Step(query.data(), query.size(), 1, 0, false, &before).ok());
  TrainResult result;
  ASSERT_TRUE(network->Train(TrainConfig(), &result).ok());
  ASSERT_TRUE(network->Step(query.data(), query.size(), 1, 0, false, &trained).ok());
  EXPECT_NE(before.fused, trained.fused);
  network->ResetAdapter();
  EXPECT_FALSE(network->trained());
  ASSERT_TRUE(network->Step(query.data(), query.size(), 1, 0, false, &reset).ok());
  EXPECT_EQ(before.fused, reset.fused);
}

}  // namespace
}  // namespace dualmem
