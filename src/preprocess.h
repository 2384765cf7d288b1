// CLIP image preprocessing: decoded pixels in, a normalized CHW float tensor
// out, matching the Hugging Face CLIPImageProcessor running on Pillow 9.4
// (convert to RGB, bicubic resize of the shortest edge, center crop, rescale,
// normalize). The resize reproduces Pillow's 8-bit fixed-point arithmetic, so
// the output equals the reference bit for bit on lossless inputs.
#ifndef DUALMEM_PREPROCESS_H_
#define DUALMEM_PREPROCESS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "status.h"

namespace dualmem {

// Largest accepted image side, in pixels. It keeps source coordinates exact
// in the float32 arithmetic that Pillow uses for them (exact below 2^24) and
// every resized length within int32 (2048 * 16384 < 2^31).
constexpr int kMaxImageSide = 16384;
// Largest accepted image area, in pixels: 64 MP of RGBA is 256 MiB, already
// an eighth of the 2 GiB heap limit of Emscripten's default build.
constexpr int64_t kMaxImagePixels = int64_t{64} * 1024 * 1024;
// Largest accepted shortest_edge, crop side or resize side in a config.
// OpenAI's CLIP models use 224 or 336, and 2048 bounds the output at 48 MiB.
constexpr int kMaxConfigSide = 2048;

enum class PixelFormat : uint8_t {
  kGray = 1,
  kRgb = 3,
  kRgba = 4
};  // value = channels

// The fields of preprocessor_config.json that change the output.
struct PreprocessConfig {
  int shortest_edge = 224;  // resize target of the shorter side
  int resize_height = 0,
      resize_width = 0;  // both > 0: resize to exactly this instead
  int crop_height = 224, crop_width = 224;
  bool do_resize = true, do_center_crop = true, do_rescale = true;
  bool do_normalize = true, do_convert_rgb = true;
  double rescale_factor =
      1.0 / 255.0;  // double, as the Python reference multiplies
  float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  int resample = 3;  // Pillow's filter id, and only 3 (bicubic) is implemented
};

// Parses a Hugging Face preprocessor_config.json. Accepts "size" as an
// integer, {"shortest_edge": n} or {"height": h, "width": w}, and "crop_size"
// as an integer or {"height": h, "width": w}. Absent fields keep the CLIP
// defaults. Returns kParseError for broken JSON, kInvalidArgument naming the
// field for a wrong type or range, and kUnsupported for a processor type or
// resample filter this code does not reproduce. `out` changes only on success.
Status ParsePreprocessConfig(std::string_view json, PreprocessConfig* out);

// Checks the ranges that ParsePreprocessConfig enforces, for hand-made configs.
Status ValidatePreprocessConfig(const PreprocessConfig& config);

// Number of floats PreprocessImage writes: 3 * crop_height * crop_width.
size_t PreprocessOutputSize(const PreprocessConfig& config);

// A rectangle of source pixels: columns [left, left + width) and rows
// [top, top + height).
struct PixelBox {
  int left = 0, top = 0, width = 0, height = 0;
};

// Reusable working memory for preprocessing. Buffers only grow, so a stream
// of images of similar size costs no heap allocation after the first. The
// working memory is bounded by about the source size plus three crop-sized
// 8-bit planes, because only the source rows and columns that reach the crop
// are resampled. Not thread-safe, so use one instance per thread.
class Preprocessor {
 public:
  Preprocessor();
  ~Preprocessor();
  Preprocessor(Preprocessor&&) noexcept;
  Preprocessor& operator=(Preprocessor&&) noexcept;

  // Preprocesses `pixels` (row-major, interleaved, `format` channels of 8
  // bits, `length` bytes) into `out` (`out_length` floats, CHW). Returns
  // kInvalidArgument for a null pointer, a zero size, a length other than
  // width * height * channels, a wrong out_length or a bad config, and
  // kLimitExceeded for a side above kMaxImageSide or an area above
  // kMaxImagePixels. On error `out` is not written.
  Status Run(const uint8_t* pixels, size_t length, int width, int height,
             PixelFormat format, const PreprocessConfig& config, float* out,
             size_t out_length);

  // Resamples the `box` of the source image straight to crop_height x
  // crop_width, as Pillow's Image.resize(size, BICUBIC, box) does (taps near
  // the box edge read the source pixels just outside it), then rescales and
  // normalizes as Run does. The resize and center-crop fields of `config`
  // are not used. With `mirror` the output columns are reversed, a
  // horizontal flip. Errors are those of Run, plus kInvalidArgument for a box
  // that is empty or not inside the image.
  Status RunBox(const uint8_t* pixels, size_t length, int width, int height,
                PixelFormat format, const PreprocessConfig& config,
                const PixelBox& box, bool mirror, float* out,
                size_t out_length);

  // Bytes of working memory currently reserved.
  size_t scratch_bytes() const;
  // Frees the working memory, which the next Run allocates again.
  void ReleaseScratch();
  // Selects the portable scalar kernels instead of SIMD (tests, benchmarks).
  // Both give identical output because the arithmetic is integer.
  void set_use_simd(bool use_simd) { use_simd_ = use_simd; }

 private:
  struct Scratch;
  void ResampleAndNormalize(const uint8_t* pixels, int width,
                            PixelFormat format, const PreprocessConfig& config,
                            int top, int left, bool mirror, float* out);
  std::unique_ptr<Scratch> scratch_;
  bool use_simd_ = true;
};

// Runs a thread-local Preprocessor (see Preprocessor::Run).
Status PreprocessImage(const uint8_t* pixels, size_t length, int width,
                       int height, PixelFormat format,
                       const PreprocessConfig& config, float* out,
                       size_t out_length);

}  // namespace dualmem

#endif  // DUALMEM_PREPROCESS_H_
