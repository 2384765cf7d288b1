// Retention of dynamic slots: DropDynamicOlderThan and
// DropHighestEntropyDynamic remove dynamic slots only, and a network left
// after a drop steps exactly like one built from the kept slots alone.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "dmn.h"

namespace dualmem {
namespace {

constexpr int kDim = 4;
// Probabilities of two networks holding the same slots may differ only by
// float rounding in a different summation order.
constexpr float kStepTolerance = 1e-6f;

std::vector<float> Unit(float a, float b, float c, float d) {
  float norm = std::sqrt(a * a + b * b + c * c + d * d);
  return {a / norm, b / norm, c / norm, d / norm};
}

std::unique_ptr<DualMemoryNetwork> TwoClasses(int capacity = 8) {
  DmnConfig config;
  config.logit_scale = 10.0f;
  config.capacity = capacity;
  std::unique_ptr<DualMemoryNetwork> network;
  EXPECT_TRUE(DualMemoryNetwork::Create(kDim, config, &network).ok());
  std::vector<float> first = Unit(1, 0, 0, 0);
  std::vector<float> second = Unit(0, 1, 0, 0);
  EXPECT_TRUE(network->AddClass(first.data(), kDim).ok());
  EXPECT_TRUE(network->AddClass(second.data(), kDim).ok());
  return network;
}

struct DynamicSlot {
  int class_index;
  std::vector<float> view;
  double entropy;
  double timestamp_ms;
};

// Dynamic slots of both classes with distinct entropies and times.
std::vector<DynamicSlot> SampleSlots() {
  return {
      {0, Unit(1, 0.2f, 0, 0), 0.30, 1000},
      {0, Unit(1, 0, 0.3f, 0), 0.90, 2000},
      {1, Unit(0.1f, 1, 0, 0), 0.50, 3000},
      {1, Unit(0, 1, 0, 0.4f), 0.70, 4000},
      {0, Unit(1, 0, 0, 0.5f), 0.10, 5000},
  };
}

void Restore(DualMemoryNetwork* network, const std::vector<DynamicSlot>& slots) {
  for (const DynamicSlot& slot : slots) {
    Status status = network->RestoreDynamic(slot.class_index, slot.view.data(), kDim,
                                            slot.entropy, slot.timestamp_ms);
    ASSERT_TRUE(status.ok()) << status.message;
  }
}

void AddShotAndCorrection(DualMemoryNetwork* network) {
  std::vector<float> shot = Unit(1, 0.1f, 0.1f, 0);
  std::vector<float> correction = Unit(0.2f, 1, 0, 0.1f);
  ASSERT_TRUE(network->AddShot(0, shot.data(), kDim, 1).ok());
  ASSERT_TRUE(network->AddCorrection(1, correction.data(), kDim, 1).ok());
}

// Steps both networks on the same query without updating them and compares
// every fused probability.
void ExpectSameStep(DualMemoryNetwork* actual, DualMemoryNetwork* expected) {
  std::vector<float> query = Unit(0.6f, 0.5f, 0.2f, 0.1f);
  StepOutput got, want;
  ASSERT_TRUE(actual->Step(query.data(), kDim, 1, 0.0, false, &got).ok());
  ASSERT_TRUE(expected->Step(query.data(), kDim, 1, 0.0, false, &want).ok());
  ASSERT_EQ(got.fused.size(), want.fused.size());
  for (size_t i = 0; i < got.fused.size(); ++i) {
    EXPECT_NEAR(got.fused[i], want.fused[i], kStepTolerance)
        << "class " << i << ": expected " << want.fused[i] << ", got " << got.fused[i];
  }
}

TEST(RetentionTest, OlderThanDropsOnlyOldDynamicSlots) {
  auto network = TwoClasses();
  AddShotAndCorrection(network.get());
  Restore(network.get(), SampleSlots());

  int removed = -1;
  ASSERT_TRUE(network->DropDynamicOlderThan(3000, &removed).ok());

  EXPECT_EQ(removed, 2);
  EXPECT_EQ(network->DynamicCount(0), 1);
  EXPECT_EQ(network->DynamicCount(1), 2);
  EXPECT_EQ(network->ShotCount(0), 1);
  EXPECT_EQ(network->ShotCount(1), 1);
}

TEST(RetentionTest, OlderThanKeepsShotsWhateverTheirAge) {
  auto network = TwoClasses();
  AddShotAndCorrection(network.get());

  int removed = -1;
  ASSERT_TRUE(network->DropDynamicOlderThan(std::numeric_limits<double>::max(), &removed).ok());

  EXPECT_EQ(removed, 0);
  EXPECT_EQ(network->ShotCount(0), 1);
  EXPECT_EQ(network->ShotCount(1), 1);
}

TEST(RetentionTest, HighestEntropyGoesFirstAcrossClasses) {
  auto network = TwoClasses();
  AddShotAndCorrection(network.get());
  Restore(network.get(), SampleSlots());

  int removed = -1;
  ASSERT_TRUE(network->DropHighestEntropyDynamic(2, &removed).ok());

  // Entropies 0.90 (class 0) and 0.70 (class 1) are the two highest.
  EXPECT_EQ(removed, 2);
  EXPECT_EQ(network->DynamicCount(0), 2);
  EXPECT_EQ(network->DynamicCount(1), 1);
  EXPECT_EQ(network->ShotCount(0), 1);
  EXPECT_EQ(network->ShotCount(1), 1);
}

TEST(RetentionTest, HighestEntropyTieDropsOlderSlot) {
  auto network = TwoClasses();
  std::vector<DynamicSlot> tied = {
      {0, Unit(1, 0.2f, 0, 0), 0.5, 1000},
      {1, Unit(0.2f, 1, 0, 0), 0.5, 2000},
  };
  Restore(network.get(), tied);

  int removed = -1;
  ASSERT_TRUE(network->DropHighestEntropyDynamic(1, &removed).ok());

  EXPECT_EQ(removed, 1);
  EXPECT_EQ(network->DynamicCount(0), 0);
  EXPECT_EQ(network->DynamicCount(1), 1);
}

TEST(RetentionTest, CountAboveSlotsDropsEveryDynamicSlot) {
  auto network = TwoClasses();
  AddShotAndCorrection(network.get());
  Restore(network.get(), SampleSlots());

  int removed = -1;
  ASSERT_TRUE(network->DropHighestEntropyDynamic(100, &removed).ok());

  EXPECT_EQ(removed, 5);
  EXPECT_EQ(network->DynamicCount(0), 0);
  EXPECT_EQ(network->DynamicCount(1), 0);
  EXPECT_EQ(network->ShotCount(0), 1);
}

TEST(RetentionTest, AfterDropStepsLikeNetworkOfKeptSlots) {
  std::vector<DynamicSlot> slots = SampleSlots();
  auto trimmed = TwoClasses();
  AddShotAndCorrection(trimmed.get());
  Restore(trimmed.get(), slots);
  int removed = 0;
  ASSERT_TRUE(trimmed->DropHighestEntropyDynamic(2, &removed).ok());
  ASSERT_TRUE(trimmed->DropDynamicOlderThan(1500, &removed).ok());

  // Left: entropy 0.50 at 3000 and 0.10 at 5000.
  auto rebuilt = TwoClasses();
  AddShotAndCorrection(rebuilt.get());
  Restore(rebuilt.get(), {slots[2], slots[4]});

  EXPECT_EQ(trimmed->DynamicCount(0), 1);
  EXPECT_EQ(trimmed->DynamicCount(1), 1);
  EXPECT_EQ(trimmed->MemoryBytes(), rebuilt->MemoryBytes());
  ExpectSameStep(trimmed.get(), rebuilt.get());
}

TEST(RetentionTest, InvalidArgumentsLeaveNetworkUnchanged) {
  auto network = TwoClasses();
  Restore(network.get(), SampleSlots());
  int removed = 7;

  Status bad_cutoff = network->DropDynamicOlderThan(std::nan(""), &removed);
  Status bad_count = network->DropHighestEntropyDynamic(-1, &removed);

  EXPECT_EQ(bad_cutoff.code, StatusCode::kInvalidArgument) << bad_cutoff.message;
  EXPECT_EQ(bad_count.code, StatusCode::kInvalidArgument) << bad_count.message;
  EXPECT_EQ(removed, 7);
  EXPECT_EQ(network->DynamicCount(0), 3);
  EXPECT_EQ(network->DynamicCount(1), 2);
}

}  // namespace
}  // namespace dualmem
