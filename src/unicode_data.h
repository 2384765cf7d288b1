// Unicode properties and transforms that the CLIP tokenizer needs: UTF-8
// decoding, general categories, white space, NFC and lowercase. The tables
// come from Python's unicodedata (Unicode 14.0), generated into
// unicode_tables.inc by src/tools/gen_unicode_tables.py.
#ifndef DUALMEM_UNICODE_DATA_H_
#define DUALMEM_UNICODE_DATA_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace dualmem {

// U+FFFD REPLACEMENT CHARACTER, written in place of invalid UTF-8.
constexpr char32_t kReplacementCharacter = 0xFFFD;

// Returns the Unicode version of the tables, e.g. "14.0.0".
const char* UnicodeDataVersion();

// Decodes UTF-8 into code points, appending to `out`. Each maximal invalid
// subsequence (stray continuation byte, truncated sequence, overlong form,
// surrogate, value above U+10FFFF) becomes one U+FFFD, as Rust's
// String::from_utf8_lossy and the WHATWG decoder do. Returns how many
// replacements were made.
size_t DecodeUtf8Lossy(std::string_view bytes, std::u32string* out);

// Appends the UTF-8 form of a valid code point (not a surrogate).
void AppendUtf8(char32_t code_point, std::string* out);

// General category L (Lu, Ll, Lt, Lm, Lo), as `\p{L}` matches.
bool IsLetter(char32_t code_point);
// General category N (Nd, Nl, No), as `\p{N}` matches.
bool IsNumber(char32_t code_point);
// The White_Space property, which `\s` matches in Oniguruma and Rust regex.
bool IsWhiteSpace(char32_t code_point);

// Canonical combining class; 0 for starters.
int CombiningClass(char32_t code_point);

// Returns the Normalization Form C of `text` (canonical decomposition,
// canonical ordering, canonical composition).
std::u32string ToNfc(std::u32string_view text);

// Appends the full lowercase mapping of one code point, which is longer than
// one code point only for U+0130. No context rules apply, so a final capital
// sigma maps to U+03C3 like every other capital sigma.
void AppendLowercase(char32_t code_point, std::u32string* out);

}  // namespace dualmem

#endif  // DUALMEM_UNICODE_DATA_H_
