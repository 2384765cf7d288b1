// Seeded test-time views: determinism, view 0, flips, crop bounds and errors.

#include "augment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "preprocess.h"

namespace dualmem {
namespace {

// A textured RGB image, so that any shift or mirror changes the output.
std::vector<uint8_t> TestImage(int width, int height, int channels) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        pixels[(static_cast<size_t>(y) * width + x) * channels + c] =
            static_cast<uint8_t>((x * 7 + y * 13 + c * 50) ^ (x * y));
      }
    }
  }
  return pixels;
}

PreprocessConfig SmallConfig(int side) {
  PreprocessConfig config;
  config.shortest_edge = side;
  config.crop_height = side;
  config.crop_width = side;
  return config;
}

std::vector<float> Views(Preprocessor* preprocessor, const std::vector<uint8_t>& pixels, int width,
                         int height, const PreprocessConfig& config, const AugmentConfig& augment,
                         uint64_t seed, int num_views) {
  std::vector<float> out(PreprocessOutputSize(config) * num_views);
  Status status = MakeViews(preprocessor, pixels.data(), pixels.size(), width, height,
                            PixelFormat::kRgb, config, augment, seed, num_views, out.data(),
                            out.size());
  EXPECT_TRUE(status.ok()) << status.message;
  return out;
}

// FNV-1a over the bytes of the floats. The WebAssembly test computes the same
// hash of the same call and expects this constant.
uint64_t Fnv1a(const std::vector<float>& values) {
  uint64_t hash = 0xcbf29ce484222325ull;
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(values.data());
  for (size_t i = 0; i < values.size() * sizeof(float); ++i) {
    hash = (hash ^ bytes[i]) * 0x100000001b3ull;
  }
  return hash;
}

TEST(MakeViews, SameSeedGivesIdenticalBytes) {
  std::vector<uint8_t> pixels = TestImage(61, 47, 3);
  PreprocessConfig config = SmallConfig(32);
  Preprocessor preprocessor;
  std::vector<float> first = Views(&preprocessor, pixels, 61, 47, config, {}, 7, 8);
  std::vector<float> second = Views(&preprocessor, pixels, 61, 47, config, {}, 7, 8);
  std::vector<float> other = Views(&preprocessor, pixels, 61, 47, config, {}, 8, 8);
  ASSERT_EQ(first.size(), second.size());
  EXPECT_EQ(0, std::memcmp(first.data(), second.data(), first.size() * sizeof(float)));
  EXPECT_NE(0, std::memcmp(first.data(), other.data(), first.size() * sizeof(float)));
}

TEST(MakeViews, ChecksumMatchesWasmConstant) {
  std::vector<uint8_t> pixels = TestImage(61, 47, 3);
  std::vector<float> views = [&] {
    Preprocessor preprocessor;
    return Views(&preprocessor, pixels, 61, 47, SmallConfig(32), {}, 42, 6);
  }();
  // tests/js/augment-wasm.test.js expects the same value from both
  // WebAssembly builds.
  EXPECT_EQ(Fnv1a(views), 0x86b8052797522330ull) << std::hex << "actual 0x" << Fnv1a(views);
}

TEST(MakeViews, ScalarAndSimdKernelsGiveIdenticalViews) {
  std::vector<uint8_t> pixels = TestImage(97, 64, 3);
  PreprocessConfig config = SmallConfig(40);
  Preprocessor simd, scalar;
  scalar.set_use_simd(false);
  std::vector<float> a = Views(&simd, pixels, 97, 64, config, {}, 3, 12);
  std::vector<float> b = Views(&scalar, pixels, 97, 64, config, {}, 3, 12);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

TEST(MakeViews, ViewZeroEqualsPlainPreprocessing) {
  std::vector<uint8_t> pixels = TestImage(80, 50, 3);
  PreprocessConfig config = SmallConfig(32);
  Preprocessor preprocessor;
  std::vector<float> views = Views(&preprocessor, pixels, 80, 50, config, {}, 11, 4);
  std::vector<float> plain(PreprocessOutputSize(config));
  ASSERT_TRUE(preprocessor
                  .Run(pixels.data(), pixels.size(), 80, 50, PixelFormat::kRgb, config,
                       plain.data(), plain.size())
                  .ok());
  EXPECT_EQ(0, std::memcmp(views.data(), plain.data(), plain.size() * sizeof(float)));
}

TEST(MakeViews, FirstViewsDoNotDependOnViewCount) {
  std::vector<uint8_t> pixels = TestImage(64, 64, 3);
  PreprocessConfig config = SmallConfig(24);
  Preprocessor preprocessor;
  std::vector<float> four = Views(&preprocessor, pixels, 64, 64, config, {}, 5, 4);
  std::vector<float> nine = Views(&preprocessor, pixels, 64, 64, config, {}, 5, 9);
  EXPECT_EQ(0, std::memcmp(four.data(), nine.data(), four.size() * sizeof(float)));
}

// With scale 1 on a square image the box is the whole image, so every view
// is view 0 or its exact mirror image.
TEST(MakeViews, FullImageViewsAreViewZeroOrItsMirror) {
  const int side = 40;
  std::vector<uint8_t> pixels = TestImage(side, side, 3);
  PreprocessConfig config = SmallConfig(32);
  AugmentConfig augment;
  augment.min_scale = augment.max_scale = 1.0f;
  Preprocessor preprocessor;
  const int num_views = 16;
  std::vector<float> views = Views(&preprocessor, pixels, side, side, config, augment, 9, num_views);
  const size_t plane = 32 * 32, size = 3 * plane;
  int mirrored = 0, same = 0;
  for (int v = 1; v < num_views; ++v) {
    const float* view = &views[v * size];
    bool is_same = std::memcmp(view, views.data(), size * sizeof(float)) == 0;
    bool is_mirror = true;
    for (size_t c = 0; c < 3 && is_mirror; ++c) {
      for (int y = 0; y < 32 && is_mirror; ++y) {
        for (int x = 0; x < 32; ++x) {
          if (view[c * plane + y * 32 + x] != views[c * plane + y * 32 + (31 - x)]) {
            is_mirror = false;
            break;
          }
        }
      }
    }
    EXPECT_TRUE(is_same || is_mirror) << "view " << v << " is neither view 0 nor its mirror";
    same += is_same;
    mirrored += is_mirror;
  }
  EXPECT_GT(same, 0);
  EXPECT_GT(mirrored, 0);
}

TEST(RunBox, MirrorReversesEveryRowExactly) {
  std::vector<uint8_t> pixels = TestImage(53, 37, 3);
  PreprocessConfig config = SmallConfig(30);
  Preprocessor preprocessor;
  std::vector<float> plain(PreprocessOutputSize(config)), mirror(plain.size());
  PixelBox box{0, 0, 53, 37};
  ASSERT_TRUE(preprocessor
                  .RunBox(pixels.data(), pixels.size(), 53, 37, PixelFormat::kRgb, config, box,
                          false, plain.data(), plain.size())
                  .ok());
  ASSERT_TRUE(preprocessor
                  .RunBox(pixels.data(), pixels.size(), 53, 37, PixelFormat::kRgb, config, box,
                          true, mirror.data(), mirror.size())
                  .ok());
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 30; ++y) {
      for (int x = 0; x < 30; ++x) {
        ASSERT_EQ(plain[(c * 30 + y) * 30 + x], mirror[(c * 30 + y) * 30 + (29 - x)])
            << "channel " << c << " row " << y << " column " << x;
      }
    }
  }
}

// A box of the crop size is copied pixel for pixel, so the output is the
// normalized source pixels of the box.
TEST(RunBox, BoxOfCropSizeCopiesPixels) {
  std::vector<uint8_t> pixels = TestImage(50, 40, 3);
  PreprocessConfig config = SmallConfig(16);
  Preprocessor preprocessor;
  std::vector<float> out(PreprocessOutputSize(config));
  PixelBox box{7, 11, 16, 16};
  ASSERT_TRUE(preprocessor
                  .RunBox(pixels.data(), pixels.size(), 50, 40, PixelFormat::kRgb, config, box,
                          false, out.data(), out.size())
                  .ok());
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 16; ++y) {
      for (int x = 0; x < 16; ++x) {
        uint8_t value = pixels[((11 + y) * 50 + (7 + x)) * 3 + c];
        float expected = (static_cast<float>(value * config.rescale_factor) - config.mean[c]) /
                         config.std[c];
        ASSERT_EQ(expected, out[(c * 16 + y) * 16 + x]) << "channel " << c << " at " << x << ","
                                                        << y;
      }
    }
  }
}

TEST(SampleViewBox, BoxesStayInsideThinAndTinyImages) {
  const int sizes[][2] = {{1, 1}, {1, 200}, {200, 1}, {2, 999}, {999, 3}, {5, 5}, {640, 480}};
  AugmentConfig wide;
  wide.min_scale = 0.08f;
  for (const AugmentConfig& augment : {AugmentConfig(), wide}) {
    for (const auto& size : sizes) {
      for (int view = 1; view < 200; ++view) {
        PixelBox box;
        bool mirror = false;
        SampleViewBox(size[0], size[1], augment, 1234, view, &box, &mirror);
        ASSERT_GE(box.left, 0);
        ASSERT_GE(box.top, 0);
        ASSERT_GE(box.width, 1);
        ASSERT_GE(box.height, 1);
        ASSERT_LE(box.left + box.width, size[0]) << size[0] << "x" << size[1] << " view " << view;
        ASSERT_LE(box.top + box.height, size[1]) << size[0] << "x" << size[1] << " view " << view;
      }
    }
  }
}

TEST(MakeViews, ThinImagesGiveFiniteViews) {
  Preprocessor preprocessor;
  PreprocessConfig config = SmallConfig(8);
  for (auto size : {std::pair<int, int>{1, 57}, {57, 1}, {1, 1}}) {
    std::vector<uint8_t> pixels = TestImage(size.first, size.second, 3);
    std::vector<float> views =
        Views(&preprocessor, pixels, size.first, size.second, config, {}, 2, 5);
    for (float value : views) ASSERT_TRUE(std::isfinite(value));
  }
}

TEST(MakeViews, BadArgumentsLeaveOutputUnwritten) {
  std::vector<uint8_t> pixels = TestImage(20, 20, 3);
  PreprocessConfig config = SmallConfig(8);
  Preprocessor preprocessor;
  const size_t view_size = PreprocessOutputSize(config);
  AugmentConfig bad_scale;
  bad_scale.min_scale = 0.0f;
  AugmentConfig bad_ratio;
  bad_ratio.min_ratio = 2.0f;
  bad_ratio.max_ratio = 1.0f;
  AugmentConfig bad_flip;
  bad_flip.flip_probability = std::nanf("");
  struct Case {
    int num_views;
    AugmentConfig augment;
    size_t out_length;
  } cases[] = {{0, {}, 0},
               {kMaxViews + 1, {}, view_size * (kMaxViews + 1)},
               {2, bad_scale, 2 * view_size},
               {2, bad_ratio, 2 * view_size},
               {2, bad_flip, 2 * view_size},
               {2, {}, 3 * view_size}};
  for (const Case& item : cases) {
    std::vector<float> out(std::max<size_t>(item.out_length, 1), -7.0f);
    Status status = MakeViews(&preprocessor, pixels.data(), pixels.size(), 20, 20,
                              PixelFormat::kRgb, config, item.augment, 1, item.num_views,
                              out.data(), item.out_length);
    EXPECT_EQ(status.code, StatusCode::kInvalidArgument) << "num_views " << item.num_views;
    EXPECT_FALSE(status.message.empty());
    for (float value : out) ASSERT_EQ(value, -7.0f);
  }
}

}  // namespace
}  // namespace dualmem
