#include "memory_bank.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace dualmem {
namespace {

const Precision kPrecisions[] = {Precision::kFloat32, Precision::kFloat16, Precision::kInt8};

std::vector<float> RandomUnit(int dim, std::mt19937* rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(dim);
  for (float& x : v) x = normal(*rng);
  NormalizeL2(v.data(), dim, v.data());
  return v;
}

SlotInfo Info(SlotSource source, double entropy, uint64_t sequence, uint16_t view = 0) {
  SlotInfo info;
  info.source = source;
  info.entropy = entropy;
  info.sequence = sequence;
  info.view = view;
  return info;
}

// Tolerance of a similarity in `precision`: float rounding, plus for int8 the
// rounding of the query to int16 levels (half a level per element).
double SimilarityTolerance(Precision precision, const float* query, const float* stored, int dim,
                           double float_tolerance) {
  if (precision != Precision::kInt8) return float_tolerance;
  double max_abs = 0.0, stored_sum = 0.0;
  for (int k = 0; k < dim; ++k) {
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(query[k])));
    stored_sum += std::fabs(static_cast<double>(stored[k]));
  }
  return float_tolerance + 0.5 * max_abs / 32767.0 * stored_sum;
}

// Checks every Gram entry against dot products of freshly decoded slots.
void ExpectGramMatchesRecomputed(const MemoryBank& bank, int class_index) {
  int n = bank.slot_count(class_index);
  int dim = bank.dim();
  std::vector<float> a(dim), b(dim);
  for (int i = 0; i < n; ++i) {
    bank.DecodeSlot(class_index, i, a.data());
    for (int j = 0; j < n; ++j) {
      bank.DecodeSlot(class_index, j, b.data());
      double expected = 0.0;
      for (int k = 0; k < dim; ++k) expected += static_cast<double>(a[k]) * b[k];
      ASSERT_NEAR(bank.gram(class_index, i, j), expected,
                  SimilarityTolerance(bank.precision(), a.data(), b.data(), dim, 1e-5))
          << PrecisionName(bank.precision()) << " class " << class_index << " entry " << i
          << "," << j;
    }
  }
}

TEST(MemoryBank, SimilaritiesUseStoredVectors) {
  std::mt19937 rng(10);
  for (Precision precision : kPrecisions) {
    MemoryBank bank(37, precision);
    bank.AddClass();
    for (int i = 0; i < 6; ++i) bank.AppendSlot(0, RandomUnit(37, &rng).data(), Info(SlotSource::kDynamic, 0, i));
    std::vector<float> query = RandomUnit(37, &rng), sims(6), stored(37);
    BankQuery prepared;
    bank.PrepareQuery(query.data(), &prepared);
    bank.Similarities(0, prepared, sims.data());
    for (int j = 0; j < 6; ++j) {
      bank.DecodeSlot(0, j, stored.data());
      double expected = 0.0;
      for (int k = 0; k < 37; ++k) expected += static_cast<double>(query[k]) * stored[k];
      EXPECT_NEAR(sims[j], expected, SimilarityTolerance(precision, query.data(), stored.data(), 37, 1e-6))
          << PrecisionName(precision) << " slot " << j;
    }
  }
}

// Classes of 5, 0 and 9 slots, so that a wrong offset between classes or a
// skipped empty class shows up as a mismatch.
TEST(MemoryBank, AllSimilaritiesEqualPerClassSimilarities) {
  std::mt19937 rng(17);
  const int dim = 40;
  const int slot_counts[3] = {5, 0, 9};
  for (Precision precision : kPrecisions) {
    MemoryBank bank(dim, precision);
    for (int c = 0; c < 3; ++c) bank.AddClass();
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < slot_counts[c]; ++i) {
        bank.AppendSlot(c, RandomUnit(dim, &rng).data(), Info(SlotSource::kDynamic, 0, i));
      }
    }
    ASSERT_EQ(bank.total_slot_count(), 14u) << PrecisionName(precision);

    std::vector<float> query = RandomUnit(dim, &rng), all(14), per_class(9), stored(dim);
    BankQuery prepared;
    bank.PrepareQuery(query.data(), &prepared);
    bank.AllSimilarities(prepared, all.data());
    int offset = 0;
    for (int c = 0; c < 3; ++c) {
      bank.Similarities(c, prepared, per_class.data());
      for (int j = 0; j < slot_counts[c]; ++j) {
        // Bit for bit: both must run the same kernel on the same bytes.
        EXPECT_EQ(all[offset + j], per_class[j])
            << PrecisionName(precision) << " class " << c << " slot " << j;
        bank.DecodeSlot(c, j, stored.data());
        double expected = 0.0;
        for (int k = 0; k < dim; ++k) expected += static_cast<double>(query[k]) * stored[k];
        EXPECT_NEAR(all[offset + j], expected,
                    SimilarityTolerance(precision, query.data(), stored.data(), dim, 1e-6))
            << PrecisionName(precision) << " class " << c << " slot " << j;
      }
      offset += slot_counts[c];
    }
  }
}

TEST(MemoryBank, Float16StoresRepresentableValuesExactly) {
  MemoryBank bank(4, Precision::kFloat16);
  bank.AddClass();
  const float values[4] = {0.5f, -0.25f, 0.75f, 0.375f};  // all exact halves
  bank.AppendSlot(0, values, Info(SlotSource::kText, 0, 0));
  float decoded[4];
  bank.DecodeSlot(0, 0, decoded);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(decoded[i], values[i]) << "element " << i;
}

TEST(MemoryBank, GramMatchesRecomputedAfterManyReplacements) {
  std::mt19937 rng(11);
  for (Precision precision : kPrecisions) {
    MemoryBank bank(48, precision);
    for (int c = 0; c < 3; ++c) bank.AddClass();
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < 8; ++i) {
        SlotSource source = i % 3 == 0 ? SlotSource::kShot : SlotSource::kDynamic;
        bank.AppendSlot(c, RandomUnit(48, &rng).data(), Info(source, i, i));
      }
    }
    std::uniform_int_distribution<int> pick_class(0, 2), pick_slot(0, 7);
    for (int step = 0; step < 300; ++step) {
      int c = pick_class(rng), slot = pick_slot(rng);
      bank.ReplaceSlot(c, slot, RandomUnit(48, &rng).data(), bank.slot_info(c, slot));
    }
    for (int c = 0; c < 3; ++c) ExpectGramMatchesRecomputed(bank, c);

    // Compaction must carry the matrix along with the slots.
    bank.RemoveSlots(1, SlotSource::kShot);
    bank.AppendSlot(1, RandomUnit(48, &rng).data(), Info(SlotSource::kShot, 0, 99));
    for (int c = 0; c < 3; ++c) ExpectGramMatchesRecomputed(bank, c);
  }
}

// Snapshots rebuild a bank slot by slot, which gives the same matrix only if
// an entry does not depend on which of its two slots was stored last.
TEST(MemoryBank, GramIsExactlySymmetricAfterReplacements) {
  std::mt19937 rng(13);
  for (Precision precision : kPrecisions) {
    MemoryBank bank(40, precision);
    bank.AddClass();
    for (int i = 0; i < 6; ++i) {
      bank.AppendSlot(0, RandomUnit(40, &rng).data(), Info(SlotSource::kDynamic, i, i));
    }
    for (int step = 0; step < 20; ++step) {
      int slot = step % 6;
      bank.ReplaceSlot(0, slot, RandomUnit(40, &rng).data(), bank.slot_info(0, slot));
    }

    MemoryBank rebuilt(40, precision);
    rebuilt.AddClass();
    for (int i = 0; i < 6; ++i) {
      rebuilt.AppendStoredSlot(0, bank.stored_slot(0, i), bank.slot_scale(0, i),
                               bank.slot_info(0, i));
    }
    for (int i = 0; i < 6; ++i) {
      for (int j = 0; j < 6; ++j) {
        EXPECT_EQ(bank.gram(0, i, j), bank.gram(0, j, i))
            << PrecisionName(precision) << " entry " << i << "," << j;
        EXPECT_EQ(rebuilt.gram(0, i, j), bank.gram(0, i, j))
            << PrecisionName(precision) << " entry " << i << "," << j;
      }
    }
  }
}

TEST(MemoryBank, GramGrowsPastReservedStride) {
  std::mt19937 rng(12);
  MemoryBank bank(16, Precision::kFloat32);
  bank.AddClass();
  bank.Reserve(0, 2);
  for (int i = 0; i < 19; ++i) bank.AppendSlot(0, RandomUnit(16, &rng).data(), Info(SlotSource::kDynamic, 0, i));
  EXPECT_EQ(bank.slot_count(0), 19);
  ExpectGramMatchesRecomputed(bank, 0);
}

TEST(MemoryBank, WeightedNormSquaredEqualsPrototypeNorm) {
  std::mt19937 rng(13);
  const int kDim = 33, kSlots = 9;
  for (Precision precision : kPrecisions) {
    MemoryBank bank(kDim, precision);
    bank.AddClass();
    for (int i = 0; i < kSlots; ++i) bank.AppendSlot(0, RandomUnit(kDim, &rng).data(), Info(SlotSource::kDynamic, 0, i));
    std::vector<float> weights(kSlots);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    for (float& w : weights) w = uniform(rng);
    weights[3] = 0.0f;  // a masked-out slot

    std::vector<double> prototype(kDim, 0.0);
    std::vector<float> stored(kDim);
    for (int j = 0; j < kSlots; ++j) {
      bank.DecodeSlot(0, j, stored.data());
      for (int k = 0; k < kDim; ++k) prototype[k] += weights[j] * stored[k];
    }
    double expected = 0.0;
    for (double x : prototype) expected += x * x;
    EXPECT_NEAR(bank.WeightedNormSquared(0, weights.data()), expected, 1e-5 * expected)
        << PrecisionName(precision);
  }
}

TEST(MemoryBank, RemoveSlotsKeepsOrderOfOthers) {
  std::mt19937 rng(14);
  MemoryBank bank(8, Precision::kFloat32);
  bank.AddClass();
  const SlotSource sources[] = {SlotSource::kText, SlotSource::kShot, SlotSource::kDynamic,
                                SlotSource::kShot, SlotSource::kDynamic};
  std::vector<std::vector<float>> vectors;
  for (int i = 0; i < 5; ++i) {
    vectors.push_back(RandomUnit(8, &rng));
    bank.AppendSlot(0, vectors.back().data(), Info(sources[i], i, i));
  }
  bank.RemoveSlots(0, SlotSource::kShot);
  ASSERT_EQ(bank.slot_count(0), 3);
  const uint64_t expected_sequence[] = {0, 2, 4};
  std::vector<float> decoded(8);
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(bank.slot_info(0, j).sequence, expected_sequence[j]) << "slot " << j;
    bank.DecodeSlot(0, j, decoded.data());
    EXPECT_EQ(decoded, vectors[expected_sequence[j]]) << "slot " << j;
  }
  ExpectGramMatchesRecomputed(bank, 0);
}

TEST(MemoryBank, RemoveClassShiftsLaterClasses) {
  std::mt19937 rng(15);
  MemoryBank bank(8, Precision::kInt8);
  for (int c = 0; c < 3; ++c) {
    bank.AddClass();
    for (int i = 0; i <= c; ++i) bank.AppendSlot(c, RandomUnit(8, &rng).data(), Info(SlotSource::kDynamic, 0, 10 * c + i));
  }
  bank.RemoveClass(1);
  ASSERT_EQ(bank.num_classes(), 2);
  EXPECT_EQ(bank.slot_count(0), 1);
  EXPECT_EQ(bank.slot_count(1), 3);
  EXPECT_EQ(bank.slot_info(1, 0).sequence, 20u);
  ExpectGramMatchesRecomputed(bank, 1);
}

TEST(MemoryBank, MemoryBytesShrinkWithPrecision) {
  std::mt19937 rng(16);
  size_t bytes[3];
  for (int p = 0; p < 3; ++p) {
    MemoryBank bank(512, kPrecisions[p]);
    bank.AddClass();
    for (int i = 0; i < 10; ++i) bank.AppendSlot(0, RandomUnit(512, &rng).data(), Info(SlotSource::kDynamic, 0, i));
    bytes[p] = bank.MemoryBytes();
  }
  size_t overhead = 10 * sizeof(SlotInfo) + 100 * sizeof(float);
  EXPECT_EQ(bytes[0], 10 * 512 * 4 + overhead);
  EXPECT_EQ(bytes[1], 10 * 512 * 2 + overhead);
  EXPECT_EQ(bytes[2], 10 * 512 * 1 + 10 * sizeof(float) + overhead);
}

}  // namespace
}  // namespace dualmem
