#include "preprocess.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "json.h"

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#elif defined(__AVX2__)
#include <immintrin.h>
#endif

// The resampling weights must be rounded exactly as Pillow's C code rounds
// them, which a fused multiply-add would change in the last bit and, rarely,
// in a fixed-point coefficient. Clang takes the standard pragma for the whole
// file. GCC needs its own switch, scoped to the weight functions below.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

namespace dualmem {
namespace {

// Pillow's fixed-point format for 8-bit resampling: 32 bits minus 8 for the
// pixel value minus 2 of headroom, because bicubic weights have negative
// lobes and partial sums may leave [0, 1].
constexpr int kPrecisionBits = 22;
constexpr int32_t kRoundingHalf = 1 << (kPrecisionBits - 1);
// Keys' cubic convolution kernel with a = -0.5 and its support in source
// pixels at scale 1, as in Pillow's BICUBIC filter (resample id 3).
constexpr double kBicubicA = -0.5;
constexpr double kBicubicSupport = 2.0;
constexpr int kPillowBicubic = 3;
// Horizontal coefficient rows are zero-padded to a multiple of this many
// taps, so that every SIMD width reads whole blocks.
constexpr int kTapBlock = 8;

constexpr const char* kConfigFile = "preprocessor_config.json";

// Resampling plan of one axis, restricted to the output range that the
// center crop keeps.
struct AxisPlan {
  int out_begin = 0, out_end = 0;  // kept range in resized coordinates
  int in_begin = 0, in_end = 0;    // source range that the kept range reads
  bool resample = false;           // false: the axis keeps its size (a copy)
  int taps = 0;                    // coefficient row stride, kTapBlock multiple
  std::vector<int32_t> first;      // per output: first source index - in_begin
  std::vector<int32_t> count;      // per output: number of source pixels read
  std::vector<int32_t> coeffs;     // per output: `taps` fixed-point weights
  std::vector<double> weights;     // one row of float weights before rounding

  size_t bytes() const {
    return (first.capacity() + count.capacity() + coeffs.capacity()) *
               sizeof(int32_t) +
           weights.capacity() * sizeof(double);
  }
};

#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

double BicubicWeight(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((kBicubicA + 2.0) * x - (kBicubicA + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * kBicubicA;
  return 0.0;
}

// Computes Pillow's bicubic weights for outputs [keep_begin, keep_end) of an
// axis whose source pixels [box_begin, box_begin + box_size) are resized to
// `out_size` pixels; `in_size` is the whole source axis. Each step mirrors
// Pillow 9.4 (precompute_coeffs, normalize_coeffs_8bpc): the window is
// widened by the scale when shrinking (antialiasing), may read source pixels
// outside the box but inside the image, weights are normalized per output
// pixel in double, then rounded half away from zero to 22 bits. Computing
// only the kept outputs gives the same values as computing all.
void PlanAxis(int in_size, int box_begin, int box_size, int out_size,
              int keep_begin, int keep_end, AxisPlan* plan) {
  plan->out_begin = keep_begin;
  plan->out_end = keep_end;
  // At scale 1 and an integer offset, the bicubic weights are 1 at the
  // center tap and 0 elsewhere, so the axis is a plain copy.
  plan->resample = box_size != out_size;
  if (!plan->resample) {
    plan->in_begin = box_begin + keep_begin;
    plan->in_end = box_begin + keep_end;
    plan->taps = 0;
    return;
  }

  const double scale = static_cast<double>(box_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filter_scale;
  const int window = static_cast<int>(std::ceil(support)) * 2 + 1;
  const int outputs = keep_end - keep_begin;
  plan->taps = (window + kTapBlock - 1) / kTapBlock * kTapBlock;
  plan->first.resize(outputs);
  plan->count.resize(outputs);
  plan->coeffs.assign(static_cast<size_t>(outputs) * plan->taps, 0);
  plan->weights.resize(window);
  plan->in_begin = INT_MAX;
  plan->in_end = 0;

  const double inverse_scale = 1.0 / filter_scale;
  for (int i = 0; i < outputs; ++i) {
    const double center = box_begin + (keep_begin + i + 0.5) * scale;
    int lo = static_cast<int>(center - support + 0.5);
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = std::max(hi - lo, 0);

    double sum = 0.0;
    for (int x = 0; x < n; ++x) {
      const double w = BicubicWeight((x + lo - center + 0.5) * inverse_scale);
      plan->weights[x] = w;
      sum += w;
    }
    int32_t* row = &plan->coeffs[static_cast<size_t>(i) * plan->taps];
    for (int x = 0; x < n; ++x) {
      double w = plan->weights[x];
      if (sum != 0.0) w /= sum;
      const double fixed = w * (1 << kPrecisionBits);
      row[x] = static_cast<int32_t>(w < 0 ? -0.5 + fixed : 0.5 + fixed);
    }

    plan->first[i] = lo;
    plan->count[i] = n;
    plan->in_begin = std::min(plan->in_begin, lo);
    plan->in_end = std::max(plan->in_end, lo + n);
  }
  for (int32_t& lo : plan->first) lo -= plan->in_begin;
}

#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC pop_options
#endif

inline uint8_t ClipFixed(int32_t sum) {
  const int32_t v = sum >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// ---- Horizontal pass: one plane row, every kept output column. ----

// `row` contains the source span of one channel followed by `plan.taps`
// bytes of padding, so the SIMD kernels may read whole blocks of taps. The
// weights past an output's window are zero.
void ConvolveRowScalar(const uint8_t* row, const AxisPlan& plan, uint8_t* dst) {
  const int outputs = plan.out_end - plan.out_begin;
  for (int j = 0; j < outputs; ++j) {
    const uint8_t* src = row + plan.first[j];
    const int32_t* k = &plan.coeffs[static_cast<size_t>(j) * plan.taps];
    int32_t sum = kRoundingHalf;
    for (int t = 0; t < plan.count[j]; ++t) sum += src[t] * k[t];
    dst[j] = ClipFixed(sum);
  }
}

#if defined(__wasm_simd128__)
void ConvolveRowSimd(const uint8_t* row, const AxisPlan& plan, uint8_t* dst) {
  const int outputs = plan.out_end - plan.out_begin;
  for (int j = 0; j < outputs; ++j) {
    const uint8_t* src = row + plan.first[j];
    const int32_t* k = &plan.coeffs[static_cast<size_t>(j) * plan.taps];
    v128_t sum_low = wasm_i32x4_splat(0);
    v128_t sum_high = wasm_i32x4_splat(0);
    for (int t = 0; t < plan.taps; t += kTapBlock) {
      const v128_t pixels = wasm_u16x8_load8x8(src + t);
      sum_low = wasm_i32x4_add(
          sum_low, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(pixels),
                                  wasm_v128_load(k + t)));
      sum_high = wasm_i32x4_add(
          sum_high, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(pixels),
                                   wasm_v128_load(k + t + 4)));
    }
    const v128_t sum = wasm_i32x4_add(sum_low, sum_high);
    dst[j] = ClipFixed(kRoundingHalf + wasm_i32x4_extract_lane(sum, 0) +
                       wasm_i32x4_extract_lane(sum, 1) +
                       wasm_i32x4_extract_lane(sum, 2) +
                       wasm_i32x4_extract_lane(sum, 3));
  }
}
#elif defined(__AVX2__)
void ConvolveRowSimd(const uint8_t* row, const AxisPlan& plan, uint8_t* dst) {
  const int outputs = plan.out_end - plan.out_begin;
  for (int j = 0; j < outputs; ++j) {
    const uint8_t* src = row + plan.first[j];
    const int32_t* k = &plan.coeffs[static_cast<size_t>(j) * plan.taps];
    __m256i sum = _mm256_setzero_si256();
    for (int t = 0; t < plan.taps; t += kTapBlock) {
      const __m256i pixels = _mm256_cvtepu8_epi32(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + t)));
      const __m256i weights =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + t));
      sum = _mm256_add_epi32(sum, _mm256_mullo_epi32(pixels, weights));
    }
    __m128i half = _mm_add_epi32(_mm256_castsi256_si128(sum),
                                 _mm256_extracti128_si256(sum, 1));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4E));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0xB1));
    dst[j] = ClipFixed(kRoundingHalf + _mm_cvtsi128_si32(half));
  }
}
#else
void ConvolveRowSimd(const uint8_t* row, const AxisPlan& plan, uint8_t* dst) {
  ConvolveRowScalar(row, plan, dst);
}
#endif

// ---- Vertical pass: one output row of one plane. ----

// `rows` is a plane of `width`-byte rows starting at source row in_begin.
void ConvolveColumnsScalar(const uint8_t* rows, int width, const AxisPlan& plan,
                           int output, int x_begin, uint8_t* dst) {
  const uint8_t* src = rows + static_cast<size_t>(plan.first[output]) * width;
  const int32_t* k = &plan.coeffs[static_cast<size_t>(output) * plan.taps];
  const int n = plan.count[output];
  for (int x = x_begin; x < width; ++x) {
    int32_t sum = kRoundingHalf;
    for (int t = 0; t < n; ++t)
      sum += src[static_cast<size_t>(t) * width + x] * k[t];
    dst[x] = ClipFixed(sum);
  }
}

#if defined(__wasm_simd128__)
void ConvolveColumnsSimd(const uint8_t* rows, int width, const AxisPlan& plan,
                         int output, uint8_t* dst) {
  const uint8_t* src = rows + static_cast<size_t>(plan.first[output]) * width;
  const int32_t* k = &plan.coeffs[static_cast<size_t>(output) * plan.taps];
  const int n = plan.count[output];
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    v128_t sum_low = wasm_i32x4_splat(kRoundingHalf);
    v128_t sum_high = sum_low;
    for (int t = 0; t < n; ++t) {
      const v128_t pixels =
          wasm_u16x8_load8x8(src + static_cast<size_t>(t) * width + x);
      const v128_t weight = wasm_i32x4_splat(k[t]);
      sum_low = wasm_i32x4_add(
          sum_low, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(pixels), weight));
      sum_high = wasm_i32x4_add(
          sum_high,
          wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(pixels), weight));
    }
    // Saturating narrowing clamps to [0, 255] exactly as ClipFixed does.
    const v128_t words =
        wasm_i16x8_narrow_i32x4(wasm_i32x4_shr(sum_low, kPrecisionBits),
                                wasm_i32x4_shr(sum_high, kPrecisionBits));
    wasm_v128_store64_lane(dst + x, wasm_u8x16_narrow_i16x8(words, words), 0);
  }
  ConvolveColumnsScalar(rows, width, plan, output, x, dst);
}
#elif defined(__AVX2__)
void ConvolveColumnsSimd(const uint8_t* rows, int width, const AxisPlan& plan,
                         int output, uint8_t* dst) {
  const uint8_t* src = rows + static_cast<size_t>(plan.first[output]) * width;
  const int32_t* k = &plan.coeffs[static_cast<size_t>(output) * plan.taps];
  const int n = plan.count[output];
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    __m256i sum = _mm256_set1_epi32(kRoundingHalf);
    for (int t = 0; t < n; ++t) {
      const __m256i pixels =
          _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(
              src + static_cast<size_t>(t) * width + x)));
      sum = _mm256_add_epi32(
          sum, _mm256_mullo_epi32(pixels, _mm256_set1_epi32(k[t])));
    }
    // Saturating packs clamp to [0, 255] exactly as ClipFixed does.
    sum = _mm256_srai_epi32(sum, kPrecisionBits);
    const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(sum),
                                          _mm256_extracti128_si256(sum, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + x),
                     _mm_packus_epi16(words, words));
  }
  ConvolveColumnsScalar(rows, width, plan, output, x, dst);
}
#else
void ConvolveColumnsSimd(const uint8_t* rows, int width, const AxisPlan& plan,
                         int output, uint8_t* dst) {
  ConvolveColumnsScalar(rows, width, plan, output, 0, dst);
}
#endif

// Copies pixels [x_begin, x_end) of an interleaved row into one gray plane
// or three RGB planes `stride` bytes apart. Alpha is dropped, as Pillow's
// convert("RGB") drops it.
void Deinterleave(const uint8_t* row, int channels, int x_begin, int x_end,
                  uint8_t* dst, size_t stride) {
  const int n = x_end - x_begin;
  const uint8_t* src = row + static_cast<size_t>(x_begin) * channels;
  if (channels == 1) {
    std::memcpy(dst, src, n);
    return;
  }
  uint8_t* red = dst;
  uint8_t* green = dst + stride;
  uint8_t* blue = dst + 2 * stride;
  for (int x = 0; x < n; ++x) {
    red[x] = src[x * channels];
    green[x] = src[x * channels + 1];
    blue[x] = src[x * channels + 2];
  }
}

int FloorHalf(int value) { return value >= 0 ? value / 2 : -((1 - value) / 2); }

// ---- Config parsing. ----

Status ConfigError(StatusCode code, const std::string& field,
                   const std::string& problem) {
  return MakeStatus(
      code, std::string(kConfigFile) + ": \"" + field + "\" " + problem);
}

std::string FormatNumber(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  return buffer;
}

Status ReadSide(const JsonValue& value, const std::string& field, int* out) {
  if (!value.is_number()) {
    return ConfigError(StatusCode::kInvalidArgument, field,
                       std::string("is a ") +
                           JsonValue::TypeName(value.type()) +
                           ", expected an integer in [1, " +
                           std::to_string(kMaxConfigSide) + "]");
  }
  const double number = value.as_number();
  if (number != std::floor(number) || number < 1 || number > kMaxConfigSide) {
    return ConfigError(StatusCode::kInvalidArgument, field,
                       "is " + FormatNumber(number) +
                           ", expected an integer in [1, " +
                           std::to_string(kMaxConfigSide) + "]");
  }
  *out = static_cast<int>(number);
  return Status::Ok();
}

Status ReadBool(const JsonValue& root, const char* field, bool* out) {
  const JsonValue* value = root.Find(field);
  if (value == nullptr || value->is_null()) return Status::Ok();
  if (!value->is_bool()) {
    return ConfigError(StatusCode::kInvalidArgument, field,
                       std::string("is a ") +
                           JsonValue::TypeName(value->type()) +
                           ", expected true or false");
  }
  *out = value->as_bool();
  return Status::Ok();
}

// Reads "size" or "crop_size": an integer (a square, or for "size" the
// shortest edge) or an object with "height" and "width".
Status ReadHeightWidth(const JsonValue& value, const std::string& field,
                       int* height, int* width) {
  const JsonValue* h = value.Find("height");
  const JsonValue* w = value.Find("width");
  if (h == nullptr || w == nullptr) {
    return ConfigError(StatusCode::kInvalidArgument, field,
                       "needs both \"height\" and \"width\"");
  }
  DUALMEM_RETURN_IF_ERROR(ReadSide(*h, field + ".height", height));
  return ReadSide(*w, field + ".width", width);
}

Status ReadSizeFields(const JsonValue& root, PreprocessConfig* config) {
  if (const JsonValue* size = root.Find("size"); size && !size->is_null()) {
    if (size->is_object() && size->Find("shortest_edge") != nullptr) {
      DUALMEM_RETURN_IF_ERROR(ReadSide(*size->Find("shortest_edge"),
                                       "size.shortest_edge",
                                       &config->shortest_edge));
      config->resize_height = config->resize_width = 0;
    } else if (size->is_object()) {
      DUALMEM_RETURN_IF_ERROR(ReadHeightWidth(
          *size, "size", &config->resize_height, &config->resize_width));
    } else {
      DUALMEM_RETURN_IF_ERROR(ReadSide(*size, "size", &config->shortest_edge));
      config->resize_height = config->resize_width = 0;
    }
  }
  if (const JsonValue* crop = root.Find("crop_size");
      crop && !crop->is_null()) {
    if (crop->is_object()) {
      DUALMEM_RETURN_IF_ERROR(ReadHeightWidth(
          *crop, "crop_size", &config->crop_height, &config->crop_width));
    } else {
      DUALMEM_RETURN_IF_ERROR(
          ReadSide(*crop, "crop_size", &config->crop_height));
      config->crop_width = config->crop_height;
    }
  }
  return Status::Ok();
}

// Reads "image_mean" or "image_std": three numbers, or one for all channels.
Status ReadTriple(const JsonValue& root, const char* field, float out[3]) {
  const JsonValue* value = root.Find(field);
  if (value == nullptr || value->is_null()) return Status::Ok();
  float result[3];
  if (value->is_number()) {
    result[0] = result[1] = result[2] = static_cast<float>(value->as_number());
  } else if (value->is_array() && value->items().size() == 3) {
    for (int c = 0; c < 3; ++c) {
      const JsonValue& item = value->items()[c];
      if (!item.is_number()) {
        return ConfigError(StatusCode::kInvalidArgument, field,
                           "entry " + std::to_string(c) + " is a " +
                               JsonValue::TypeName(item.type()) +
                               ", expected a number");
      }
      result[c] = static_cast<float>(item.as_number());
    }
  } else {
    return ConfigError(StatusCode::kInvalidArgument, field,
                       "must be an array of 3 numbers (one per RGB channel)");
  }
  std::copy(result, result + 3, out);
  return Status::Ok();
}

Status CheckProcessorType(const JsonValue& root, const char* field) {
  const JsonValue* value = root.Find(field);
  if (value == nullptr || value->is_null()) return Status::Ok();
  const std::string& type = value->as_string();
  if (value->is_string() &&
      (type == "CLIPImageProcessor" || type == "CLIPFeatureExtractor")) {
    return Status::Ok();
  }
  return ConfigError(
      StatusCode::kUnsupported, field,
      "is " +
          (value->is_string() ? "\"" + type + "\""
                              : std::string("not a string")) +
          ", but only CLIPImageProcessor and CLIPFeatureExtractor "
          "preprocessing is implemented");
}

}  // namespace

Status ValidatePreprocessConfig(const PreprocessConfig& config) {
  auto side_ok = [](int side) { return side >= 1 && side <= kMaxConfigSide; };
  const std::string range =
      ", expected an integer in [1, " + std::to_string(kMaxConfigSide) + "]";
  if (!side_ok(config.shortest_edge)) {
    return ConfigError(StatusCode::kInvalidArgument, "size.shortest_edge",
                       "is " + std::to_string(config.shortest_edge) + range);
  }
  const bool exact_resize =
      config.resize_height != 0 || config.resize_width != 0;
  if (exact_resize &&
      !(side_ok(config.resize_height) && side_ok(config.resize_width))) {
    return ConfigError(StatusCode::kInvalidArgument, "size",
                       "is " + std::to_string(config.resize_height) + "x" +
                           std::to_string(config.resize_width) +
                           " (height x width), expected both sides in [1, " +
                           std::to_string(kMaxConfigSide) + "] or both 0");
  }
  if (!side_ok(config.crop_height) || !side_ok(config.crop_width)) {
    return ConfigError(StatusCode::kInvalidArgument, "crop_size",
                       "is " + std::to_string(config.crop_height) + "x" +
                           std::to_string(config.crop_width) +
                           " (height x width), expected both sides in [1, " +
                           std::to_string(kMaxConfigSide) + "]");
  }
  if (!(std::isfinite(config.rescale_factor) && config.rescale_factor > 0)) {
    return ConfigError(StatusCode::kInvalidArgument, "rescale_factor",
                       "is " + FormatNumber(config.rescale_factor) +
                           ", expected a positive finite number such as 1/255");
  }
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(config.mean[c])) {
      return ConfigError(StatusCode::kInvalidArgument, "image_mean",
                         "entry " + std::to_string(c) + " is " +
                             FormatNumber(config.mean[c]) +
                             ", expected a finite number");
    }
    if (!(std::isfinite(config.std[c]) && config.std[c] > 0)) {
      return ConfigError(StatusCode::kInvalidArgument, "image_std",
                         "entry " + std::to_string(c) + " is " +
                             FormatNumber(config.std[c]) +
                             ", expected a positive finite number");
    }
  }
  if (config.resample != kPillowBicubic) {
    return ConfigError(StatusCode::kUnsupported, "resample",
                       "is " + std::to_string(config.resample) +
                           ", but only 3 (Pillow BICUBIC) is implemented");
  }
  return Status::Ok();
}

Status ParsePreprocessConfig(std::string_view json, PreprocessConfig* out) {
  JsonValue root;
  DUALMEM_RETURN_IF_ERROR(ParseJson(json, &root));
  if (!root.is_object()) {
    return MakeStatus(StatusCode::kInvalidArgument,
                      std::string(kConfigFile) + ": top level is a " +
                          JsonValue::TypeName(root.type()) +
                          ", expected an object");
  }
  DUALMEM_RETURN_IF_ERROR(CheckProcessorType(root, "image_processor_type"));
  DUALMEM_RETURN_IF_ERROR(CheckProcessorType(root, "feature_extractor_type"));

  PreprocessConfig config;
  DUALMEM_RETURN_IF_ERROR(ReadSizeFields(root, &config));
  DUALMEM_RETURN_IF_ERROR(ReadBool(root, "do_resize", &config.do_resize));
  DUALMEM_RETURN_IF_ERROR(
      ReadBool(root, "do_center_crop", &config.do_center_crop));
  DUALMEM_RETURN_IF_ERROR(ReadBool(root, "do_rescale", &config.do_rescale));
  DUALMEM_RETURN_IF_ERROR(ReadBool(root, "do_normalize", &config.do_normalize));
  DUALMEM_RETURN_IF_ERROR(
      ReadBool(root, "do_convert_rgb", &config.do_convert_rgb));
  if (const JsonValue* factor = root.Find("rescale_factor");
      factor && !factor->is_null()) {
    if (!factor->is_number()) {
      return ConfigError(StatusCode::kInvalidArgument, "rescale_factor",
                         std::string("is a ") +
                             JsonValue::TypeName(factor->type()) +
                             ", expected a number");
    }
    config.rescale_factor = factor->as_number();
  }
  DUALMEM_RETURN_IF_ERROR(ReadTriple(root, "image_mean", config.mean));
  DUALMEM_RETURN_IF_ERROR(ReadTriple(root, "image_std", config.std));
  if (const JsonValue* resample = root.Find("resample");
      resample && !resample->is_null()) {
    const double id = resample->as_number();
    if (!resample->is_number() || id != std::floor(id) || id < 0 || id > 5) {
      return ConfigError(StatusCode::kInvalidArgument, "resample",
                         "is not a Pillow filter id, expected an integer in "
                         "[0, 5] (3 = bicubic)");
    }
    config.resample = static_cast<int>(id);
  }

  DUALMEM_RETURN_IF_ERROR(ValidatePreprocessConfig(config));
  *out = config;
  return Status::Ok();
}

size_t PreprocessOutputSize(const PreprocessConfig& config) {
  if (config.crop_height <= 0 || config.crop_width <= 0) return 0;
  return size_t{3} * config.crop_height * config.crop_width;
}

// Working memory of one Preprocessor; see the class comment.
struct Preprocessor::Scratch {
  AxisPlan rows_plan, columns_plan;
  std::vector<uint8_t> source_row;  // planes of one source row span, padded
  std::vector<uint8_t>
      resampled;              // horizontal pass output: planes x rows x columns
  std::vector<uint8_t> line;  // vertical pass output: planes x columns

  size_t bytes() const {
    return rows_plan.bytes() + columns_plan.bytes() + source_row.capacity() +
           resampled.capacity() + line.capacity();
  }
};

Preprocessor::Preprocessor() : scratch_(new Scratch) {}
Preprocessor::~Preprocessor() = default;
Preprocessor::Preprocessor(Preprocessor&&) noexcept = default;
Preprocessor& Preprocessor::operator=(Preprocessor&&) noexcept = default;

size_t Preprocessor::scratch_bytes() const {
  return scratch_ ? scratch_->bytes() : 0;
}

void Preprocessor::ReleaseScratch() { scratch_.reset(new Scratch); }

namespace {

Status CheckImage(const uint8_t* pixels, size_t length, int width, int height,
                  PixelFormat format, const PreprocessConfig& config,
                  size_t out_length) {
  const int channels = static_cast<int>(format);
  if (channels != 1 && channels != 3 && channels != 4) {
    return InvalidArgument("pixel format has " + std::to_string(channels) +
                           " channels, expected 1 (gray), 3 (RGB) or 4 (RGBA)");
  }
  if (width <= 0 || height <= 0) {
    return InvalidArgument("image size is " + std::to_string(width) + "x" +
                           std::to_string(height) +
                           ", expected both sides >= 1");
  }
  if (width > kMaxImageSide || height > kMaxImageSide) {
    return MakeStatus(StatusCode::kLimitExceeded,
                      "image size is " + std::to_string(width) + "x" +
                          std::to_string(height) + ", the maximum side is " +
                          std::to_string(kMaxImageSide) +
                          " pixels; downscale the image first");
  }
  const int64_t area = int64_t{width} * height;
  if (area > kMaxImagePixels) {
    return MakeStatus(
        StatusCode::kLimitExceeded,
        "image has " + std::to_string(area) + " pixels, the maximum is " +
            std::to_string(kMaxImagePixels) + "; downscale the image first");
  }
  const size_t expected = static_cast<size_t>(area) * channels;
  if (pixels == nullptr || length != expected) {
    return InvalidArgument(
        "pixel buffer has " + std::to_string(pixels ? length : 0) +
        " bytes, expected " + std::to_string(expected) + " for " +
        std::to_string(width) + "x" + std::to_string(height) + " with " +
        std::to_string(channels) + " channels");
  }
  if (channels != 3 && !config.do_convert_rgb) {
    return InvalidArgument(
        "image has " + std::to_string(channels) +
        " channels and do_convert_rgb is false; pass RGB pixels");
  }
  DUALMEM_RETURN_IF_ERROR(ValidatePreprocessConfig(config));
  if (out_length != PreprocessOutputSize(config)) {
    return InvalidArgument("output buffer has " + std::to_string(out_length) +
                           " floats, expected " +
                           std::to_string(PreprocessOutputSize(config)) +
                           " (3 x crop_height x crop_width)");
  }
  return Status::Ok();
}

// Returns the (height, width) that the Hugging Face resize step produces.
void ResizedSize(int width, int height, const PreprocessConfig& config,
                 int* out_height, int* out_width) {
  if (!config.do_resize) {
    *out_height = height;
    *out_width = width;
  } else if (config.resize_height > 0 && config.resize_width > 0) {
    *out_height = config.resize_height;
    *out_width = config.resize_width;
  } else {
    // int(shortest_edge * long / short) in Python: an exact integer product,
    // one correctly rounded division, then truncation.
    const int short_side = std::min(width, height);
    const int long_side = std::max(width, height);
    const int long_resized = static_cast<int>(
        static_cast<double>(int64_t{config.shortest_edge} * long_side) /
        short_side);
    *out_height = width <= height ? long_resized : config.shortest_edge;
    *out_width = width <= height ? config.shortest_edge : long_resized;
  }
}

// Fills a 256-entry table per channel with rescale-then-normalize, computed
// as the Python reference does: float64 product rounded to float32, then
// float32 subtraction and division. A table lookup reproduces it bit for bit
// and costs less than the arithmetic would.
void FillNormalizeTable(const PreprocessConfig& config, float table[3][256]) {
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      float value = config.do_rescale
                        ? static_cast<float>(v * config.rescale_factor)
                        : static_cast<float>(v);
      if (config.do_normalize) value = (value - config.mean[c]) / config.std[c];
      table[c][v] = value;
    }
  }
}

}  // namespace

Status Preprocessor::Run(const uint8_t* pixels, size_t length, int width,
                         int height, PixelFormat format,
                         const PreprocessConfig& config, float* out,
                         size_t out_length) {
  DUALMEM_RETURN_IF_ERROR(
      CheckImage(pixels, length, width, height, format, config, out_length));
  if (out == nullptr) return InvalidArgument("output pointer is null");

  int resized_height = 0, resized_width = 0;
  ResizedSize(width, height, config, &resized_height, &resized_width);
  const int crop_height = config.crop_height, crop_width = config.crop_width;
  int top = 0, left = 0;
  if (config.do_center_crop) {
    // Python's floor division. A negative offset pads with zero pixels.
    top = FloorHalf(resized_height - crop_height);
    left = FloorHalf(resized_width - crop_width);
  } else if (resized_height != crop_height || resized_width != crop_width) {
    return InvalidArgument(
        "do_center_crop is false, so the resized image (" +
        std::to_string(resized_width) + "x" + std::to_string(resized_height) +
        ") must already have the crop size (" + std::to_string(crop_width) +
        "x" + std::to_string(crop_height) + ")");
  }

  // Plan both axes over the kept part of the resized image only.
  if (!scratch_) scratch_.reset(new Scratch);
  Scratch& s = *scratch_;
  const int row_begin = std::max(0, top),
            row_end = std::min(resized_height, top + crop_height);
  const int col_begin = std::max(0, left),
            col_end = std::min(resized_width, left + crop_width);
  PlanAxis(height, 0, height, resized_height, row_begin, row_end,
           &s.rows_plan);
  PlanAxis(width, 0, width, resized_width, col_begin, col_end,
           &s.columns_plan);
  ResampleAndNormalize(pixels, width, format, config, top, left,
                       /*mirror=*/false, out);
  return Status::Ok();
}

Status Preprocessor::RunBox(const uint8_t* pixels, size_t length, int width,
                            int height, PixelFormat format,
                            const PreprocessConfig& config, const PixelBox& box,
                            bool mirror, float* out, size_t out_length) {
  DUALMEM_RETURN_IF_ERROR(
      CheckImage(pixels, length, width, height, format, config, out_length));
  if (out == nullptr) return InvalidArgument("output pointer is null");
  if (box.width <= 0 || box.height <= 0 || box.left < 0 || box.top < 0 ||
      box.left > width - box.width || box.top > height - box.height) {
    return InvalidArgument(
        "box is " + std::to_string(box.width) + "x" +
        std::to_string(box.height) + " at (" + std::to_string(box.left) +
        ", " + std::to_string(box.top) + "), expected a non-empty box inside " +
        "the " + std::to_string(width) + "x" + std::to_string(height) +
        " image");
  }

  if (!scratch_) scratch_.reset(new Scratch);
  Scratch& s = *scratch_;
  PlanAxis(height, box.top, box.height, config.crop_height, 0,
           config.crop_height, &s.rows_plan);
  PlanAxis(width, box.left, box.width, config.crop_width, 0,
           config.crop_width, &s.columns_plan);
  ResampleAndNormalize(pixels, width, format, config, 0, 0, mirror, out);
  return Status::Ok();
}

// Resamples with the plans in scratch_, whose kept output ranges are the
// part of the resized image that the crop at (top, left) covers, and writes
// the normalized CHW crop.
void Preprocessor::ResampleAndNormalize(const uint8_t* pixels, int width,
                                        PixelFormat format,
                                        const PreprocessConfig& config, int top,
                                        int left, bool mirror, float* out) {
  Scratch& s = *scratch_;
  const AxisPlan& rows = s.rows_plan;
  const AxisPlan& columns = s.columns_plan;
  const int crop_height = config.crop_height, crop_width = config.crop_width;
  const int row_begin = rows.out_begin, row_end = rows.out_end;
  const int col_begin = columns.out_begin, col_end = columns.out_end;

  // Horizontal pass over the source rows that the vertical pass reads.
  const int channels = static_cast<int>(format);
  const int planes = channels == 1 ? 1 : 3;
  const int columns_kept = col_end - col_begin;
  const int source_rows = rows.in_end - rows.in_begin;
  const size_t plane_size = static_cast<size_t>(source_rows) * columns_kept;
  s.resampled.resize(plane_size * planes);
  const size_t row_stride =
      static_cast<size_t>(columns.in_end - columns.in_begin) + columns.taps;
  if (columns.resample) s.source_row.assign(row_stride * planes, 0);
  for (int y = 0; y < source_rows; ++y) {
    const uint8_t* source =
        pixels + static_cast<size_t>(rows.in_begin + y) * width * channels;
    uint8_t* dst = &s.resampled[static_cast<size_t>(y) * columns_kept];
    if (!columns.resample) {
      Deinterleave(source, channels, columns.in_begin, columns.in_end, dst,
                   plane_size);
      continue;
    }
    Deinterleave(source, channels, columns.in_begin, columns.in_end,
                 s.source_row.data(), row_stride);
    for (int c = 0; c < planes; ++c) {
      const uint8_t* row = &s.source_row[c * row_stride];
      if (use_simd_) {
        ConvolveRowSimd(row, columns, dst + c * plane_size);
      } else {
        ConvolveRowScalar(row, columns, dst + c * plane_size);
      }
    }
  }

  // Vertical pass, one kept output row at a time, then the table lookup into
  // CHW floats. Crop pixels outside the resized image are zero-valued pixels.
  float table[3][256];
  FillNormalizeTable(config, table);
  const size_t out_plane = static_cast<size_t>(crop_height) * crop_width;
  if (row_end - row_begin < crop_height || columns_kept < crop_width) {
    for (int c = 0; c < 3; ++c)
      std::fill(out + c * out_plane, out + (c + 1) * out_plane, table[c][0]);
  }
  if (rows.resample) s.line.resize(static_cast<size_t>(columns_kept) * planes);
  for (int o = row_begin; o < row_end; ++o) {
    const int i = o - row_begin;
    const uint8_t* line[3];
    for (int c = 0; c < planes; ++c) {
      const uint8_t* plane = &s.resampled[c * plane_size];
      if (!rows.resample) {
        line[c] = plane + static_cast<size_t>(i) * columns_kept;
        continue;
      }
      uint8_t* dst = &s.line[static_cast<size_t>(c) * columns_kept];
      if (use_simd_) {
        ConvolveColumnsSimd(plane, columns_kept, rows, i, dst);
      } else {
        ConvolveColumnsScalar(plane, columns_kept, rows, i, 0, dst);
      }
      line[c] = dst;
    }
    for (int c = 0; c < 3; ++c) {
      const uint8_t* src = line[planes == 1 ? 0 : c];
      float* out_row =
          out + c * out_plane + static_cast<size_t>(o - top) * crop_width;
      if (!mirror) {
        float* dst = out_row + (col_begin - left);
        for (int x = 0; x < columns_kept; ++x) dst[x] = table[c][src[x]];
      } else {
        float* dst = out_row + (crop_width - 1 - (col_begin - left));
        for (int x = 0; x < columns_kept; ++x) dst[-x] = table[c][src[x]];
      }
    }
  }
}

Status PreprocessImage(const uint8_t* pixels, size_t length, int width,
                       int height, PixelFormat format,
                       const PreprocessConfig& config, float* out,
                       size_t out_length) {
  // One Preprocessor per thread keeps its buffers across calls, so repeated
  // calls from the bindings reuse memory instead of allocating per image.
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
  // A WebAssembly build without threads has one thread. There, thread_local
  // would need the atomics feature as soon as bulk memory is enabled.
  static Preprocessor preprocessor;
#else
  thread_local Preprocessor preprocessor;
#endif
  return preprocessor.Run(pixels, length, width, height, format, config, out,
                          out_length);
}

}  // namespace dualmem
