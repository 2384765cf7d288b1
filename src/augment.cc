#include "augment.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "random.h"

// The crop box must come out the same on every platform, so the arithmetic
// below may not be fused into multiply-adds, which x86 has and WebAssembly
// lacks. Clang takes the standard pragma, GCC its own switch.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace dualmem {
namespace {

// Draws per view before the center-box fallback, as in torchvision's
// RandomResizedCrop.get_params.
constexpr int kCropAttempts = 10;
constexpr double kLn2 = 0.693147180559945309417232121458;

std::string FormatFloat(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);
  return buffer;
}

// Natural logarithm from +, *, / and exact scaling only: x = m 2^e with m in
// [0.5, 1), then ln m = 2 atanh((m - 1) / (m + 1)) as a series. libm's log
// may differ in the last bit between glibc and the WebAssembly libc, and one
// bit can move a rounded box side.
double PortableLog(double x) {
  int exponent = 0;
  double m = std::frexp(x, &exponent);
  double z = (m - 1.0) / (m + 1.0);
  double z2 = z * z;
  double term = z, sum = 0.0;
  for (int k = 1; k < 80; k += 2) {
    sum += term / k;
    term *= z2;
  }
  return 2.0 * sum + exponent * kLn2;
}

// Exponential from a Taylor series after reducing by a multiple of ln 2,
// for the same reason as PortableLog.
double PortableExp(double x) {
  double k = std::nearbyint(x / kLn2);
  double r = x - k * kLn2;
  double term = 1.0, sum = 1.0;
  for (int n = 1; n < 30; ++n) {
    term = term * r / n;
    sum += term;
  }
  return std::ldexp(sum, static_cast<int>(k));
}

// Python's round(), half to even, under the default rounding mode.
int RoundToInt(double value) { return static_cast<int>(std::nearbyint(value)); }

}  // namespace

Status ValidateAugmentConfig(const AugmentConfig& config) {
  if (!(config.min_scale > 0.0f && config.min_scale <= config.max_scale &&
        config.max_scale <= 1.0f)) {
    return InvalidArgument("augment scale range is [" + FormatFloat(config.min_scale) + ", " +
                           FormatFloat(config.max_scale) +
                           "], expected 0 < min_scale <= max_scale <= 1");
  }
  if (!(config.min_ratio > 0.0f && config.min_ratio <= config.max_ratio &&
        std::isfinite(config.max_ratio))) {
    return InvalidArgument("augment ratio range is [" + FormatFloat(config.min_ratio) + ", " +
                           FormatFloat(config.max_ratio) +
                           "], expected finite 0 < min_ratio <= max_ratio");
  }
  if (!(config.flip_probability >= 0.0f && config.flip_probability <= 1.0f)) {
    return InvalidArgument("augment flip_probability is " +
                           FormatFloat(config.flip_probability) + ", expected a value in [0, 1]");
  }
  return Status::Ok();
}

void SampleViewBox(int width, int height, const AugmentConfig& config, uint64_t seed, int view,
                   PixelBox* box, bool* mirror) {
  SplitMix64 random = SplitMix64::ForStream(seed, static_cast<uint64_t>(view));
  const double area = static_cast<double>(width) * height;
  const double log_min = PortableLog(config.min_ratio);
  const double log_max = PortableLog(config.max_ratio);

  bool found = false;
  for (int attempt = 0; attempt < kCropAttempts && !found; ++attempt) {
    double scale = config.min_scale + (config.max_scale - config.min_scale) * random.NextDouble();
    double ratio = PortableExp(log_min + (log_max - log_min) * random.NextDouble());
    double target_area = area * scale;
    int w = RoundToInt(std::sqrt(target_area * ratio));
    int h = RoundToInt(std::sqrt(target_area / ratio));
    if (w <= 0 || w > width || h <= 0 || h > height) continue;
    box->width = w;
    box->height = h;
    box->top = static_cast<int>(random.NextBelow(static_cast<uint64_t>(height - h) + 1));
    box->left = static_cast<int>(random.NextBelow(static_cast<uint64_t>(width - w) + 1));
    found = true;
  }

  if (!found) {
    // The center box with the image's ratio clamped to the range.
    double image_ratio = static_cast<double>(width) / height;
    int w = width, h = height;
    if (image_ratio < config.min_ratio) {
      h = RoundToInt(width / static_cast<double>(config.min_ratio));
    } else if (image_ratio > config.max_ratio) {
      w = RoundToInt(height * static_cast<double>(config.max_ratio));
    }
    // Rounding can reach 0 or pass the side for extreme shapes such as 1xN.
    w = w < 1 ? 1 : (w > width ? width : w);
    h = h < 1 ? 1 : (h > height ? height : h);
    box->width = w;
    box->height = h;
    box->top = (height - h) / 2;
    box->left = (width - w) / 2;
  }
  *mirror = random.NextDouble() < config.flip_probability;
}

Status MakeViews(Preprocessor* preprocessor, const uint8_t* pixels, size_t length, int width,
                 int height, PixelFormat format, const PreprocessConfig& config,
                 const AugmentConfig& augment, uint64_t seed, int num_views, float* out,
                 size_t out_length) {
  if (preprocessor == nullptr) return InvalidArgument("MakeViews: preprocessor is null");
  if (num_views < 1 || num_views > kMaxViews) {
    return InvalidArgument("MakeViews: num_views is " + std::to_string(num_views) +
                           ", expected 1 to " + std::to_string(kMaxViews));
  }
  DUALMEM_RETURN_IF_ERROR(ValidateAugmentConfig(augment));
  const size_t view_size = PreprocessOutputSize(config);
  if (out == nullptr || out_length != view_size * num_views) {
    return InvalidArgument("MakeViews: output buffer has " +
                           std::to_string(out == nullptr ? 0 : out_length) + " floats, expected " +
                           std::to_string(view_size * num_views) + " (num_views x 3 x " +
                           "crop_height x crop_width)");
  }

  // View 0 validates the image and config. SampleViewBox keeps the boxes of
  // later views inside the image, so RunBox cannot fail after view 0.
  DUALMEM_RETURN_IF_ERROR(
      preprocessor->Run(pixels, length, width, height, format, config, out, view_size));
  for (int v = 1; v < num_views; ++v) {
    PixelBox box;
    bool mirror = false;
    SampleViewBox(width, height, augment, seed, v, &box, &mirror);
    DUALMEM_RETURN_IF_ERROR(preprocessor->RunBox(pixels, length, width, height, format, config,
                                                 box, mirror, out + view_size * v, view_size));
  }
  return Status::Ok();
}

}  // namespace dualmem
