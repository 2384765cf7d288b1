#include "preprocess.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "fixture_image.h"

namespace dualmem {
namespace {

const char* const kFixtures[] = {
    "alpha_gradient_300x200.png",
    "astronaut.png",
    "checker_1000x800.png",
    "chelsea.png",
    "coffee.png",
    "exact_224x224.png",
    "gray_noise_257x333.png",
    "palette_190x150.png",
    "tall_40x900.png",
    "tiny_5x7.png",
};

std::string FixturePath(const std::string& name) {
  return std::string(DUALMEM_FIXTURES_DIR) + "/preprocess/" + name;
}

PixelFormat FormatOf(int channels) {
  return static_cast<PixelFormat>(channels);
}

std::vector<uint8_t> RandomPixels(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> pixels(size);
  for (uint8_t& p : pixels) p = static_cast<uint8_t>(rng() & 0xFF);
  return pixels;
}

std::vector<float> RunOk(Preprocessor& preprocessor,
                         const std::vector<uint8_t>& pixels, int width,
                         int height, PixelFormat format,
                         const PreprocessConfig& config = PreprocessConfig()) {
  std::vector<float> out(PreprocessOutputSize(config), -1000.0f);
  Status status = preprocessor.Run(pixels.data(), pixels.size(), width, height,
                                   format, config, out.data(), out.size());
  EXPECT_TRUE(status.ok()) << width << "x" << height << ": " << status.message;
  return out;
}

// Value of an 8-bit pixel after the default rescale and normalization.
float Normalized(int value, int channel) {
  PreprocessConfig config;
  const float rescaled = static_cast<float>(value * config.rescale_factor);
  return (rescaled - config.mean[channel]) / config.std[channel];
}

TEST(PreprocessTest, FixturesMatchPillowReferenceWithinTolerance) {
  const PreprocessConfig config;
  const size_t plane = 224 * 224;
  Preprocessor preprocessor;
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    testing::FixtureImage image;
    std::vector<float> golden;
    std::string error;
    ASSERT_TRUE(testing::ReadPngFixture(FixturePath(name), &image, &error))
        << error;
    ASSERT_TRUE(
        testing::ReadGzipFloats(FixturePath(name) + ".f32.gz", &golden, &error))
        << error;
    ASSERT_EQ(golden.size(), 3 * plane);

    const std::vector<float> out =
        RunOk(preprocessor, image.pixels, image.width, image.height,
              FormatOf(image.channels), config);

    // Deviations in units of 1/255 of the pixel range, before normalization.
    std::vector<double> deviations(out.size());
    size_t identical = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const int channel = static_cast<int>(i / plane);
      deviations[i] =
          std::fabs(out[i] - golden[i]) * config.std[channel] * 255.0;
      identical += out[i] == golden[i];
    }
    std::sort(deviations.begin(), deviations.end());
    const double max_deviation = deviations.back();
    const double p99_deviation = deviations[deviations.size() * 99 / 100];
    std::printf(
        "  %-28s %dx%d ch=%d  max %.4f/255  p99 %.4f/255  identical %zu/%zu\n",
        name, image.width, image.height, image.channels, max_deviation,
        p99_deviation, identical, out.size());
    EXPECT_LE(p99_deviation, 1.0)
        << "99th percentile deviation, tolerance 1/255";
    EXPECT_LE(max_deviation, 3.0) << "max deviation, tolerance 3/255";
    // Stricter than the tolerance: the integer resampling mirrors Pillow, so
    // any difference means the arithmetic drifted from the reference.
    EXPECT_EQ(identical, out.size())
        << "values not bit-identical to the reference";
  }
}

TEST(PreprocessTest, ScalarAndSimdKernelsAgreeBitForBit) {
  Preprocessor simd, scalar;
  scalar.set_use_simd(false);
  const int sizes[][2] = {{300, 200}, {1000, 800}, {37, 451},
                          {225, 224}, {5, 7},      {1, 9}};
  for (const auto& size : sizes) {
    for (int channels : {1, 3, 4}) {
      SCOPED_TRACE(std::to_string(size[0]) + "x" + std::to_string(size[1]) +
                   " ch=" + std::to_string(channels));
      const std::vector<uint8_t> pixels =
          RandomPixels(static_cast<size_t>(size[0]) * size[1] * channels, 7);
      const PixelFormat format = FormatOf(channels);
      EXPECT_EQ(RunOk(simd, pixels, size[0], size[1], format),
                RunOk(scalar, pixels, size[0], size[1], format));
    }
  }
}

TEST(PreprocessTest, GrayInputEqualsReplicatedRgb) {
  const int width = 257, height = 333;
  const std::vector<uint8_t> gray = RandomPixels(width * height, 3);
  std::vector<uint8_t> rgb;
  for (uint8_t v : gray) rgb.insert(rgb.end(), {v, v, v});
  Preprocessor preprocessor;
  EXPECT_EQ(RunOk(preprocessor, gray, width, height, PixelFormat::kGray),
            RunOk(preprocessor, rgb, width, height, PixelFormat::kRgb));
}

TEST(PreprocessTest, RgbaInputDropsAlpha) {
  const int width = 300, height = 200;
  const std::vector<uint8_t> rgba = RandomPixels(width * height * 4, 5);
  std::vector<uint8_t> rgb;
  for (size_t i = 0; i < rgba.size(); i += 4)
    rgb.insert(rgb.end(), {rgba[i], rgba[i + 1], rgba[i + 2]});
  Preprocessor preprocessor;
  EXPECT_EQ(RunOk(preprocessor, rgba, width, height, PixelFormat::kRgba),
            RunOk(preprocessor, rgb, width, height, PixelFormat::kRgb));
}

TEST(PreprocessTest, ThinImagesGiveFiniteTensors) {
  Preprocessor preprocessor;
  for (int length : {1, 2, 3, 4, 5, 223, 224, 225, 1000, kMaxImageSide}) {
    for (bool wide : {true, false}) {
      const int width = wide ? length : 1, height = wide ? 1 : length;
      SCOPED_TRACE(std::to_string(width) + "x" + std::to_string(height));
      const std::vector<uint8_t> pixels =
          RandomPixels(static_cast<size_t>(length) * 3, length);
      const std::vector<float> out =
          RunOk(preprocessor, pixels, width, height, PixelFormat::kRgb);
      // Normalized 8-bit values lie in about [-1.8, 2.2] for the CLIP mean and
      // std.
      for (float v : out) {
        ASSERT_TRUE(std::isfinite(v)) << v;
        ASSERT_GT(v, -3.0f);
        ASSERT_LT(v, 3.0f);
      }
    }
  }
}

TEST(PreprocessTest, SinglePixelFillsCropWithItsValue) {
  const std::vector<uint8_t> pixel = {10, 128, 250};
  Preprocessor preprocessor;
  const std::vector<float> out =
      RunOk(preprocessor, pixel, 1, 1, PixelFormat::kRgb);
  for (int c = 0; c < 3; ++c) {
    for (size_t i = 0; i < 224 * 224; ++i) {
      ASSERT_EQ(out[c * 224 * 224 + i], Normalized(pixel[c], c))
          << "channel " << c << " index " << i;
    }
  }
}

TEST(PreprocessTest, Exact224ImagePassesThroughUnresampled) {
  const std::vector<uint8_t> pixels = RandomPixels(224 * 224 * 3, 11);
  Preprocessor preprocessor;
  const std::vector<float> out =
      RunOk(preprocessor, pixels, 224, 224, PixelFormat::kRgb);
  for (int c = 0; c < 3; ++c) {
    for (size_t i = 0; i < 224 * 224; ++i) {
      ASSERT_EQ(out[c * 224 * 224 + i], Normalized(pixels[i * 3 + c], c))
          << "channel " << c << " index " << i;
    }
  }
}

TEST(PreprocessTest, CropLargerThanImagePadsWithZeroPixels) {
  PreprocessConfig config;
  config.do_resize = false;
  const int width = 100, height = 50;
  const std::vector<uint8_t> pixels(width * height * 3, 200);
  Preprocessor preprocessor;
  const std::vector<float> out =
      RunOk(preprocessor, pixels, width, height, PixelFormat::kRgb, config);
  // As Hugging Face's center_crop: the image sits at ceil((224 - size) / 2).
  const int top = 87, left = 62;
  for (int c = 0; c < 3; ++c) {
    const float* plane = &out[c * 224 * 224];
    EXPECT_EQ(plane[0], Normalized(0, c));
    EXPECT_EQ(plane[(top - 1) * 224 + left], Normalized(0, c));
    EXPECT_EQ(plane[top * 224 + left - 1], Normalized(0, c));
    EXPECT_EQ(plane[top * 224 + left], Normalized(200, c));
    EXPECT_EQ(plane[(top + height - 1) * 224 + left + width - 1],
              Normalized(200, c));
    EXPECT_EQ(plane[(top + height) * 224 + left + width - 1], Normalized(0, c));
    EXPECT_EQ(plane[(top + height - 1) * 224 + left + width], Normalized(0, c));
  }
}

TEST(PreprocessTest, DisabledNormalizeGivesRescaledValues) {
  PreprocessConfig config;
  config.do_normalize = false;
  const std::vector<uint8_t> pixels(224 * 224, 255);
  Preprocessor preprocessor;
  const std::vector<float> out =
      RunOk(preprocessor, pixels, 224, 224, PixelFormat::kGray, config);
  for (float v : out) ASSERT_EQ(v, 1.0f);
}

TEST(PreprocessTest, RejectsZeroSizeAndWrongLengths) {
  Preprocessor preprocessor;
  const PreprocessConfig config;
  std::vector<float> out(PreprocessOutputSize(config), 7.0f);
  const std::vector<uint8_t> pixels(12 * 3, 1);
  struct Case {
    const uint8_t* data;
    size_t length;
    int width, height;
    size_t out_length;
  } cases[] = {
      {pixels.data(), 0, 0, 12, out.size()},       // zero width
      {pixels.data(), 36, 12, 0, out.size()},      // zero height
      {pixels.data(), 36, -3, 12, out.size()},     // negative width
      {pixels.data(), 35, 12, 1, out.size()},      // one byte short
      {pixels.data(), 36, 4, 4, out.size()},       // length of another size
      {nullptr, 36, 12, 1, out.size()},            // null pixels
      {pixels.data(), 36, 12, 1, out.size() - 1},  // output one float short
  };
  for (const Case& c : cases) {
    Status status =
        preprocessor.Run(c.data, c.length, c.width, c.height, PixelFormat::kRgb,
                         config, out.data(), c.out_length);
    EXPECT_EQ(status.code, StatusCode::kInvalidArgument)
        << c.width << "x" << c.height << " length " << c.length << ": "
        << status.message;
  }
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](float v) {
    return v == 7.0f;
  })) << "output written despite an error";
}

TEST(PreprocessTest, RejectsImagesAboveLimits) {
  Preprocessor preprocessor;
  const PreprocessConfig config;
  std::vector<float> out(PreprocessOutputSize(config));
  const uint8_t pixel = 0;
  // The limits are checked before the buffer length, so no huge buffer is
  // needed.
  Status side =
      preprocessor.Run(&pixel, 1, kMaxImageSide + 1, 1, PixelFormat::kGray,
                       config, out.data(), out.size());
  EXPECT_EQ(side.code, StatusCode::kLimitExceeded) << side.message;
  EXPECT_NE(side.message.find("16385"), std::string::npos) << side.message;
  EXPECT_NE(side.message.find("16384"), std::string::npos) << side.message;

  Status area = preprocessor.Run(&pixel, 1, 8193, 8193, PixelFormat::kGray,
                                 config, out.data(), out.size());
  EXPECT_EQ(area.code, StatusCode::kLimitExceeded) << area.message;
  EXPECT_NE(area.message.find(std::to_string(int64_t{8193} * 8193)),
            std::string::npos)
      << area.message;
  EXPECT_NE(area.message.find(std::to_string(kMaxImagePixels)),
            std::string::npos)
      << area.message;
}

TEST(PreprocessTest, ThinHugeImageUsesLittleScratch) {
  // A full resize of 16384x1 would be 3670016x224 pixels (2.4 GB of RGB);
  // only the crop's neighborhood is resampled.
  for (bool wide : {true, false}) {
    const int width = wide ? kMaxImageSide : 1,
              height = wide ? 1 : kMaxImageSide;
    const std::vector<uint8_t> pixels =
        RandomPixels(size_t{kMaxImageSide} * 3, 2);
    Preprocessor preprocessor;
    RunOk(preprocessor, pixels, width, height, PixelFormat::kRgb);
    const size_t crop_bytes = 3 * 224 * 224;
    EXPECT_LE(preprocessor.scratch_bytes(), crop_bytes)
        << width << "x" << height << ": scratch "
        << preprocessor.scratch_bytes()
        << " bytes, expected at most one 8-bit crop (" << crop_bytes << ")";
  }
}

TEST(PreprocessTest, LargeImageScratchStaysBelowSourcePlusCrop) {
  const int width = 4000, height = 3000;
  const std::vector<uint8_t> pixels =
      RandomPixels(size_t{width} * height * 4, 9);
  Preprocessor preprocessor;
  RunOk(preprocessor, pixels, width, height, PixelFormat::kRgba);
  const size_t limit = pixels.size() / 4 + 3 * 224 * 224 * sizeof(float);
  EXPECT_LE(preprocessor.scratch_bytes(), limit)
      << "scratch " << preprocessor.scratch_bytes()
      << " bytes, expected at most a quarter "
      << "of the source plus one float crop (" << limit << ")";
}

TEST(PreprocessTest, ReuseAfterOtherSizesKeepsOutput) {
  const std::vector<uint8_t> first = RandomPixels(451 * 300 * 3, 21);
  const std::vector<uint8_t> other = RandomPixels(40 * 900 * 4, 22);
  Preprocessor reused, fresh;
  const std::vector<float> before =
      RunOk(reused, first, 451, 300, PixelFormat::kRgb);
  RunOk(reused, other, 40, 900, PixelFormat::kRgba);
  const size_t scratch = reused.scratch_bytes();
  EXPECT_EQ(RunOk(reused, first, 451, 300, PixelFormat::kRgb), before);
  EXPECT_EQ(reused.scratch_bytes(), scratch)
      << "a repeated size should not grow the scratch";
  EXPECT_EQ(RunOk(fresh, first, 451, 300, PixelFormat::kRgb), before);
}

TEST(PreprocessTest, FreeFunctionMatchesPreprocessor) {
  const std::vector<uint8_t> pixels = RandomPixels(600 * 400 * 3, 4);
  const PreprocessConfig config;
  std::vector<float> out(PreprocessOutputSize(config));
  ASSERT_TRUE(PreprocessImage(pixels.data(), pixels.size(), 600, 400,
                              PixelFormat::kRgb, config, out.data(), out.size())
                  .ok());
  Preprocessor preprocessor;
  EXPECT_EQ(out, RunOk(preprocessor, pixels, 600, 400, PixelFormat::kRgb));
}

// ---- Config parsing. ----

TEST(PreprocessConfigTest, ParsesCurrentClipConfig) {
  const char* json = R"({
    "crop_size": {"height": 336, "width": 320},
    "do_center_crop": true, "do_convert_rgb": true, "do_normalize": true,
    "do_rescale": true, "do_resize": true,
    "image_mean": [0.5, 0.25, 0.125], "image_std": [0.1, 0.2, 0.3],
    "image_processor_type": "CLIPImageProcessor", "processor_class": "CLIPProcessor",
    "resample": 3, "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 336}
  })";
  PreprocessConfig config;
  Status status = ParsePreprocessConfig(json, &config);
  ASSERT_TRUE(status.ok()) << status.message;
  EXPECT_EQ(config.shortest_edge, 336);
  EXPECT_EQ(config.crop_height, 336);
  EXPECT_EQ(config.crop_width, 320);
  EXPECT_EQ(config.mean[1], 0.25f);
  EXPECT_EQ(config.std[2], 0.3f);
  EXPECT_EQ(config.rescale_factor, 1.0 / 255.0);
  EXPECT_EQ(PreprocessOutputSize(config), 3u * 336 * 320);
}

TEST(PreprocessConfigTest, ParsesLegacyIntegerSizes) {
  PreprocessConfig config;
  Status status = ParsePreprocessConfig(
      R"({"crop_size": 288, "size": 256, "feature_extractor_type": "CLIPFeatureExtractor",
          "do_convert_rgb": null})",
      &config);
  ASSERT_TRUE(status.ok()) << status.message;
  EXPECT_EQ(config.shortest_edge, 256);
  EXPECT_EQ(config.crop_height, 288);
  EXPECT_EQ(config.crop_width, 288);
  EXPECT_TRUE(config.do_convert_rgb);
  EXPECT_EQ(config.mean[0], 0.48145466f)
      << "absent fields keep the CLIP defaults";
}

TEST(PreprocessConfigTest, ParsesExactResizeSize) {
  PreprocessConfig config;
  ASSERT_TRUE(ParsePreprocessConfig(
                  R"({"size": {"height": 300, "width": 200}})", &config)
                  .ok());
  EXPECT_EQ(config.resize_height, 300);
  EXPECT_EQ(config.resize_width, 200);
}

TEST(PreprocessConfigTest, RejectsBadValuesNamingTheField) {
  struct Case {
    const char* json;
    StatusCode code;
    const char* field;
  } cases[] = {
      {R"({"size": {"shortest_edge": 0}})", StatusCode::kInvalidArgument,
       "size.shortest_edge"},
      {R"({"size": {"shortest_edge": 224.5}})", StatusCode::kInvalidArgument,
       "size.shortest_edge"},
      {R"({"size": "224"})", StatusCode::kInvalidArgument, "size"},
      {R"({"size": {"height": 224}})", StatusCode::kInvalidArgument, "size"},
      {R"({"crop_size": {"height": 224, "width": 5000}})",
       StatusCode::kInvalidArgument, "crop_size.width"},
      {R"({"do_resize": 1})", StatusCode::kInvalidArgument, "do_resize"},
      {R"({"rescale_factor": -1})", StatusCode::kInvalidArgument,
       "rescale_factor"},
      {R"({"image_mean": [0.5, 0.5]})", StatusCode::kInvalidArgument,
       "image_mean"},
      {R"({"image_std": [0.5, 0, 0.5]})", StatusCode::kInvalidArgument,
       "image_std"},
      {R"({"image_std": [0.5, "x", 0.5]})", StatusCode::kInvalidArgument,
       "image_std"},
      {R"({"resample": 2})", StatusCode::kUnsupported, "resample"},
      {R"({"resample": 9})", StatusCode::kInvalidArgument, "resample"},
      {R"({"image_processor_type": "SiglipImageProcessor"})",
       StatusCode::kUnsupported, "image_processor_type"},
      {R"([1, 2])", StatusCode::kInvalidArgument, "top level"},
      {R"({"size": )", StatusCode::kParseError, "invalid JSON"},
  };
  for (const Case& c : cases) {
    PreprocessConfig config;
    config.shortest_edge = 111;
    Status status = ParsePreprocessConfig(c.json, &config);
    EXPECT_EQ(status.code, c.code) << c.json << ": " << status.message;
    EXPECT_NE(status.message.find(c.field), std::string::npos)
        << c.json << ": " << status.message;
    EXPECT_EQ(config.shortest_edge, 111)
        << "config changed despite an error: " << c.json;
  }
}

TEST(PreprocessConfigTest, RunRejectsInvalidHandMadeConfig) {
  PreprocessConfig config;
  config.resample = 2;
  const std::vector<uint8_t> pixels(4 * 4 * 3);
  std::vector<float> out(PreprocessOutputSize(config));
  Status status =
      PreprocessImage(pixels.data(), pixels.size(), 4, 4, PixelFormat::kRgb,
                      config, out.data(), out.size());
  EXPECT_EQ(status.code, StatusCode::kUnsupported) << status.message;
}

TEST(PreprocessConfigTest, NoCenterCropNeedsCropSizedImage) {
  PreprocessConfig config;
  config.do_center_crop = false;
  Preprocessor preprocessor;
  const std::vector<uint8_t> square = RandomPixels(300 * 300 * 3, 1);
  RunOk(preprocessor, square, 300, 300, PixelFormat::kRgb, config);

  const std::vector<uint8_t> wide = RandomPixels(400 * 300 * 3, 1);
  std::vector<float> out(PreprocessOutputSize(config));
  Status status =
      preprocessor.Run(wide.data(), wide.size(), 400, 300, PixelFormat::kRgb,
                       config, out.data(), out.size());
  EXPECT_EQ(status.code, StatusCode::kInvalidArgument) << status.message;
}

}  // namespace
}  // namespace dualmem
