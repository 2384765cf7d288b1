#include "kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <random>
#include <vector>

namespace dualmem {
namespace {

// Lengths that exercise the unrolled loop, the single-vector loop and the
// scalar remainder of every code path (4-, 8-, 16- and 32-wide steps).
const size_t kLengths[] = {0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 512, 515};

std::vector<float> RandomVector(size_t n, std::mt19937* rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(*rng);
  return v;
}

double ReferenceDot(const float* a, const float* b, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  return sum;
}

// Float accumulation error bound, scaled by the sum of |a_i b_i|.
double DotTolerance(const float* a, const float* b, size_t n) {
  double magnitude = 0.0;
  for (size_t i = 0; i < n; ++i) magnitude += std::fabs(static_cast<double>(a[i]) * b[i]);
  return 1e-6 * magnitude + 1e-7;
}

// Extra error of the int8 SIMD paths, which round the query `a` to int16
// levels: at most half a level, max|a| / 32767 / 2, per element of `b`.
double Int16QueryTolerance(const float* a, const float* b, size_t n) {
  double max_abs = 0.0, b_sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(a[i])));
    b_sum += std::fabs(static_cast<double>(b[i]));
  }
  return 0.5 * max_abs / 32767.0 * b_sum;
}

TEST(Kernels, ReportsCompiledPath) {
  std::string path = KernelPathName();
  RecordProperty("kernel_path", path);
  std::cout << "[kernels] compiled path: " << path << "\n";
  EXPECT_TRUE(path == "avx2" || path == "scalar" || path == "wasm-simd128") << path;
}

TEST(Kernels, DotMatchesReferenceForOddLengths) {
  std::mt19937 rng(1);
  for (size_t n : kLengths) {
    std::vector<float> a = RandomVector(n, &rng), b = RandomVector(n, &rng);
    double expected = ReferenceDot(a.data(), b.data(), n);
    EXPECT_NEAR(Dot(a.data(), b.data(), n), expected, DotTolerance(a.data(), b.data(), n))
        << "length " << n;
  }
}

TEST(Kernels, DotBlockMatchesReferenceInEveryPrecision) {
  std::mt19937 rng(2);
  const Precision precisions[] = {Precision::kFloat32, Precision::kFloat16, Precision::kInt8};
  const size_t kVectors = 5;
  for (Precision precision : precisions) {
    for (size_t dim : kLengths) {
      if (dim == 0) continue;
      std::vector<float> query = RandomVector(dim, &rng);
      std::vector<uint8_t> block(kVectors * dim * PrecisionBytes(precision));
      std::vector<float> scales(kVectors), decoded(kVectors * dim);
      for (size_t v = 0; v < kVectors; ++v) {
        std::vector<float> values = RandomVector(dim, &rng);
        EncodeVector(values.data(), dim, precision, &block[v * dim * PrecisionBytes(precision)],
                     &scales[v]);
        DecodeVector(&block[v * dim * PrecisionBytes(precision)], dim, precision, scales[v],
                     &decoded[v * dim]);
      }
      std::vector<float> out(kVectors);
      DotBlock(query.data(), block.data(), precision, scales.data(), kVectors, dim, out.data());
      for (size_t v = 0; v < kVectors; ++v) {
        const float* stored = &decoded[v * dim];
        double tolerance = DotTolerance(query.data(), stored, dim);
        if (precision == Precision::kInt8) tolerance += Int16QueryTolerance(query.data(), stored, dim);
        EXPECT_NEAR(out[v], ReferenceDot(query.data(), stored, dim), tolerance)
            << PrecisionName(precision) << " dim " << dim << " vector " << v;
      }
    }
  }
}

TEST(Kernels, HalfRoundTripIsExactForEveryHalf) {
  for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
    float value = HalfToFloat(static_cast<uint16_t>(bits));
    uint16_t back = FloatToHalf(value);
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(HalfToFloat(back))) << "bits " << bits;
    } else {
      ASSERT_EQ(back, bits) << "value " << value;
    }
  }
}

TEST(Kernels, HalfRoundsToNearestEven) {
  struct Case {
    float value;
    uint16_t expected;
  };
  const Case cases[] = {
      {1.0f + 0x1p-11f, 0x3c00},        // halfway, even neighbour is 1.0
      {1.0f + 3 * 0x1p-11f, 0x3c02},    // halfway, even neighbour is above
      {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},  // just above halfway rounds up
      {65504.0f, 0x7bff},               // largest half
      {65519.0f, 0x7bff},               // below the overflow midpoint
      {65520.0f, 0x7c00},               // midpoint rounds to even: infinity
      {1e6f, 0x7c00},
      {-1e6f, 0xfc00},
      {0x1p-14f, 0x0400},               // smallest normal
      {0x1p-24f, 0x0001},               // smallest subnormal
      {0x1p-25f, 0x0000},               // halfway to zero, even is zero
      {1.5f * 0x1p-25f, 0x0001},
      {2.5f * 0x1p-24f, 0x0002},        // subnormal tie to even
      {3.5f * 0x1p-24f, 0x0004},
      {-0.0f, 0x8000},
      {1e-30f, 0x0000},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FloatToHalf(c.value), c.expected) << "value " << c.value;
  }
  EXPECT_EQ(FloatToHalf(INFINITY), 0x7c00);
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(NAN))));
}

TEST(Kernels, HalfPicksNearestNeighbourForRandomFloats) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> exponent(-26.0f, 16.0f);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  for (int i = 0; i < 20000; ++i) {
    float value = mantissa(rng) * std::exp2(exponent(rng)) * (i % 2 ? -1.0f : 1.0f);
    if (std::fabs(value) >= 65504.0f) continue;
    uint16_t half = FloatToHalf(value);
    double error = std::fabs(static_cast<double>(HalfToFloat(half)) - value);
    // Both magnitude neighbours must be at least as far; on an equal
    // distance the chosen code must be even.
    for (int step : {-1, 1}) {
      uint16_t neighbour = static_cast<uint16_t>(half + step);
      if ((neighbour & 0x7fff) == 0x7fff || ((half & 0x7fff) == 0 && step < 0)) continue;
      double other = std::fabs(static_cast<double>(HalfToFloat(neighbour)) - value);
      ASSERT_LE(error, other) << "value " << value << " half " << half;
      if (error == other) ASSERT_EQ(half & 1, 0) << "tie not to even for " << value;
    }
  }
}

TEST(Kernels, Int8ErrorIsAtMostHalfAStep) {
  std::mt19937 rng(4);
  for (size_t n : {1, 7, 64, 515}) {
    std::vector<float> values = RandomVector(n, &rng);
    std::vector<int8_t> levels(n);
    std::vector<float> decoded(n);
    float scale = 0.0f;
    EncodeVector(values.data(), n, Precision::kInt8, levels.data(), &scale);
    DecodeVector(levels.data(), n, Precision::kInt8, scale, decoded.data());
    float max_abs = 0.0f;
    for (float v : values) max_abs = std::max(max_abs, std::fabs(v));
    EXPECT_FLOAT_EQ(scale, max_abs / 127.0f);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_LE(std::fabs(decoded[i] - values[i]), 0.5f * scale * (1.0f + 1e-5f))
          << "element " << i << " expected " << values[i] << " got " << decoded[i];
      EXPECT_LE(std::abs(static_cast<int>(levels[i])), 127);
    }
  }
}

TEST(Kernels, Int8OfZeroVectorIsZero) {
  std::vector<float> zeros(9, 0.0f), decoded(9, 1.0f);
  std::vector<int8_t> levels(9, 5);
  float scale = -1.0f;
  EncodeVector(zeros.data(), zeros.size(), Precision::kInt8, levels.data(), &scale);
  DecodeVector(levels.data(), zeros.size(), Precision::kInt8, scale, decoded.data());
  EXPECT_EQ(scale, 0.0f);
  for (float value : decoded) EXPECT_EQ(value, 0.0f);
}

TEST(Kernels, SoftmaxMatchesReferenceWithoutOverflow) {
  const float logits[] = {10.0f, -3.0f, 9.5f, 0.0f, 12.0f};
  std::vector<double> probs(5);
  ScaledSoftmax(logits, 5, 100.0, probs.data());  // exp(1200) alone would overflow
  double sum = 0.0;
  for (double p : probs) {
    EXPECT_TRUE(std::isfinite(p));
    sum += p;
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  EXPECT_NEAR(probs[0] / probs[4], std::exp(-200.0), 1e-90);

  ScaledSoftmax(logits, 5, 0.1, probs.data());
  double norm = 0.0;
  for (float l : logits) norm += std::exp(0.1 * l);
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(probs[i], std::exp(0.1 * logits[i]) / norm, 1e-12) << "class " << i;
  }
}

TEST(Kernels, ReadoutWeightsMatchExp) {
  const float beta = 5.5f;
  std::vector<float> similarities;
  for (int i = 0; i <= 2003; ++i) similarities.push_back(-1.0f + i * 0.001f);  // [-1, 1.003]
  similarities.push_back(-20.0f);  // exp(-115.5) underflows; must stay finite and tiny
  std::vector<float> weights(similarities.size());
  ReadoutWeights(similarities.data(), similarities.size(), beta, weights.data());
  for (size_t i = 0; i + 1 < similarities.size(); ++i) {
    double expected = std::exp(static_cast<double>(beta) * (static_cast<double>(similarities[i]) - 1.0));
    EXPECT_NEAR(weights[i], expected, 1e-6 * expected) << "similarity " << similarities[i];
  }
  EXPECT_TRUE(std::isfinite(weights.back()));
  EXPECT_LT(weights.back(), 1e-37f);
}

// Sizes cover empty and single-row matrices and every remainder of the
// 4- and 8-wide row loops. The stride leaves unused columns of 1e30, which
// must not be read, and every third weight is zero so that its row is
// skipped.
TEST(Kernels, SymmetricQuadraticFormMatchesFullProduct) {
  std::mt19937 rng(5);
  for (size_t n : {0, 1, 2, 3, 5, 8, 9, 16, 17, 51}) {
    const size_t stride = n + 3;
    std::vector<float> matrix(stride * std::max<size_t>(n, 1), 1e30f);
    std::vector<float> weights = RandomVector(n, &rng);
    for (size_t i = 0; i < n; i += 3) weights[i] = 0.0f;
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = i; j < n; ++j) {
        float value = std::normal_distribution<float>(0.0f, 1.0f)(rng);
        matrix[i * stride + j] = value;
        matrix[j * stride + i] = value;
      }
    }
    double expected = 0.0, magnitude = 0.0;
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        double term = static_cast<double>(weights[i]) * matrix[i * stride + j] * weights[j];
        expected += term;
        magnitude += std::fabs(term);
      }
    }
    EXPECT_NEAR(SymmetricQuadraticForm(matrix.data(), stride, weights.data(), n), expected,
                1e-6 * magnitude + 1e-12)
        << "n " << n;
  }
}

TEST(Kernels, EntropyOfUniformAndOneHot) {
  std::vector<double> uniform(8, 0.125);
  double expected = -std::log(0.125 + 1e-8);
  EXPECT_NEAR(Entropy(uniform.data(), 8), expected, 1e-12);

  // ln(p + 1e-8) makes a one-hot distribution slightly negative.
  std::vector<double> one_hot = {0.0, 1.0, 0.0};
  EXPECT_NEAR(Entropy(one_hot.data(), 3), -std::log(1.0 + 1e-8), 1e-20);
}

TEST(Kernels, NormalizeL2GivesUnitLength) {
  std::vector<float> v = {3.0f, 0.0f, -4.0f};
  ASSERT_TRUE(NormalizeL2(v.data(), v.size(), v.data()));
  EXPECT_NEAR(v[0], 0.6f, 1e-7f);
  EXPECT_NEAR(v[2], -0.8f, 1e-7f);
  EXPECT_NEAR(SumOfSquares(v.data(), v.size()), 1.0, 1e-7);
}

TEST(Kernels, NormalizeL2RejectsZeroAndNonFinite) {
  std::vector<float> zero(4, 0.0f), out(4);
  EXPECT_FALSE(NormalizeL2(zero.data(), 4, out.data()));
  std::vector<float> infinite = {1.0f, INFINITY, 0.0f, 0.0f};
  EXPECT_FALSE(NormalizeL2(infinite.data(), 4, out.data()));
  std::vector<float> nan = {1.0f, NAN, 0.0f, 0.0f};
  EXPECT_FALSE(NormalizeL2(nan.data(), 4, out.data()));
}

}  // namespace
}  // namespace dualmem
