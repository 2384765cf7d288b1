// Test-only readers for the preprocessing fixtures: PNG images through
// libpng's simplified API and gzip'd little-endian float32 goldens through
// zlib. The core never decodes images; callers pass decoded pixels.
#ifndef DUALMEM_TESTS_CPP_FIXTURE_IMAGE_H_
#define DUALMEM_TESTS_CPP_FIXTURE_IMAGE_H_

#include <png.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace dualmem {
namespace testing {

struct FixtureImage {
  int width = 0;
  int height = 0;
  int channels = 0;  // 1 gray, 3 RGB, 4 RGBA
  std::vector<uint8_t> pixels;
};

// Decodes an 8-bit PNG into gray, RGB or RGBA, following the file's own
// color type: palettes expand to RGB and alpha is kept. Returns false and
// sets `error` when the file cannot be read.
inline bool ReadPngFixture(const std::string& path, FixtureImage* image,
                           std::string* error) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str())) {
    *error = path + ": " + png.message;
    return false;
  }
  const bool color = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  const bool alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  if (alpha) {
    png.format = PNG_FORMAT_RGBA;
    image->channels = 4;
  } else if (color) {
    png.format = PNG_FORMAT_RGB;
    image->channels = 3;
  } else {
    png.format = PNG_FORMAT_GRAY;
    image->channels = 1;
  }
  image->width = static_cast<int>(png.width);
  image->height = static_cast<int>(png.height);
  image->pixels.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, image->pixels.data(), 0, nullptr)) {
    *error = path + ": " + png.message;
    png_image_free(&png);
    return false;
  }
  return true;
}

// Reads a gzip file of little-endian float32 values.
inline bool ReadGzipFloats(const std::string& path, std::vector<float>* values,
                           std::string* error) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    *error = path + ": cannot open";
    return false;
  }
  std::vector<uint8_t> bytes;
  uint8_t buffer[1 << 16];
  int n = 0;
  while ((n = gzread(file, buffer, sizeof(buffer))) > 0) {
    bytes.insert(bytes.end(), buffer, buffer + n);
  }
  gzclose(file);
  if (n < 0 || bytes.size() % 4 != 0) {
    *error =
        path + ": corrupt gzip stream or a size that is not a multiple of 4";
    return false;
  }
  values->resize(bytes.size() / 4);
  for (size_t i = 0; i < values->size(); ++i) {
    const uint32_t bits =
        uint32_t{bytes[4 * i]} | uint32_t{bytes[4 * i + 1]} << 8 |
        uint32_t{bytes[4 * i + 2]} << 16 | uint32_t{bytes[4 * i + 3]} << 24;
    std::memcpy(&(*values)[i], &bits, sizeof(float));
  }
  return true;
}

}  // namespace testing
}  // namespace dualmem

#endif  // DUALMEM_TESTS_CPP_FIXTURE_IMAGE_H_
