#include "checksum.h"

#include <array>

namespace dualmem {
namespace {

// The polynomial 0x1EDC6F41 with its bits reversed, for LSB-first processing.
constexpr uint32_t kReflectedPolynomial = 0x82F63B78u;

// Remainder of each byte value, so the loop handles eight bits per lookup.
constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t remainder = byte;
    for (int bit = 0; bit < 8; ++bit) {
      remainder = (remainder & 1u) ? (remainder >> 1) ^ kReflectedPolynomial : remainder >> 1;
    }
    table[byte] = remainder;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kTable = MakeTable();

}  // namespace

uint32_t Crc32c(const uint8_t* data, size_t size, uint32_t crc) {
  uint32_t state = ~crc;
  for (size_t i = 0; i < size; ++i) {
    state = kTable[(state ^ data[i]) & 0xFFu] ^ (state >> 8);
  }
  return ~state;
}

}  // namespace dualmem
