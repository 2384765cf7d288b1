#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#define DUALMEM_KERNELS_WASM_SIMD 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define DUALMEM_KERNELS_AVX2 1
#endif

namespace dualmem {
namespace {

uint32_t FloatBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

float BitsToFloat(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// Largest int8 magnitude used by the symmetric quantizer. Levels are clamped
// to [-127, 127], so -128 never occurs and the range is symmetric.
constexpr float kInt8MaxLevel = 127.0f;

// The SIMD float16 decoders shift the 15 magnitude bits into a float's
// exponent and mantissa positions and multiply by 2^112, which rebiases the
// exponent from 15 to 127 and turns half subnormals into normal floats
// exactly. Half infinities and NaNs would come out as large finite values,
// but stored vectors hold components of unit vectors, which are all finite.
constexpr float kHalfRebias = 5.192296858534828e+33f;  // 2^112

// Int8 dot products round the query to int16 levels and multiply in
// integers: SIMD128 and AVX2 have multiply-adds that do 8 or 16 products per
// instruction without widening every element to float. Sums are moved to
// float every kInt8BlockLength elements: a block adds at most
// 512 * 32767 * 127 < 2^31 per lane, so the int32 lanes cannot overflow.
constexpr float kInt16MaxLevel = 32767.0f;
constexpr size_t kInt8BlockLength = 512;
// DotBlock's int8 queries longer than this use a float path, so that their
// int16 copy fits in a stack buffer.
constexpr size_t kMaxInt16QueryLength = 4096;

// exp(x) for the readout weights, by range reduction x = n ln2 + r with
// |r| <= ln2 / 2 and a degree-6 Taylor polynomial for exp(r), whose
// truncation error r^7 / 7! is below 1.3e-7 relative. ln2 is split into a
// high part with trailing zero bits and a low part, so that n * ln2_high is
// exact and r keeps full precision.
constexpr float kLog2E = 1.44269504088896341f;
constexpr float kLn2High = 0.693145751953125f;
constexpr float kLn2Low = 1.42860682030941723e-6f;
// exp underflows below -87.3 and overflows above 88.7 in float; clamping
// keeps 2^n representable.
constexpr float kExpMinInput = -87.3f;
constexpr float kExpMaxInput = 88.7f;

// Float query against int8 levels, unscaled, for DotBlock queries too long
// for its stack buffer of int16 levels.
float DotInt8(const float* a, const int8_t* b, size_t n) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * static_cast<float>(b[i]);
    s1 += a[i + 1] * static_cast<float>(b[i + 1]);
    s2 += a[i + 2] * static_cast<float>(b[i + 2]);
    s3 += a[i + 3] * static_cast<float>(b[i + 3]);
  }
  float sum = (s0 + s1) + (s2 + s3);
  for (; i < n; ++i) sum += a[i] * static_cast<float>(b[i]);
  return sum;
}


#if defined(DUALMEM_KERNELS_AVX2)

float HorizontalSum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

// Eight float16 values to floats. F16C converts in one instruction; without
// it the integer rebias trick above does the same for finite values.
__m256 LoadHalf8(const uint16_t* p) {
  __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
#if defined(__F16C__)
  return _mm256_cvtph_ps(halves);
#else
  __m256i wide = _mm256_cvtepu16_epi32(halves);
  __m256i sign = _mm256_slli_epi32(_mm256_and_si256(wide, _mm256_set1_epi32(0x8000)), 16);
  __m256i magnitude = _mm256_slli_epi32(_mm256_and_si256(wide, _mm256_set1_epi32(0x7fff)), 13);
  __m256 value = _mm256_mul_ps(_mm256_castsi256_ps(magnitude), _mm256_set1_ps(kHalfRebias));
  return _mm256_or_ps(value, _mm256_castsi256_ps(sign));
#endif
}

// Each loop keeps four independent accumulators: an FMA has a latency of
// about four cycles and two issue per cycle, so one accumulator would leave
// the FMA units idle waiting on its own result.
float DotFloat32(const float* a, const float* b, size_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  size_t i = 0;

  // Main loop, 32 elements per iteration.
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }

  // Whole vectors left over.
  for (; i + 8 <= n; i += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  float sum = HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));

  // Remainder, fewer than eight elements.
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotFloat16(const float* a, const uint16_t* b, size_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), LoadHalf8(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), LoadHalf8(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), LoadHalf8(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), LoadHalf8(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), LoadHalf8(b + i), acc0);
  }
  float sum = HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += a[i] * HalfToFloat(b[i]);
  return sum;
}

// Returns sum_i a_i b_i over int16 query levels and int8 slot levels; the
// caller applies both scales once.
float DotInt8Levels(const int16_t* a, const int8_t* b, size_t n) {
  float total = 0.0f;
  size_t i = 0;
  size_t whole = n - n % 32;
  while (i < whole) {
    size_t block_end = std::min(whole, i + kInt8BlockLength);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (; i < block_end; i += 32) {
      __m256i low = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
      __m256i high = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 16)));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(low, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i))));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(high, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 16))));
    }
    total += HorizontalSum(_mm256_cvtepi32_ps(_mm256_add_epi32(acc0, acc1)));
  }

  // Remainder, fewer than 32 elements, in exact integer arithmetic.
  int32_t rest = 0;
  for (; i < n; ++i) rest += static_cast<int32_t>(a[i]) * b[i];
  return total + static_cast<float>(rest);
}

// wᵀMw over the upper triangle. Each row's products go into one vector
// accumulator, which is scaled by the row's weight into a running vector
// total. That leaves one horizontal sum per call instead of one per row:
// rows are short (a class's slot count), so per-row overhead would cost as
// much as the products.
double QuadraticFormUpper(const float* matrix, size_t stride, const float* w, size_t n) {
  __m256 upper = _mm256_setzero_ps();
  double rest = 0.0;  // diagonal terms and the scalar row remainders
  for (size_t i = 0; i < n; ++i) {
    if (w[i] == 0.0f) continue;
    const float* row = matrix + i * stride;
    __m256 acc = _mm256_setzero_ps();
    size_t j = i + 1;
    for (; j + 8 <= n; j += 8) {
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(w + j), acc);
    }
    float tail = 0.0f;
    for (; j < n; ++j) tail += row[j] * w[j];
    upper = _mm256_fmadd_ps(_mm256_set1_ps(w[i]), acc, upper);
    rest += static_cast<double>(w[i]) * (w[i] * static_cast<double>(row[i]) + 2.0 * tail);
  }
  return rest + 2.0 * static_cast<double>(HorizontalSum(upper));
}

// Readout weights exp(beta (s - 1)), eight at a time.
void ExpReadoutWeights(const float* similarities, size_t n, float beta, float* out) {
  const __m256 beta_v = _mm256_set1_ps(beta), one = _mm256_set1_ps(1.0f);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_mul_ps(beta_v, _mm256_sub_ps(_mm256_loadu_ps(similarities + i), one));
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpMinInput)), _mm256_set1_ps(kExpMaxInput));
    __m256 n_float = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n_float, _mm256_set1_ps(kLn2High), x);
    r = _mm256_fnmadd_ps(n_float, _mm256_set1_ps(kLn2Low), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, one);
    p = _mm256_fmadd_ps(p, r, one);
    __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n_float), _mm256_set1_epi32(127)), 23);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(p, _mm256_castsi256_ps(exponent)));
  }

  // Remainder, fewer than eight values: one more pass of the loop above
  // over a padded copy, so that they get the same polynomial.
  if (i < n) {
    float padded_in[8] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    float padded_out[8];
    std::copy(similarities + i, similarities + n, padded_in);
    ExpReadoutWeights(padded_in, 8, beta, padded_out);
    std::copy(padded_out, padded_out + (n - i), out + i);
  }
}

#elif defined(DUALMEM_KERNELS_WASM_SIMD)

float HorizontalSum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

// Four float16 values to floats with the rebias trick: WASM SIMD128 has no
// half-precision conversion instruction. Loading with sign extension and
// shifting by 13 puts the magnitude in bits 13-27 and copies of the sign in
// bits 28-31. One mask keeps bit 31 as the float sign, and the multiply
// preserves it, so the sign needs no separate handling.
v128_t LoadHalf4(const uint16_t* p) {
  v128_t shifted = wasm_i32x4_shl(wasm_i32x4_load16x4(p), 13);
  v128_t bits = wasm_v128_and(shifted, wasm_i32x4_splat(static_cast<int32_t>(0x8fffe000u)));
  return wasm_f32x4_mul(bits, wasm_f32x4_splat(kHalfRebias));
}

// SIMD128 has no fused multiply-add, so each step is a multiply and an add.
// Four independent accumulators hide the add latency, as on x86.
float DotFloat32(const float* a, const float* b, size_t n) {
  v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  size_t i = 0;

  // Main loop, 16 elements per iteration.
  for (; i + 16 <= n; i += 16) {
    acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4)));
    acc2 = wasm_f32x4_add(acc2, wasm_f32x4_mul(wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8)));
    acc3 = wasm_f32x4_add(acc3, wasm_f32x4_mul(wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12)));
  }

  // Whole vectors left over.
  for (; i + 4 <= n; i += 4) {
    acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  }
  float sum = HorizontalSum(wasm_f32x4_add(wasm_f32x4_add(acc0, acc1), wasm_f32x4_add(acc2, acc3)));

  // Remainder, fewer than four elements.
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotFloat16(const float* a, const uint16_t* b, size_t n) {
  v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_v128_load(a + i), LoadHalf4(b + i)));
    acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(wasm_v128_load(a + i + 4), LoadHalf4(b + i + 4)));
    acc2 = wasm_f32x4_add(acc2, wasm_f32x4_mul(wasm_v128_load(a + i + 8), LoadHalf4(b + i + 8)));
    acc3 = wasm_f32x4_add(acc3, wasm_f32x4_mul(wasm_v128_load(a + i + 12), LoadHalf4(b + i + 12)));
  }
  for (; i + 4 <= n; i += 4) {
    acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_v128_load(a + i), LoadHalf4(b + i)));
  }
  float sum = HorizontalSum(wasm_f32x4_add(wasm_f32x4_add(acc0, acc1), wasm_f32x4_add(acc2, acc3)));
  for (; i < n; ++i) sum += a[i] * HalfToFloat(b[i]);
  return sum;
}

// Returns sum_i a_i b_i over int16 query levels and int8 slot levels; the
// caller applies both scales once. i32x4.dot_i16x8 does eight products and
// the pairwise adds in one instruction.
float DotInt8Levels(const int16_t* a, const int8_t* b, size_t n) {
  float total = 0.0f;
  size_t i = 0;
  size_t whole = n - n % 16;
  while (i < whole) {
    size_t block_end = std::min(whole, i + kInt8BlockLength);
    v128_t acc0 = wasm_i32x4_splat(0), acc1 = acc0;
    for (; i < block_end; i += 16) {
      v128_t bytes = wasm_v128_load(b + i);
      acc0 = wasm_i32x4_add(acc0, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(bytes), wasm_v128_load(a + i)));
      acc1 = wasm_i32x4_add(acc1, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(bytes), wasm_v128_load(a + i + 8)));
    }
    total += HorizontalSum(wasm_f32x4_convert_i32x4(wasm_i32x4_add(acc0, acc1)));
  }

  // Remainder, fewer than 16 elements, in exact integer arithmetic.
  int32_t rest = 0;
  for (; i < n; ++i) rest += static_cast<int32_t>(a[i]) * b[i];
  return total + static_cast<float>(rest);
}

// wᵀMw over the upper triangle, with one vector total over all rows as in
// the AVX2 path.
double QuadraticFormUpper(const float* matrix, size_t stride, const float* w, size_t n) {
  v128_t upper = wasm_f32x4_splat(0.0f);
  double rest = 0.0;  // diagonal terms and the scalar row remainders
  for (size_t i = 0; i < n; ++i) {
    if (w[i] == 0.0f) continue;
    const float* row = matrix + i * stride;
    v128_t acc = wasm_f32x4_splat(0.0f);
    size_t j = i + 1;
    for (; j + 4 <= n; j += 4) {
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(row + j), wasm_v128_load(w + j)));
    }
    float tail = 0.0f;
    for (; j < n; ++j) tail += row[j] * w[j];
    upper = wasm_f32x4_add(upper, wasm_f32x4_mul(wasm_f32x4_splat(w[i]), acc));
    rest += static_cast<double>(w[i]) * (w[i] * static_cast<double>(row[i]) + 2.0 * tail);
  }
  return rest + 2.0 * static_cast<double>(HorizontalSum(upper));
}

// Readout weights exp(beta (s - 1)), four at a time. The scalar exp of the
// WASM C library is a function call per value, several times slower.
void ExpReadoutWeights(const float* similarities, size_t n, float beta, float* out) {
  const v128_t beta_v = wasm_f32x4_splat(beta), one = wasm_f32x4_splat(1.0f);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t x = wasm_f32x4_mul(beta_v, wasm_f32x4_sub(wasm_v128_load(similarities + i), one));
    x = wasm_f32x4_min(wasm_f32x4_max(x, wasm_f32x4_splat(kExpMinInput)), wasm_f32x4_splat(kExpMaxInput));
    v128_t n_float = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(kLog2E)));
    v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n_float, wasm_f32x4_splat(kLn2High)));
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(n_float, wasm_f32x4_splat(kLn2Low)));
    v128_t p = wasm_f32x4_splat(1.0f / 720.0f);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 120.0f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 24.0f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 6.0f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(0.5f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), one);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), one);
    v128_t exponent = wasm_i32x4_shl(
        wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n_float), wasm_i32x4_splat(127)), 23);
    wasm_v128_store(out + i, wasm_f32x4_mul(p, exponent));
  }

  // Remainder, fewer than four values: one more pass of the loop above over
  // a padded copy. A class's slot count is rarely a multiple of four, so
  // the C library's exp here would cost a call for up to three slots of
  // every class.
  if (i < n) {
    float padded_in[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    float padded_out[4];
    std::copy(similarities + i, similarities + n, padded_in);
    ExpReadoutWeights(padded_in, 4, beta, padded_out);
    std::copy(padded_out, padded_out + (n - i), out + i);
  }
}

#else  // Portable scalar code.

// Four partial sums break the dependency chain of a single running sum, so
// the CPU can overlap the additions. Compilers do not reorder float sums
// without -ffast-math.
float DotFloat32(const float* a, const float* b, size_t n) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  float sum = (s0 + s1) + (s2 + s3);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotFloat16(const float* a, const uint16_t* b, size_t n) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * HalfToFloat(b[i]);
    s1 += a[i + 1] * HalfToFloat(b[i + 1]);
    s2 += a[i + 2] * HalfToFloat(b[i + 2]);
    s3 += a[i + 3] * HalfToFloat(b[i + 3]);
  }
  float sum = (s0 + s1) + (s2 + s3);
  for (; i < n; ++i) sum += a[i] * HalfToFloat(b[i]);
  return sum;
}

// Integer products are exact, and int64 cannot overflow for any length
// that fits in memory.
float DotInt8Levels(const int16_t* a, const int8_t* b, size_t n) {
  int64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<int32_t>(a[i]) * b[i];
  return static_cast<float>(sum);
}

// wᵀMw over the upper triangle, one row at a time.
double QuadraticFormUpper(const float* matrix, size_t stride, const float* w, size_t n) {
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (w[i] == 0.0f) continue;
    const float* row = matrix + i * stride;
    double off_diagonal = DotFloat32(row + i + 1, w + i + 1, n - i - 1);
    total += static_cast<double>(w[i]) * (w[i] * static_cast<double>(row[i]) + 2.0 * off_diagonal);
  }
  return total;
}

// Readout weights exp(beta (s - 1)) with the C library's exp.
void ExpReadoutWeights(const float* similarities, size_t n, float beta, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = std::exp(beta * (similarities[i] - 1.0f));
}

#endif

}  // namespace

const char* PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kFloat32:
      return "float32";
    case Precision::kFloat16:
      return "float16";
    case Precision::kInt8:
      return "int8";
  }
  return "unknown";
}

size_t PrecisionBytes(Precision precision) {
  switch (precision) {
    case Precision::kFloat32:
      return 4;
    case Precision::kFloat16:
      return 2;
    case Precision::kInt8:
      return 1;
  }
  return 4;
}

const char* KernelPathName() {
#if defined(DUALMEM_KERNELS_WASM_SIMD)
  return "wasm-simd128";
#elif defined(DUALMEM_KERNELS_AVX2)
  return "avx2";
#else
  return "scalar";
#endif
}

uint16_t FloatToHalf(float value) {
  uint32_t bits = FloatBits(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t magnitude = bits & 0x7fffffffu;

  // Infinity and NaN; a NaN keeps a set quiet bit so it stays a NaN.
  if (magnitude >= 0x7f800000u) {
    return sign | 0x7c00u | (magnitude > 0x7f800000u ? 0x0200u : 0u);
  }
  // 65520 is halfway between the largest half, 65504, and 65536; ties go to
  // the even neighbour, which is infinity.
  if (magnitude >= 0x477ff000u) return sign | 0x7c00u;

  // Half normals: rebias the exponent from 127 to 15 and round away the 13
  // low mantissa bits. A carry out of the mantissa correctly bumps the
  // exponent.
  if (magnitude >= 0x38800000u) {
    uint32_t half = (magnitude >> 13) - (112u << 10);
    uint32_t rest = magnitude & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
    return sign | static_cast<uint16_t>(half);
  }

  // Half subnormals, in units of 2^-24. At or below 2^-25 the value rounds
  // to zero (2^-25 itself ties to the even zero).
  if (magnitude <= 0x33000000u) return sign;
  uint32_t exponent = magnitude >> 23;
  uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126u - exponent;  // 14..24 here
  uint32_t half = mantissa >> shift;
  uint32_t rest = mantissa & ((1u << shift) - 1u);
  uint32_t halfway = 1u << (shift - 1u);
  if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
  return sign | static_cast<uint16_t>(half);
}

float HalfToFloat(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0x1fu) return BitsToFloat(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) return BitsToFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));

  // Zero and subnormals: mantissa * 2^-24, exact in float.
  float value = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
  return sign ? -value : value;
}

void EncodeVector(const float* values, size_t count, Precision precision,
                  void* out, float* scale) {
  *scale = 1.0f;
  switch (precision) {
    case Precision::kFloat32:
      std::memcpy(out, values, count * sizeof(float));
      return;
    case Precision::kFloat16: {
      uint16_t* halves = static_cast<uint16_t*>(out);
      for (size_t i = 0; i < count; ++i) halves[i] = FloatToHalf(values[i]);
      return;
    }
    case Precision::kInt8: {
      int8_t* levels = static_cast<int8_t*>(out);
      float max_abs = 0.0f;
      for (size_t i = 0; i < count; ++i) max_abs = std::max(max_abs, std::fabs(values[i]));
      *scale = max_abs / kInt8MaxLevel;
      for (size_t i = 0; i < count; ++i) {
        float level = *scale > 0.0f ? std::nearbyint(values[i] / *scale) : 0.0f;
        level = std::min(kInt8MaxLevel, std::max(-kInt8MaxLevel, level));
        levels[i] = static_cast<int8_t>(level);
      }
      return;
    }
  }
}

void DecodeVector(const void* stored, size_t count, Precision precision,
                  float scale, float* out) {
  switch (precision) {
    case Precision::kFloat32:
      std::memcpy(out, stored, count * sizeof(float));
      return;
    case Precision::kFloat16: {
      const uint16_t* halves = static_cast<const uint16_t*>(stored);
      for (size_t i = 0; i < count; ++i) out[i] = HalfToFloat(halves[i]);
      return;
    }
    case Precision::kInt8: {
      const int8_t* levels = static_cast<const int8_t*>(stored);
      for (size_t i = 0; i < count; ++i) out[i] = scale * static_cast<float>(levels[i]);
      return;
    }
  }
}

float Dot(const float* a, const float* b, size_t count) {
  return DotFloat32(a, b, count);
}

float QuantizeQueryInt16(const float* query, size_t count, int16_t* levels) {
  float max_abs = 0.0f;
  for (size_t i = 0; i < count; ++i) max_abs = std::max(max_abs, std::fabs(query[i]));
  if (max_abs == 0.0f) {
    std::fill(levels, levels + count, static_cast<int16_t>(0));
    return 0.0f;
  }
  float inverse = kInt16MaxLevel / max_abs;
  for (size_t i = 0; i < count; ++i) {
    levels[i] = static_cast<int16_t>(std::nearbyint(query[i] * inverse));
  }
  return max_abs / kInt16MaxLevel;
}

void DotBlockInt8(const int16_t* levels, float level_scale, const int8_t* block,
                  const float* scales, size_t num_vectors, size_t dim, float* out) {
  for (size_t v = 0; v < num_vectors; ++v) {
    out[v] = level_scale * scales[v] * DotInt8Levels(levels, block + v * dim, dim);
  }
}

void DotBlock(const float* query, const void* block, Precision precision,
              const float* scales, size_t num_vectors, size_t dim, float* out) {
  switch (precision) {
    case Precision::kFloat32: {
      const float* vectors = static_cast<const float*>(block);
      for (size_t v = 0; v < num_vectors; ++v) out[v] = DotFloat32(query, vectors + v * dim, dim);
      return;
    }
    case Precision::kFloat16: {
      const uint16_t* vectors = static_cast<const uint16_t*>(block);
      for (size_t v = 0; v < num_vectors; ++v) out[v] = DotFloat16(query, vectors + v * dim, dim);
      return;
    }
    case Precision::kInt8: {
      const int8_t* vectors = static_cast<const int8_t*>(block);
      if (dim <= kMaxInt16QueryLength) {
        alignas(32) int16_t levels[kMaxInt16QueryLength];
        float level_scale = QuantizeQueryInt16(query, dim, levels);
        DotBlockInt8(levels, level_scale, vectors, scales, num_vectors, dim, out);
        return;
      }
      for (size_t v = 0; v < num_vectors; ++v) {
        out[v] = scales[v] * DotInt8(query, vectors + v * dim, dim);
      }
      return;
    }
  }
}

double SymmetricQuadraticForm(const float* matrix, size_t stride, const float* weights,
                              size_t n) {
  return QuadraticFormUpper(matrix, stride, weights, n);
}

void ReadoutWeights(const float* similarities, size_t count, float beta, float* weights) {
  ExpReadoutWeights(similarities, count, beta, weights);
}

void ScaledSoftmax(const float* logits, size_t count, double scale,
                   double* out) {
  if (count == 0) return;

  // Subtracting the maximum keeps every exponent at or below zero, so exp
  // cannot overflow whatever the scale.
  double max_logit = scale * logits[0];
  for (size_t i = 1; i < count; ++i) max_logit = std::max(max_logit, scale * logits[i]);
  double sum = 0.0;
  for (size_t i = 0; i < count; ++i) {
    out[i] = std::exp(scale * logits[i] - max_logit);
    sum += out[i];
  }
  double inverse = 1.0 / sum;
  for (size_t i = 0; i < count; ++i) out[i] *= inverse;
}

double Entropy(const double* probabilities, size_t count) {
  // Offset inside the logarithm, as in the reference definition of H.
  constexpr double kLogOffset = 1e-8;
  double entropy = 0.0;
  for (size_t i = 0; i < count; ++i) {
    entropy -= probabilities[i] * std::log(probabilities[i] + kLogOffset);
  }
  return entropy;
}

double SumOfSquares(const float* values, size_t count) {
  double sum = 0.0;
  for (size_t i = 0; i < count; ++i) sum += static_cast<double>(values[i]) * values[i];
  return sum;
}

bool NormalizeL2(const float* values, size_t count, float* out) {
  double norm = std::sqrt(SumOfSquares(values, count));
  if (!(norm > 0.0) || !std::isfinite(norm)) return false;
  double inverse = 1.0 / norm;
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(values[i] * inverse);
  return true;
}

}  // namespace dualmem
