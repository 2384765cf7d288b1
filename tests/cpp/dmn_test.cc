#include "dmn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "json.h"
#include "trace.h"

namespace dualmem {
namespace {

constexpr int kDim = 4;
// Below this gap a discrete choice is a tie, as the conformance rules define.
constexpr double kTieMargin = 1e-6;
// Tolerance for probabilities against the float64 goldens.
constexpr double kGoldenTolerance = 1e-4;

// A unit vector in the plane of the first two axes, `degrees` from axis 0.
std::vector<float> Angle(double degrees) {
  double radians = degrees * M_PI / 180.0;
  return {static_cast<float>(std::cos(radians)), static_cast<float>(std::sin(radians)), 0.0f, 0.0f};
}

std::vector<float> Axis(int axis) {
  std::vector<float> v(kDim, 0.0f);
  v[axis] = 1.0f;
  return v;
}

// Two classes along axes 0 and 1, one view per image, soft enough logits
// that entropies differ visibly between angles.
std::unique_ptr<DualMemoryNetwork> TwoClassNetwork(int capacity, float selection_ratio = 1.0f) {
  DmnConfig config;
  config.logit_scale = 10.0f;
  config.capacity = capacity;
  config.selection_ratio = selection_ratio;
  std::unique_ptr<DualMemoryNetwork> network;
  EXPECT_TRUE(DualMemoryNetwork::Create(kDim, config, &network).ok());
  for (int c = 0; c < 2; ++c) EXPECT_TRUE(network->AddClass(Axis(c).data(), kDim).ok());
  return network;
}

StepOutput StepOnce(DualMemoryNetwork* network, const std::vector<float>& views, bool update = true) {
  StepOutput out;
  Status status = network->Step(views.data(), views.size(), static_cast<int>(views.size() / kDim),
                                0.0, update, &out);
  EXPECT_TRUE(status.ok()) << status.message;
  return out;
}

// Entropies of a class's dynamic slots in slot order.
std::vector<double> DynamicEntropies(const DualMemoryNetwork& network, int class_index) {
  std::vector<double> entropies;
  const MemoryBank& bank = network.bank();
  for (int j = 0; j < bank.slot_count(class_index); ++j) {
    if (bank.slot_info(class_index, j).source == SlotSource::kDynamic) {
      entropies.push_back(bank.slot_info(class_index, j).entropy);
    }
  }
  return entropies;
}

void ExpectNear(const std::vector<float>& actual, const std::vector<float>& expected,
                double tolerance, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], tolerance) << what << " class " << i;
  }
}

TEST(DualMemoryNetwork, ReplacesHighestEntropySlotWhenFull) {
  auto network = TwoClassNetwork(2);
  StepOnce(network.get(), Angle(30));
  StepOnce(network.get(), Angle(20));
  std::vector<double> before = DynamicEntropies(*network, 0);
  ASSERT_EQ(before.size(), 2u);
  ASSERT_GT(before[0], before[1]);

  StepOutput out = StepOnce(network.get(), Angle(10));
  EXPECT_TRUE(out.inserted);
  EXPECT_EQ(out.replaced_slot, 0);
  std::vector<double> after = DynamicEntropies(*network, 0);
  EXPECT_NEAR(after[0], out.entropy, 1e-7);
  EXPECT_EQ(after[1], before[1]);
  EXPECT_EQ(network->DynamicCount(0), 2);
}

TEST(DualMemoryNetwork, KeepsMemoryWhenNewEntropyIsNotLower) {
  auto network = TwoClassNetwork(2);
  StepOnce(network.get(), Angle(10));
  StepOnce(network.get(), Angle(10));
  std::vector<double> before = DynamicEntropies(*network, 0);

  // Equal entropy is not lower, so nothing changes; the choice is a tie.
  StepOutput equal = StepOnce(network.get(), Angle(10));
  EXPECT_FALSE(equal.inserted);
  EXPECT_LT(equal.decision_margin, kTieMargin);
  StepOutput higher = StepOnce(network.get(), Angle(35));
  EXPECT_FALSE(higher.inserted);
  EXPECT_EQ(higher.replaced_slot, -1);
  EXPECT_EQ(DynamicEntropies(*network, 0), before);
}

TEST(DualMemoryNetwork, EqualLargestEntropiesReplaceLowestIndex) {
  auto network = TwoClassNetwork(2);
  StepOnce(network.get(), Angle(30));
  StepOnce(network.get(), Angle(30));
  StepOutput first = StepOnce(network.get(), Angle(10));
  EXPECT_EQ(first.replaced_slot, 0);
  EXPECT_LT(first.decision_margin, kTieMargin) << "two equal stored entropies are a tie";
  StepOutput second = StepOnce(network.get(), Angle(10));
  EXPECT_EQ(second.replaced_slot, 1);
  StepOutput third = StepOnce(network.get(), Angle(5));
  EXPECT_EQ(third.replaced_slot, 0);
}

TEST(DualMemoryNetwork, ConfidentSelectionTieKeepsLowerView) {
  // Views 1 and 2 mirror each other across the diagonal, so their
  // entropies are exactly equal but they predict different classes.
  const float c = static_cast<float>(std::cos(0.2)), s = static_cast<float>(std::sin(0.2));
  std::vector<float> toward0 = {c, s, 0, 0}, toward1 = {s, c, 0, 0};
  std::vector<float> unsure = Angle(44), unsure2 = Angle(46);

  auto expected_net = TwoClassNetwork(5, 1.0f);
  StepOutput alone0 = StepOnce(expected_net.get(), toward0, false);
  StepOutput alone1 = StepOnce(expected_net.get(), toward1, false);

  for (bool toward0_first : {true, false}) {
    auto network = TwoClassNetwork(5, 0.25f);  // keeps 1 of 4 views
    std::vector<float> views = unsure;
    const std::vector<float>& lower = toward0_first ? toward0 : toward1;
    const std::vector<float>& upper = toward0_first ? toward1 : toward0;
    views.insert(views.end(), lower.begin(), lower.end());
    views.insert(views.end(), upper.begin(), upper.end());
    views.insert(views.end(), unsure2.begin(), unsure2.end());
    StepOutput out = StepOnce(network.get(), views);
    const StepOutput& expected = toward0_first ? alone0 : alone1;
    ExpectNear(out.confident, expected.text, 1e-7, "confident");
    EXPECT_EQ(out.pseudo_label, toward0_first ? 0 : 1);
    EXPECT_LT(out.decision_margin, kTieMargin);
  }
}

TEST(DualMemoryNetwork, EmptyMemoryReadoutEqualsTextHead) {
  auto network = TwoClassNetwork(3);
  StepOutput out = StepOnce(network.get(), Angle(25), false);
  ExpectNear(out.dynamic, out.text, 1e-6, "dynamic");
  EXPECT_FALSE(out.has_static);
  EXPECT_EQ(network->DynamicCount(0), 0);
  EXPECT_EQ(network->DynamicCount(1), 0);
}

TEST(DualMemoryNetwork, StepWithoutClassesFails) {
  std::unique_ptr<DualMemoryNetwork> network;
  ASSERT_TRUE(DualMemoryNetwork::Create(kDim, DmnConfig(), &network).ok());
  StepOutput out;
  std::vector<float> view = Angle(0);
  Status status = network->Step(view.data(), view.size(), 1, 0.0, true, &out);
  EXPECT_EQ(status.code, StatusCode::kInvalidArgument);
  EXPECT_NE(status.message.find("no classes"), std::string::npos) << status.message;
}

TEST(DualMemoryNetwork, FrozenStepLeavesMemoryUntouched) {
  auto network = TwoClassNetwork(3);
  StepOnce(network.get(), Angle(10));
  size_t bytes = network->MemoryBytes();
  StepOutput out = StepOnce(network.get(), Angle(15), false);
  EXPECT_FALSE(out.inserted);
  EXPECT_EQ(network->DynamicCount(0), 1);
  EXPECT_EQ(network->MemoryBytes(), bytes);
}

TEST(DualMemoryNetwork, RemoveClassShiftsLaterClasses) {
  // Network A has a middle class that receives no memories; after removing
  // it, A must behave like network B that never had it.
  DmnConfig config;
  config.logit_scale = 10.0f;
  std::unique_ptr<DualMemoryNetwork> a, b;
  ASSERT_TRUE(DualMemoryNetwork::Create(kDim, config, &a).ok());
  ASSERT_TRUE(DualMemoryNetwork::Create(kDim, config, &b).ok());
  for (int axis : {0, 2, 1}) ASSERT_TRUE(a->AddClass(Axis(axis).data(), kDim).ok());
  for (int axis : {0, 1}) ASSERT_TRUE(b->AddClass(Axis(axis).data(), kDim).ok());
  for (double degrees : {5.0, 80.0, 20.0, 70.0, 10.0}) {
    StepOnce(a.get(), Angle(degrees));
    StepOnce(b.get(), Angle(degrees));
  }
  ASSERT_EQ(a->DynamicCount(1), 0);
  ASSERT_TRUE(a->RemoveClass(1).ok());
  ASSERT_EQ(a->num_classes(), 2);
  EXPECT_EQ(a->DynamicCount(0), b->DynamicCount(0));
  EXPECT_EQ(a->DynamicCount(1), b->DynamicCount(1));
  StepOutput out_a = StepOnce(a.get(), Angle(40), false);
  StepOutput out_b = StepOnce(b.get(), Angle(40), false);
  ExpectNear(out_a.dynamic, out_b.dynamic, 1e-6, "dynamic");
  ExpectNear(out_a.fused, out_b.fused, 1e-6, "fused");
}

TEST(DualMemoryNetwork, ResetDynamicEmptiesEveryClass) {
  auto network = TwoClassNetwork(3);
  for (double degrees : {5.0, 80.0, 20.0}) StepOnce(network.get(), Angle(degrees));
  ASSERT_GT(network->DynamicCount(0) + network->DynamicCount(1), 0);
  network->ResetDynamic();
  EXPECT_EQ(network->DynamicCount(0), 0);
  EXPECT_EQ(network->DynamicCount(1), 0);
  StepOutput out = StepOnce(network.get(), Angle(25), false);
  ExpectNear(out.dynamic, out.text, 1e-6, "dynamic after reset");
}

TEST(DualMemoryNetwork, ShotsEnableStaticReadout) {
  auto network = TwoClassNetwork(3);
  std::vector<float> shot = Angle(60);
  std::vector<float> augmented = Angle(65);
  shot.insert(shot.end(), augmented.begin(), augmented.end());
  ASSERT_TRUE(network->AddShot(1, shot.data(), shot.size(), 2).ok());
  EXPECT_EQ(network->ShotCount(1), 1);
  StepOutput out = StepOnce(network.get(), Angle(60), false);
  EXPECT_TRUE(out.has_static);
  EXPECT_GT(out.static_probs[1], out.text[1]) << "a matching shot should raise class 1";

  ASSERT_TRUE(network->ClearShots(1).ok());
  EXPECT_EQ(network->ShotCount(1), 0);
  StepOutput cleared = StepOnce(network.get(), Angle(60), false);
  EXPECT_FALSE(cleared.has_static);
  ExpectNear(cleared.dynamic, cleared.text, 1e-6, "dynamic without shots");
}

TEST(DualMemoryNetwork, CorrectionReadsOutLikeShot) {
  auto with_shot = TwoClassNetwork(3);
  auto with_correction = TwoClassNetwork(3);
  std::vector<float> views = Angle(60);
  std::vector<float> augmented = Angle(65);
  views.insert(views.end(), augmented.begin(), augmented.end());
  ASSERT_TRUE(with_shot->AddShot(1, views.data(), views.size(), 2).ok());
  ASSERT_TRUE(with_correction->AddCorrection(1, views.data(), views.size(), 2).ok());
  EXPECT_EQ(with_correction->ShotCount(1), 1);
  EXPECT_EQ(with_correction->bank().slot_info(1, 1).source, SlotSource::kCorrection);

  for (double degrees : {10.0, 55.0, 80.0}) {
    StepOutput shot_out = StepOnce(with_shot.get(), Angle(degrees));
    StepOutput correction_out = StepOnce(with_correction.get(), Angle(degrees));
    EXPECT_EQ(correction_out.static_probs, shot_out.static_probs) << degrees << " degrees";
    EXPECT_EQ(correction_out.dynamic, shot_out.dynamic) << degrees << " degrees";
    EXPECT_EQ(correction_out.fused, shot_out.fused) << degrees << " degrees";
  }

  ASSERT_TRUE(with_correction->ClearShots(1).ok());
  EXPECT_EQ(with_correction->ShotCount(1), 0);
  EXPECT_FALSE(StepOnce(with_correction.get(), Angle(60), false).has_static);
}

TEST(DualMemoryNetwork, FusedFollowsWeights) {
  auto network = TwoClassNetwork(3);
  StepOnce(network.get(), Angle(5));
  ASSERT_TRUE(network->SetWeights(1.0f, 0.0f, 0.0f).ok());
  StepOutput text_only = StepOnce(network.get(), Angle(30), false);
  ExpectNear(text_only.fused, text_only.text, 1e-7, "fused with text weight only");
  ASSERT_TRUE(network->SetWeights(1.0f, 3.0f, 0.0f).ok());
  StepOutput mixed = StepOnce(network.get(), Angle(30), false);
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(mixed.fused[c], 0.25f * mixed.text[c] + 0.75f * mixed.dynamic[c], 1e-6) << "class " << c;
  }

  // Only the static weight without shots leaves nothing to fuse.
  ASSERT_TRUE(network->SetWeights(0.0f, 0.0f, 1.0f).ok());
  StepOutput out;
  std::vector<float> view = Angle(30);
  EXPECT_EQ(network->Step(view.data(), view.size(), 1, 0.0, true, &out).code,
            StatusCode::kInvalidArgument);
}

TEST(DualMemoryNetwork, SetClassEmbeddingChangesTextHead) {
  auto network = TwoClassNetwork(3);
  std::vector<float> diagonal = Angle(45);
  ASSERT_TRUE(network->SetClassEmbedding(0, diagonal.data(), kDim).ok());
  StepOutput out = StepOnce(network.get(), Angle(45), false);
  EXPECT_GT(out.text[0], out.text[1]);
  ExpectNear(out.dynamic, out.text, 1e-6, "dynamic follows the new text slot");
}

TEST(DualMemoryNetwork, GramStaysExactAfterManySteps) {
  DmnConfig config;
  config.logit_scale = 10.0f;
  config.capacity = 4;
  for (Precision precision : {Precision::kFloat32, Precision::kFloat16, Precision::kInt8}) {
    config.precision = precision;
    std::unique_ptr<DualMemoryNetwork> network;
    ASSERT_TRUE(DualMemoryNetwork::Create(kDim, config, &network).ok());
    for (int c = 0; c < 2; ++c) ASSERT_TRUE(network->AddClass(Axis(c).data(), kDim).ok());
    for (int i = 0; i < 200; ++i) {
      std::vector<float> view = Angle((i * 37) % 90);
      view[2] = 0.1f * ((i * 13) % 7);
      StepOnce(network.get(), view);
    }
    const MemoryBank& bank = network->bank();
    std::vector<float> a(kDim), b(kDim);
    for (int c = 0; c < 2; ++c) {
      for (int i = 0; i < bank.slot_count(c); ++i) {
        for (int j = 0; j < bank.slot_count(c); ++j) {
          bank.DecodeSlot(c, i, a.data());
          bank.DecodeSlot(c, j, b.data());
          double expected = 0.0;
          for (int k = 0; k < kDim; ++k) expected += static_cast<double>(a[k]) * b[k];
          // int8 adds the rounding of one side to int16 levels, about
          // 2^-16 of its largest element per element.
          double tolerance = precision == Precision::kInt8 ? 1e-5 : 1e-6;
          EXPECT_NEAR(bank.gram(c, i, j), expected, tolerance)
              << PrecisionName(precision) << " class " << c << " entry " << i << "," << j;
        }
      }
    }
  }
}

TEST(DualMemoryNetwork, OutputBuffersAreReused) {
  auto network = TwoClassNetwork(3);
  StepOutput out;
  std::vector<float> view = Angle(10);
  ASSERT_TRUE(network->Step(view.data(), view.size(), 1, 0.0, true, &out).ok());
  const float* fused = out.fused.data();
  ASSERT_TRUE(network->Step(view.data(), view.size(), 1, 1.0, true, &out).ok());
  EXPECT_EQ(out.fused.data(), fused);
}

// Everything observable about a network, to check that a failed call
// changed nothing.
struct Snapshot {
  int classes = 0;
  std::vector<int> dynamic_counts, shot_counts;
  size_t bytes = 0;
  float weights[3] = {0, 0, 0};
  std::vector<float> fused, dynamic;

  bool operator==(const Snapshot& o) const {
    return classes == o.classes && dynamic_counts == o.dynamic_counts &&
           shot_counts == o.shot_counts && bytes == o.bytes && weights[0] == o.weights[0] &&
           weights[1] == o.weights[1] && weights[2] == o.weights[2] && fused == o.fused &&
           dynamic == o.dynamic;
  }
};

Snapshot TakeSnapshot(DualMemoryNetwork* network) {
  Snapshot snapshot;
  snapshot.classes = network->num_classes();
  for (int c = 0; c < network->num_classes(); ++c) {
    snapshot.dynamic_counts.push_back(network->DynamicCount(c));
    snapshot.shot_counts.push_back(network->ShotCount(c));
  }
  snapshot.bytes = network->MemoryBytes();
  snapshot.weights[0] = network->config().weight_text;
  snapshot.weights[1] = network->config().weight_dynamic;
  snapshot.weights[2] = network->config().weight_static;
  StepOutput out = StepOnce(network, Angle(33), false);
  snapshot.fused = out.fused;
  snapshot.dynamic = out.dynamic;
  return snapshot;
}

TEST(DualMemoryNetwork, FailedCallsLeaveStateUnchanged) {
  auto network = TwoClassNetwork(3);
  StepOnce(network.get(), Angle(10));
  std::vector<float> shot = Angle(70);
  ASSERT_TRUE(network->AddShot(1, shot.data(), shot.size(), 1).ok());

  const float nan = std::nanf("");
  std::vector<float> good = Angle(20), zero(kDim, 0.0f), with_nan = {1, nan, 0, 0};
  std::vector<float> two_views_second_bad = Angle(20);
  two_views_second_bad.insert(two_views_second_bad.end(), with_nan.begin(), with_nan.end());
  StepOutput out;

  struct Case {
    const char* name;
    std::function<Status()> call;
    StatusCode code;
    const char* message_part;
  };
  const std::vector<Case> cases = {
      {"negative weight", [&] { return network->SetWeights(-1, 1, 1); }, StatusCode::kInvalidArgument, "weight_text"},
      {"nan weight", [&] { return network->SetWeights(1, nan, 1); }, StatusCode::kInvalidArgument, "weight_dynamic"},
      {"zero weights", [&] { return network->SetWeights(0, 0, 0); }, StatusCode::kInvalidArgument, "all 0"},
      {"class length", [&] { return network->AddClass(good.data(), 3); }, StatusCode::kInvalidArgument, "has 3 values, expected dim = 4"},
      {"class nan", [&] { return network->AddClass(with_nan.data(), kDim); }, StatusCode::kInvalidArgument, "text_embedding[1]"},
      {"class zero", [&] { return network->AddClass(zero.data(), kDim); }, StatusCode::kInvalidArgument, "zero length"},
      {"class null", [&] { return network->AddClass(nullptr, kDim); }, StatusCode::kInvalidArgument, "null"},
      {"remove unknown", [&] { return network->RemoveClass(2); }, StatusCode::kNotFound, "class index 2"},
      {"remove negative", [&] { return network->RemoveClass(-1); }, StatusCode::kNotFound, "class index -1"},
      {"embed unknown", [&] { return network->SetClassEmbedding(7, good.data(), kDim); }, StatusCode::kNotFound, "class index 7"},
      {"embed zero", [&] { return network->SetClassEmbedding(0, zero.data(), kDim); }, StatusCode::kInvalidArgument, "zero length"},
      {"shot unknown", [&] { return network->AddShot(9, good.data(), kDim, 1); }, StatusCode::kNotFound, "class index 9"},
      {"shot no views", [&] { return network->AddShot(0, good.data(), kDim, 0); }, StatusCode::kInvalidArgument, "num_views is 0"},
      {"shot length", [&] { return network->AddShot(0, good.data(), kDim, 2); }, StatusCode::kInvalidArgument, "expected num_views * dim = 8"},
      {"shot second view nan", [&] { return network->AddShot(0, two_views_second_bad.data(), 2 * kDim, 2); }, StatusCode::kInvalidArgument, "views[1][1]"},
      {"step no views", [&] { return network->Step(good.data(), kDim, 0, 0, true, &out); }, StatusCode::kInvalidArgument, "num_views is 0"},
      {"step length", [&] { return network->Step(good.data(), 5, 1, 0, true, &out); }, StatusCode::kInvalidArgument, "has 5 values"},
      {"step nan view", [&] { return network->Step(two_views_second_bad.data(), 2 * kDim, 2, 0, true, &out); }, StatusCode::kInvalidArgument, "views[1][1]"},
      {"step zero view", [&] { return network->Step(zero.data(), kDim, 1, 0, true, &out); }, StatusCode::kInvalidArgument, "zero length"},
      {"step bad time", [&] { return network->Step(good.data(), kDim, 1, INFINITY, true, &out); }, StatusCode::kInvalidArgument, "timestamp_ms"},
      {"step null output", [&] { return network->Step(good.data(), kDim, 1, 0, true, nullptr); }, StatusCode::kInvalidArgument, "out is null"},
      {"clear unknown", [&] { return network->ClearShots(-2); }, StatusCode::kNotFound, "class index -2"},
  };
  for (const Case& c : cases) {
    Snapshot before = TakeSnapshot(network.get());
    Status status = c.call();
    EXPECT_EQ(status.code, c.code) << c.name << ": " << status.message;
    EXPECT_NE(status.message.find(c.message_part), std::string::npos)
        << c.name << ": expected \"" << c.message_part << "\" in \"" << status.message << "\"";
    EXPECT_TRUE(TakeSnapshot(network.get()) == before) << c.name << " changed the network";
  }
}

TEST(DualMemoryNetwork, CreateRejectsInvalidConfig) {
  struct Case {
    const char* field;
    std::function<void(DmnConfig*)> edit;
  };
  const std::vector<Case> cases = {
      {"capacity", [](DmnConfig* c) { c->capacity = 0; }},
      {"selection_ratio", [](DmnConfig* c) { c->selection_ratio = 0.0f; }},
      {"selection_ratio", [](DmnConfig* c) { c->selection_ratio = 1.5f; }},
      {"beta", [](DmnConfig* c) { c->beta = std::nanf(""); }},
      {"beta", [](DmnConfig* c) { c->beta = 0.0f; }},
      {"logit_scale", [](DmnConfig* c) { c->logit_scale = -1.0f; }},
      {"logit_scale", [](DmnConfig* c) { c->logit_scale = INFINITY; }},
      {"weight_static", [](DmnConfig* c) { c->weight_static = -0.5f; }},
      {"all 0", [](DmnConfig* c) { c->weight_text = c->weight_dynamic = c->weight_static = 0.0f; }},
      {"precision", [](DmnConfig* c) { c->precision = static_cast<Precision>(7); }},
  };
  for (const Case& c : cases) {
    DmnConfig config;
    c.edit(&config);
    std::unique_ptr<DualMemoryNetwork> network;
    Status status = DualMemoryNetwork::Create(kDim, config, &network);
    EXPECT_EQ(status.code, StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(status.message.find(c.field), std::string::npos) << status.message;
    EXPECT_EQ(network, nullptr);
  }
  std::unique_ptr<DualMemoryNetwork> network;
  Status status = DualMemoryNetwork::Create(0, DmnConfig(), &network);
  EXPECT_NE(status.message.find("dim is 0"), std::string::npos) << status.message;
}

TEST(AverageClassEmbedding, AveragesUnitPrompts) {
  std::vector<float> prompts = {2, 0, 0, 0, 0, 0.5f, 0, 0};  // unequal lengths
  std::vector<float> out;
  ASSERT_TRUE(AverageClassEmbedding(prompts.data(), prompts.size(), 2, kDim, &out).ok());
  const float half_sqrt2 = static_cast<float>(std::sqrt(0.5));
  ExpectNear(out, {half_sqrt2, half_sqrt2, 0, 0}, 1e-7, "average");
}

TEST(AverageClassEmbedding, RejectsBadPrompts) {
  std::vector<float> out;
  std::vector<float> opposite = {1, 0, 0, 0, -1, 0, 0, 0};
  EXPECT_NE(AverageClassEmbedding(opposite.data(), 8, 2, kDim, &out).message.find("cancel"),
            std::string::npos);
  std::vector<float> zero_prompt = {1, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_NE(AverageClassEmbedding(zero_prompt.data(), 8, 2, kDim, &out).message.find("prompt 1 has zero length"),
            std::string::npos);
  EXPECT_EQ(AverageClassEmbedding(opposite.data(), 7, 2, kDim, &out).code, StatusCode::kInvalidArgument);
  EXPECT_EQ(AverageClassEmbedding(opposite.data(), 8, 0, kDim, &out).code, StatusCode::kInvalidArgument);
  EXPECT_TRUE(out.empty());
}

// --- Conformance goldens -------------------------------------------------

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

struct GoldenComparison {
  double max_difference = 0.0;
  int first_mismatch = -1;     // first item out of tolerance or with another label
  int tie_at_or_before = -1;   // last item <= first_mismatch with a tie
  double tie_margin = 0.0;
  int tie_count = 0;           // items whose decisions include a tie
  int label_agreement = 0;
  int items = 0;
};

double MaxDifference(const std::vector<float>& actual, const JsonValue& expected) {
  double difference = 0.0;
  if (expected.items().size() != actual.size()) return INFINITY;
  for (size_t i = 0; i < actual.size(); ++i) {
    difference = std::max(difference, std::fabs(actual[i] - expected.items()[i].as_number()));
  }
  return difference;
}

GoldenComparison CompareWithGolden(const std::string& name, Precision precision) {
  GoldenComparison comparison;
  std::string base = std::string(DUALMEM_FIXTURES_DIR) + "/dmn/" + name;
  DmnTrace trace;
  Status status = ParseDmnTrace(ReadFile(base + ".trace.json"), &trace);
  EXPECT_TRUE(status.ok()) << status.message;
  trace.config.precision = precision;
  std::vector<TraceResult> results;
  status = RunDmnTrace(trace, &results);
  EXPECT_TRUE(status.ok()) << status.message;
  JsonValue expected;
  status = ParseJson(ReadFile(base + ".expected.json"), &expected);
  EXPECT_TRUE(status.ok()) << status.message;
  const std::vector<JsonValue>& items = expected.Find("results")->items();
  EXPECT_EQ(items.size(), results.size());

  comparison.items = static_cast<int>(std::min(items.size(), results.size()));
  for (int i = 0; i < comparison.items; ++i) {
    const StepOutput& out = results[i].output;
    const JsonValue& want = items[i];
    bool tie = out.decision_margin < kTieMargin;
    comparison.tie_count += tie;
    if (tie && (comparison.first_mismatch < 0)) {
      comparison.tie_at_or_before = i;
      comparison.tie_margin = out.decision_margin;
    }
    double difference = std::max({MaxDifference(out.text, *want.Find("text")),
                                  MaxDifference(out.confident, *want.Find("confident")),
                                  MaxDifference(out.dynamic, *want.Find("dynamic")),
                                  MaxDifference(out.fused, *want.Find("fused"))});
    const JsonValue* want_static = want.Find("static");
    if (want_static->is_null() != !out.has_static) {
      difference = INFINITY;
    } else if (out.has_static) {
      difference = std::max(difference, MaxDifference(out.static_probs, *want_static));
    }
    std::vector<int> want_counts;
    for (const JsonValue& count : want.Find("memory_counts")->items()) {
      want_counts.push_back(static_cast<int>(count.as_number()));
    }
    bool label_equal = out.label == static_cast<int>(want.Find("label")->as_number());
    comparison.label_agreement += label_equal;
    comparison.max_difference = std::max(comparison.max_difference, difference);
    bool mismatch = difference > kGoldenTolerance || !label_equal || want_counts != results[i].memory_counts;
    if (mismatch && comparison.first_mismatch < 0) comparison.first_mismatch = i;
  }
  if (comparison.first_mismatch < 0) comparison.tie_at_or_before = -1;
  return comparison;
}

class DmnGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(DmnGolden, ReproducesExpectedProbabilities) {
  GoldenComparison result = CompareWithGolden(GetParam(), Precision::kFloat32);
  std::cout << "[golden] " << GetParam() << ": max |p - expected| = " << result.max_difference
            << ", labels " << result.label_agreement << "/" << result.items
            << ", items with a tie (< 1e-6) " << result.tie_count << "\n";
  RecordProperty("max_abs_difference", std::to_string(result.max_difference));
  if (result.first_mismatch >= 0 && result.tie_at_or_before >= 0) {
    // A tie decided differently by float32 rounding is not a bug, but it
    // must stay visible.
    std::cout << "[golden] " << GetParam() << ": TIE: first mismatch at item "
              << result.first_mismatch << " follows a tie at item " << result.tie_at_or_before
              << " (margin " << result.tie_margin << ")\n";
    RecordProperty("tie_mismatch_item", result.first_mismatch);
  } else {
    EXPECT_EQ(result.first_mismatch, -1)
        << "mismatch (not after a tie) at item " << result.first_mismatch
        << ", max difference " << result.max_difference;
    EXPECT_LE(result.max_difference, kGoldenTolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DmnGolden,
                         ::testing::Values("zeroshot_1view", "capacity3_replacement",
                                           "views8_shots2", "c100_d512"));

// Reduced precisions are not expected to match the float64 goldens within
// 1e-4; this records how close they come. The bounds are loose regression
// guards measured on these fixtures.
TEST(DmnGoldenPrecision, Float16AndInt8StayCloseToFloat32) {
  for (const char* name : {"views8_shots2", "c100_d512", "capacity3_replacement"}) {
    for (Precision precision : {Precision::kFloat16, Precision::kInt8}) {
      GoldenComparison result = CompareWithGolden(name, precision);
      double agreement = static_cast<double>(result.label_agreement) / result.items;
      std::cout << "[precision] " << name << " " << PrecisionName(precision)
                << ": labels " << result.label_agreement << "/" << result.items
                << ", max |p - expected| = " << result.max_difference
                << ", first item beyond 1e-4: " << result.first_mismatch << "\n";
      EXPECT_GE(agreement, 0.95) << name << " " << PrecisionName(precision);
    }
  }
}

}  // namespace
}  // namespace dualmem
