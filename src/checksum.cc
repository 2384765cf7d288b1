#include "checksum.h"

#include <array>

namespace dualmem {
namespace {

// The polynomial 0x1EDC6F41 with its bits reversed, for LSB-first processing.
constexpr uint32_t kReflectedPolynomial = 0x82F63B78u;

// Bytes consumed per step of the main loop, one table each.
constexpr int kSlices = 8;

using Tables = std::array<std::array<uint32_t, 256>, kSlices>;

// tables[0][b] is the remainder of byte b alone. tables[k][b] is the
// remainder of byte b followed by k zero bytes, so the eight lookups of one
// step can be XORed together instead of chained byte after byte.
constexpr Tables MakeTables() {
  Tables tables{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t remainder = byte;
    for (int bit = 0; bit < 8; ++bit) {
      remainder = (remainder & 1u) ? (remainder >> 1) ^ kReflectedPolynomial : remainder >> 1;
    }
    tables[0][byte] = remainder;
  }
  for (int k = 1; k < kSlices; ++k) {
    for (uint32_t byte = 0; byte < 256; ++byte) {
      uint32_t previous = tables[k - 1][byte];
      tables[k][byte] = (previous >> 8) ^ tables[0][previous & 0xFFu];
    }
  }
  return tables;
}

constexpr Tables kTables = MakeTables();

// Reads four bytes as a little-endian integer whatever the host's byte order.
inline uint32_t LoadLittleEndian32(const uint8_t* bytes) {
  return static_cast<uint32_t>(bytes[0]) | static_cast<uint32_t>(bytes[1]) << 8 |
         static_cast<uint32_t>(bytes[2]) << 16 | static_cast<uint32_t>(bytes[3]) << 24;
}

}  // namespace

// Slicing-by-8. A byte-at-a-time loop waits for each lookup before the next,
// but the eight lookups of a step here are independent. Over a 106 MB
// snapshot in V8's WebAssembly that made the checksum about 4 times faster
// (an estimate from one loaded 2-core machine). WebAssembly has no CRC
// instruction to use instead.
uint32_t Crc32c(const uint8_t* data, size_t size, uint32_t crc) {
  uint32_t state = ~crc;
  size_t i = 0;

  // Main loop, eight bytes per step.
  for (; i + kSlices <= size; i += kSlices) {
    uint32_t low = state ^ LoadLittleEndian32(data + i);
    uint32_t high = LoadLittleEndian32(data + i + 4);
    state = kTables[7][low & 0xFFu] ^ kTables[6][(low >> 8) & 0xFFu] ^
            kTables[5][(low >> 16) & 0xFFu] ^ kTables[4][low >> 24] ^
            kTables[3][high & 0xFFu] ^ kTables[2][(high >> 8) & 0xFFu] ^
            kTables[1][(high >> 16) & 0xFFu] ^ kTables[0][high >> 24];
  }

  // Remainder, byte by byte.
  for (; i < size; ++i) {
    state = kTables[0][(state ^ data[i]) & 0xFFu] ^ (state >> 8);
  }
  return ~state;
}

}  // namespace dualmem
