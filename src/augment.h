// Test-time views and augmented shots: seeded random resized crops and
// horizontal flips made from an image's decoded pixels, each resampled
// straight to the CLIP input size and normalized as Preprocessor::Run does.
// View 0 is always the plain preprocessing and views 1.. are augmented. The
// crop boxes come from a SplitMix64 stream per view and integer or exactly
// rounded double arithmetic only, so a seed gives byte-identical views
// natively and in WebAssembly. Every view costs one resampling, so the time
// grows linearly with the number of views.
#ifndef DUALMEM_AUGMENT_H_
#define DUALMEM_AUGMENT_H_

#include <cstddef>
#include <cstdint>

#include "preprocess.h"
#include "status.h"

namespace dualmem {

// Largest number of views in one call: twice the 64 views that TPT and Dual
// Memory Networks classify each test image with (63 augmented + original).
constexpr int kMaxViews = 128;

// Ranges of the random resized crop, as torchvision's RandomResizedCrop
// defines them: the box covers `scale` of the image area and has a
// width/height ratio drawn log-uniformly from [min_ratio, max_ratio].
struct AugmentConfig {
  // torchvision's default lower bound is 0.08, but a box of 8% of a small,
  // object-filling image (Fashion-MNIST is 28x28) often no longer shows the
  // object, and with a few views each bad view weighs more than among 64.
  float min_scale = 0.5f, max_scale = 1.0f;
  float min_ratio = 3.0f / 4.0f, max_ratio = 4.0f / 3.0f;  // torchvision's
  float flip_probability = 0.5f;  // chance of a horizontal flip per view
};

// Checks the ranges: 0 < min_scale <= max_scale <= 1, 0 < min_ratio <=
// max_ratio (finite), flip_probability in [0, 1].
Status ValidateAugmentConfig(const AugmentConfig& config);

// Draws the crop box and flip of augmented view `view` (>= 1) of a
// width x height image. After 10 failed draws it falls back to the center
// box with the ratio clamped to the range, as torchvision does, so the box is
// always inside the image, even for 1xN images.
void SampleViewBox(int width, int height, const AugmentConfig& config,
                   uint64_t seed, int view, PixelBox* box, bool* mirror);

// Writes `num_views` (1 to kMaxViews) preprocessed views back to back into
// `out` (out_length == num_views * PreprocessOutputSize(config) floats, CHW
// each). View 0 equals Preprocessor::Run; view k >= 1 depends only on the
// seed, k and the image, so the first views of a larger call equal a smaller
// call. Errors are those of Preprocessor::Run plus kInvalidArgument for a bad
// view count, augment config or out_length; `out` is not written then.
Status MakeViews(Preprocessor* preprocessor, const uint8_t* pixels,
                 size_t length, int width, int height, PixelFormat format,
                 const PreprocessConfig& config, const AugmentConfig& augment,
                 uint64_t seed, int num_views, float* out, size_t out_length);

}  // namespace dualmem

#endif  // DUALMEM_AUGMENT_H_
