#include "checksum.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace dualmem {
namespace {

uint32_t CrcOf(const std::vector<uint8_t>& bytes) { return Crc32c(bytes.data(), bytes.size()); }

TEST(Crc32c, MatchesTheStandardCheckValue) {
  const char* text = "123456789";
  EXPECT_EQ(Crc32c(reinterpret_cast<const uint8_t*>(text), std::strlen(text)), 0xE3069283u);
}

// Check values of the 32-byte test patterns that iSCSI implementations use.
TEST(Crc32c, MatchesIscsiTestPatterns) {
  std::vector<uint8_t> zeros(32, 0x00), ones(32, 0xFF), ascending(32), descending(32);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<uint8_t>(i);
    descending[i] = static_cast<uint8_t>(31 - i);
  }
  EXPECT_EQ(CrcOf(zeros), 0x8A9136AAu);
  EXPECT_EQ(CrcOf(ones), 0x62A8AB43u);
  EXPECT_EQ(CrcOf(ascending), 0x46DD794Eu);
  EXPECT_EQ(CrcOf(descending), 0x113FDB5Cu);
}

TEST(Crc32c, EmptyInputIsZero) { EXPECT_EQ(Crc32c(nullptr, 0), 0u); }

TEST(Crc32c, ContinuesAcrossPieces) {
  std::vector<uint8_t> bytes(1000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + 7);
  uint32_t whole = CrcOf(bytes);
  for (size_t split : {0, 1, 3, 500, 999, 1000}) {
    uint32_t first = Crc32c(bytes.data(), split);
    EXPECT_EQ(Crc32c(bytes.data() + split, bytes.size() - split, first), whole)
        << "split at byte " << split;
  }
}

// The definition, one bit at a time, against which the table-driven loops
// are checked.
uint32_t BitwiseCrc32c(const uint8_t* data, size_t size) {
  uint32_t state = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) {
    state ^= data[i];
    for (int bit = 0; bit < 8; ++bit) state = (state & 1u) ? (state >> 1) ^ 0x82F63B78u : state >> 1;
  }
  return ~state;
}

TEST(Crc32c, MatchesBitwiseDefinitionAtEveryOffsetAndLength) {
  std::vector<uint8_t> bytes(80);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 167 + 13);
  // Offsets 0 to 7 start the eight-byte steps at every alignment, and lengths
  // up to 64 leave every remainder for the byte loop.
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t length = 0; length <= 64; ++length) {
      EXPECT_EQ(Crc32c(bytes.data() + offset, length), BitwiseCrc32c(bytes.data() + offset, length))
          << "offset " << offset << ", length " << length;
    }
  }
}

TEST(Crc32c, DetectsEverySingleBitFlip) {
  std::vector<uint8_t> bytes(64, 0x5A);
  uint32_t original = CrcOf(bytes);
  for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    bytes[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_NE(CrcOf(bytes), original) << "bit " << bit;
    bytes[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  }
}

}  // namespace
}  // namespace dualmem
