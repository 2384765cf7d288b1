#include "unicode_data.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace dualmem {
namespace {

struct CategoryRange {
  char32_t first;
  char32_t last;
  uint8_t category;  // 1 = letter, 2 = number
};

struct CombiningRange {
  char32_t first;
  char32_t last;
  uint8_t combining_class;
};

struct Decomposition {
  char32_t code_point;
  char32_t first;
  char32_t second;  // 0 for a singleton decomposition
};

struct Composition {
  char32_t first;
  char32_t second;
  char32_t composite;
};

// Code points first..last step `stride` lowercase to code point + delta.
struct LowercaseRange {
  char32_t first;
  char32_t last;
  int32_t stride;
  int32_t delta;
};

struct LowercaseExpansion {
  char32_t code_point;
  char32_t lower[3];  // zero-padded
};

#include "unicode_tables.inc"

constexpr uint8_t kLetterCategory = 1;
constexpr uint8_t kNumberCategory = 2;

// Hangul syllable arithmetic from the Unicode Standard, section 3.12.
constexpr char32_t kHangulSBase = 0xAC00;
constexpr char32_t kHangulLBase = 0x1100;
constexpr char32_t kHangulVBase = 0x1161;
constexpr char32_t kHangulTBase = 0x11A7;
constexpr char32_t kHangulLCount = 19;
constexpr char32_t kHangulVCount = 21;
constexpr char32_t kHangulTCount = 28;
constexpr char32_t kHangulNCount = kHangulVCount * kHangulTCount;
constexpr char32_t kHangulSCount = kHangulLCount * kHangulNCount;

// Below U+0300 no code point has a non-zero combining class, and every one
// with a decomposition recomposes to itself, so NFC leaves such text as is.
constexpr char32_t kFirstNfcSensitive = 0x300;
// U+00C0 (À) is the first code point with a canonical decomposition.
constexpr char32_t kFirstDecomposable = 0xC0;

// Returns the last range whose `first` is at most `code_point`, or nullptr.
template <typename Range, size_t N>
const Range* FindRange(const Range (&ranges)[N], char32_t code_point) {
  const Range* it = std::upper_bound(
      ranges, ranges + N, code_point,
      [](char32_t value, const Range& range) { return value < range.first; });
  if (it == ranges) return nullptr;
  return it - 1;
}

uint8_t CategoryOf(char32_t code_point) {
  const CategoryRange* range = FindRange(kCategoryRanges, code_point);
  if (range == nullptr || code_point > range->last) return 0;
  return range->category;
}

const Decomposition* FindDecomposition(char32_t code_point) {
  const Decomposition* end = std::end(kDecompositions);
  const Decomposition* it = std::lower_bound(
      std::begin(kDecompositions), end, code_point,
      [](const Decomposition& d, char32_t value) {
        return d.code_point < value;
      });
  if (it == end || it->code_point != code_point) return nullptr;
  return it;
}

// Appends the full canonical decomposition of one code point.
void AppendDecomposed(char32_t code_point, std::u32string* out) {
  if (code_point >= kHangulSBase && code_point < kHangulSBase + kHangulSCount) {
    char32_t index = code_point - kHangulSBase;
    out->push_back(kHangulLBase + index / kHangulNCount);
    out->push_back(kHangulVBase + (index % kHangulNCount) / kHangulTCount);
    if (index % kHangulTCount != 0) {
      out->push_back(kHangulTBase + index % kHangulTCount);
    }
    return;
  }
  const Decomposition* decomposition =
      code_point < kFirstDecomposable ? nullptr : FindDecomposition(code_point);
  if (decomposition == nullptr) {
    out->push_back(code_point);
    return;
  }
  AppendDecomposed(decomposition->first, out);
  if (decomposition->second != 0) AppendDecomposed(decomposition->second, out);
}

// Returns the primary composite of a starter and a following code point, or
// 0 when the pair does not compose.
char32_t Compose(char32_t first, char32_t second) {
  if (first >= kHangulLBase && first < kHangulLBase + kHangulLCount &&
      second >= kHangulVBase && second < kHangulVBase + kHangulVCount) {
    return kHangulSBase + ((first - kHangulLBase) * kHangulVCount +
                           (second - kHangulVBase)) * kHangulTCount;
  }
  if (first >= kHangulSBase && first < kHangulSBase + kHangulSCount &&
      (first - kHangulSBase) % kHangulTCount == 0 && second > kHangulTBase &&
      second < kHangulTBase + kHangulTCount) {
    return first + (second - kHangulTBase);
  }
  const Composition* end = std::end(kCompositions);
  const Composition* it = std::lower_bound(
      std::begin(kCompositions), end, std::make_pair(first, second),
      [](const Composition& c, const std::pair<char32_t, char32_t>& key) {
        return c.first < key.first ||
               (c.first == key.first && c.second < key.second);
      });
  if (it == end || it->first != first || it->second != second) return 0;
  return it->composite;
}

// Sorts each run of non-starters by combining class, keeping the order of
// equal classes (the canonical ordering algorithm).
void ReorderCanonically(std::u32string* text) {
  size_t i = 0;
  while (i < text->size()) {
    if (CombiningClass((*text)[i]) == 0) {
      ++i;
      continue;
    }
    size_t run_end = i;
    while (run_end < text->size() && CombiningClass((*text)[run_end]) != 0) {
      ++run_end;
    }
    std::stable_sort(text->begin() + i, text->begin() + run_end,
                     [](char32_t a, char32_t b) {
                       return CombiningClass(a) < CombiningClass(b);
                     });
    i = run_end;
  }
}

// Canonical composition of a decomposed, reordered text.
std::u32string ComposeCanonically(const std::u32string& decomposed) {
  std::u32string result;
  result.reserve(decomposed.size());
  constexpr size_t kNoStarter = static_cast<size_t>(-1);
  size_t starter = kNoStarter;
  int last_class = 0;
  for (char32_t code_point : decomposed) {
    int combining_class = CombiningClass(code_point);

    // A code point is blocked from the starter when something between them
    // is a starter or has a class at least as high as its own.
    if (starter != kNoStarter) {
      bool adjacent = result.size() == starter + 1;
      bool blocked =
          !adjacent && (last_class == 0 || last_class >= combining_class);
      char32_t composite = blocked ? 0 : Compose(result[starter], code_point);
      if (composite != 0) {
        result[starter] = composite;
        continue;
      }
    }

    if (combining_class == 0) starter = result.size();
    last_class = combining_class;
    result.push_back(code_point);
  }
  return result;
}

}  // namespace

const char* UnicodeDataVersion() { return kUnicodeVersion; }

size_t DecodeUtf8Lossy(std::string_view bytes, std::u32string* out) {
  size_t replacements = 0;
  size_t i = 0;
  const size_t n = bytes.size();
  while (i < n) {
    uint8_t lead = static_cast<uint8_t>(bytes[i]);
    if (lead < 0x80) {
      out->push_back(lead);
      ++i;
      continue;
    }

    // The lead byte fixes the length and the range of the second byte.
    // The narrower ranges exclude overlong forms, surrogates and values
    // above U+10FFFF.
    int length = 0;
    uint8_t second_low = 0x80;
    uint8_t second_high = 0xBF;
    char32_t value = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
      value = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      value = lead & 0x0F;
      if (lead == 0xE0) second_low = 0xA0;
      if (lead == 0xED) second_high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      value = lead & 0x07;
      if (lead == 0xF0) second_low = 0x90;
      if (lead == 0xF4) second_high = 0x8F;
    }

    // Consume continuation bytes while they are valid. The first invalid
    // one is not consumed because it starts the next sequence.
    size_t consumed = 1;
    bool complete = length > 0;
    for (int k = 1; k < length; ++k) {
      if (i + k >= n) {
        complete = false;
        break;
      }
      uint8_t byte = static_cast<uint8_t>(bytes[i + k]);
      uint8_t low = k == 1 ? second_low : 0x80;
      uint8_t high = k == 1 ? second_high : 0xBF;
      if (byte < low || byte > high) {
        complete = false;
        break;
      }
      value = (value << 6) | (byte & 0x3F);
      ++consumed;
    }
    if (complete) {
      out->push_back(value);
    } else {
      out->push_back(kReplacementCharacter);
      ++replacements;
    }
    i += consumed;
  }
  return replacements;
}

void AppendUtf8(char32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

bool IsLetter(char32_t code_point) {
  if (code_point < 0x80) {
    return (code_point | 0x20) >= 'a' && (code_point | 0x20) <= 'z';
  }
  return CategoryOf(code_point) == kLetterCategory;
}

bool IsNumber(char32_t code_point) {
  if (code_point < 0x80) return code_point >= '0' && code_point <= '9';
  return CategoryOf(code_point) == kNumberCategory;
}

bool IsWhiteSpace(char32_t code_point) {
  // The White_Space property list of Unicode 14.0 (PropList.txt).
  if (code_point < 0x80) {
    return code_point == ' ' || (code_point >= 0x09 && code_point <= 0x0D);
  }
  return code_point == 0x85 || code_point == 0xA0 || code_point == 0x1680 ||
         (code_point >= 0x2000 && code_point <= 0x200A) ||
         code_point == 0x2028 || code_point == 0x2029 ||
         code_point == 0x202F || code_point == 0x205F ||
         code_point == 0x3000;
}

int CombiningClass(char32_t code_point) {
  if (code_point < kFirstNfcSensitive) return 0;
  const CombiningRange* range = FindRange(kCombiningRanges, code_point);
  if (range == nullptr || code_point > range->last) return 0;
  return range->combining_class;
}

std::u32string ToNfc(std::u32string_view text) {
  bool trivial = std::all_of(text.begin(), text.end(), [](char32_t c) {
    return c < kFirstNfcSensitive;
  });
  if (trivial) return std::u32string(text);

  std::u32string decomposed;
  decomposed.reserve(text.size() + text.size() / 2);
  for (char32_t code_point : text) AppendDecomposed(code_point, &decomposed);
  ReorderCanonically(&decomposed);
  return ComposeCanonically(decomposed);
}

void AppendLowercase(char32_t code_point, std::u32string* out) {
  if (code_point < 0x80) {
    bool upper = code_point >= 'A' && code_point <= 'Z';
    out->push_back(upper ? code_point + ('a' - 'A') : code_point);
    return;
  }
  for (const LowercaseExpansion& expansion : kLowercaseExpansions) {
    if (expansion.code_point != code_point) continue;
    for (char32_t lower : expansion.lower) {
      if (lower != 0) out->push_back(lower);
    }
    return;
  }
  const LowercaseRange* range = FindRange(kLowercaseRanges, code_point);
  if (range != nullptr && code_point <= range->last &&
      (code_point - range->first) % range->stride == 0) {
    out->push_back(static_cast<char32_t>(
        static_cast<int32_t>(code_point) + range->delta));
    return;
  }
  out->push_back(code_point);
}

}  // namespace dualmem
