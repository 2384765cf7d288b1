#include "tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "json.h"
#include "unicode_data.h"

namespace dualmem {
namespace {

constexpr int32_t kStartId = 49406;
constexpr int32_t kEndId = 49407;
constexpr int kClipContextLength = 77;

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::string FixturePath(const std::string& name) {
  return std::string(DUALMEM_FIXTURES_DIR) + "/" + name;
}

std::string Utf8(std::u32string_view text) {
  std::string out;
  for (char32_t c : text) AppendUtf8(c, &out);
  return out;
}

// Loads the generated CLIP tokenizer.json once for the whole suite.
class ClipTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string json = ReadFile(FixturePath("clip-tokenizer/tokenizer.json"));
    Status status = Tokenizer::FromJson(json, &tokenizer_);
    ASSERT_TRUE(status.ok()) << status.message;
  }
  static void TearDownTestSuite() { tokenizer_.reset(); }

  static std::vector<int32_t> EncodeOrDie(const std::string& text) {
    std::vector<int32_t> ids;
    Status status = tokenizer_->Encode(text, &ids);
    EXPECT_TRUE(status.ok()) << status.message;
    return ids;
  }

  static std::unique_ptr<Tokenizer> tokenizer_;
};

std::unique_ptr<Tokenizer> ClipTokenizerTest::tokenizer_;

TEST_F(ClipTokenizerTest, ReportsClipSpecialIds) {
  EXPECT_EQ(tokenizer_->vocab_size(), 49408u);
  EXPECT_EQ(tokenizer_->start_id(), kStartId);
  EXPECT_EQ(tokenizer_->end_id(), kEndId);
  EXPECT_EQ(tokenizer_->pad_id(), kEndId);
}

TEST_F(ClipTokenizerTest, MatchesHuggingFaceCases) {
  std::ifstream cases(FixturePath("tokenizer/clip_cases.jsonl"));
  ASSERT_TRUE(cases.is_open());
  std::string line;
  int count = 0;
  while (std::getline(cases, line)) {
    if (line.empty()) continue;
    JsonValue entry;
    Status parsed = ParseJson(line, &entry);
    ASSERT_TRUE(parsed.ok()) << parsed.message;
    const std::string& text = entry.Find("text")->as_string();
    std::vector<int32_t> expected;
    for (const JsonValue& id : entry.Find("ids")->items()) {
      expected.push_back(static_cast<int32_t>(id.as_number()));
    }

    SCOPED_TRACE("text: " + text);
    EXPECT_EQ(EncodeOrDie(text), expected);
    ++count;
  }
  EXPECT_EQ(count, 40);
}

TEST_F(ClipTokenizerTest, PadsShortTextWithEndToken) {
  std::vector<int32_t> ids;
  std::vector<int32_t> mask;
  Status status = tokenizer_->EncodeForModel("a photo of a bolt.",
                                             kClipContextLength, &ids, &mask);
  ASSERT_TRUE(status.ok()) << status.message;
  const std::vector<int32_t> content = {kStartId, 320, 1125, 539,
                                        320,      13131, 269, kEndId};
  ASSERT_EQ(ids.size(), 77u);
  ASSERT_EQ(mask.size(), 77u);
  for (size_t i = 0; i < ids.size(); ++i) {
    bool real = i < content.size();
    EXPECT_EQ(ids[i], real ? content[i] : kEndId) << "position " << i;
    EXPECT_EQ(mask[i], real ? 1 : 0) << "position " << i;
  }
}

TEST_F(ClipTokenizerTest, TruncatesLongTextKeepingEndToken) {
  std::string text = "a photo of";
  for (int i = 0; i < 100; ++i) text += " bolt" + std::to_string(i);
  std::vector<int32_t> full = EncodeOrDie(text);
  ASSERT_GT(full.size(), 77u);

  std::vector<int32_t> ids;
  std::vector<int32_t> mask;
  ASSERT_TRUE(
      tokenizer_->EncodeForModel(text, kClipContextLength, &ids, &mask).ok());
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids.front(), kStartId);
  EXPECT_EQ(ids.back(), kEndId);
  for (size_t i = 1; i < 76; ++i) {
    EXPECT_EQ(ids[i], full[i]) << "position " << i;
  }
  EXPECT_EQ(mask, std::vector<int32_t>(77, 1));
}

TEST_F(ClipTokenizerTest, FillsContextExactlyWithoutPadding) {
  std::string text;
  for (int i = 0; i < 75; ++i) text += "word ";
  std::vector<int32_t> ids;
  std::vector<int32_t> mask;
  ASSERT_TRUE(
      tokenizer_->EncodeForModel(text, kClipContextLength, &ids, &mask).ok());
  EXPECT_EQ(ids, EncodeOrDie(text));
  EXPECT_EQ(mask, std::vector<int32_t>(77, 1));
}

TEST_F(ClipTokenizerTest, KeepsOnlyStartAndEndForContextTwo) {
  std::vector<int32_t> ids;
  std::vector<int32_t> mask;
  ASSERT_TRUE(tokenizer_->EncodeForModel("a photo", 2, &ids, &mask).ok());
  EXPECT_EQ(ids, (std::vector<int32_t>{kStartId, kEndId}));
  EXPECT_EQ(mask, (std::vector<int32_t>{1, 1}));
}

TEST_F(ClipTokenizerTest, RejectsContextShorterThanTwo) {
  std::vector<int32_t> ids = {7};
  std::vector<int32_t> mask = {7};
  Status status = tokenizer_->EncodeForModel("a photo", 1, &ids, &mask);
  EXPECT_EQ(status.code, StatusCode::kInvalidArgument);
  EXPECT_NE(status.message.find("context_length is 1"), std::string::npos)
      << status.message;
  EXPECT_EQ(ids, std::vector<int32_t>{7});
  EXPECT_EQ(mask, std::vector<int32_t>{7});
}

TEST_F(ClipTokenizerTest, RejectsHugeContextLength) {
  std::vector<int32_t> ids;
  std::vector<int32_t> mask;
  Status status = tokenizer_->EncodeForModel("a photo", 1 << 20, &ids, &mask);
  EXPECT_EQ(status.code, StatusCode::kLimitExceeded) << status.message;
  EXPECT_TRUE(ids.empty());
}

TEST_F(ClipTokenizerTest, ReplacesInvalidUtf8WithReplacementCharacter) {
  const std::string replacement = Utf8(U"\uFFFD");
  // A truncated sequence, a stray continuation byte, a byte that never
  // starts UTF-8, an overlong '/', a surrogate and a value above U+10FFFF.
  struct Case {
    std::string invalid;
    std::string equivalent;
  };
  const Case cases[] = {
      {"caf\xC3", "caf" + replacement},
      {"a\x80" "b", "a" + replacement + "b"},
      {"\xFF", replacement},
      {"\xC0\xAF", replacement + replacement},
      {"\xED\xA0\x80", replacement + replacement + replacement},
      {"\xF4\x90\x80\x80", replacement + replacement + replacement +
                               replacement},
      {"\xE2\x82 x", replacement + " x"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("equivalent: " + c.equivalent);
    EXPECT_EQ(EncodeOrDie(c.invalid), EncodeOrDie(c.equivalent));
  }
}

TEST_F(ClipTokenizerTest, ComposesToNfcBeforeBpe) {
  EXPECT_EQ(EncodeOrDie("cafe\xCC\x81"), EncodeOrDie("caf\xC3\xA9"));
  // Hangul jamo compose by arithmetic into 생활.
  EXPECT_EQ(EncodeOrDie(Utf8(U"\u1109\u1162\u11BC\u1112\u116A\u11AF")),
            EncodeOrDie(Utf8(U"\uC0DD\uD65C")));
  // Combining marks in either order compose to U+1EAD.
  EXPECT_EQ(EncodeOrDie(Utf8(U"a\u0302\u0323")), EncodeOrDie(Utf8(U"\u1EAD")));
  EXPECT_EQ(EncodeOrDie(Utf8(U"a\u0323\u0302")), EncodeOrDie(Utf8(U"\u1EAD")));
}

TEST_F(ClipTokenizerTest, LowercasesOneCodePointAtATime) {
  // Hugging Face lowercases per code point, so a final sigma stays σ.
  EXPECT_EQ(EncodeOrDie(Utf8(U"\u03A3\u0391\u03A3")),
            EncodeOrDie(Utf8(U"\u03C3\u03B1\u03C3")));
  EXPECT_EQ(EncodeOrDie(Utf8(U"\u0130")), EncodeOrDie(Utf8(U"i\u0307")));
}

TEST_F(ClipTokenizerTest, MatchesSpecialTokensAfterLowercasing) {
  // The special tokens are "normalized" added tokens, so they are found in
  // the lowercased text.
  EXPECT_EQ(EncodeOrDie("<|ENDOFTEXT|>"),
            (std::vector<int32_t>{kStartId, kEndId, kEndId}));
}

TEST_F(ClipTokenizerTest, EncodesVeryLongWordQuickly) {
  // 50000 letters in one word take milliseconds with the heap-based merge
  // loop, where a quadratic loop would take seconds.
  std::string text(50000, 'z');
  std::vector<int32_t> ids = EncodeOrDie(text);
  EXPECT_GT(ids.size(), 2u);
  EXPECT_EQ(ids.front(), kStartId);
  EXPECT_EQ(ids.back(), kEndId);
}

TEST(UnicodeDataTest, DecodeCountsReplacements) {
  std::u32string out;
  EXPECT_EQ(DecodeUtf8Lossy("ok\xC3\xA9\xFF\xE2\x82", &out), 2u);
  EXPECT_EQ(out, (std::u32string{U'o', U'k', 0xE9, 0xFFFD, 0xFFFD}));
}

TEST(UnicodeDataTest, ClassifiesCategories) {
  EXPECT_TRUE(IsLetter(U'a'));
  EXPECT_TRUE(IsLetter(0x6EB6));   // CJK ideograph, Lo
  EXPECT_TRUE(IsLetter(0xFB01));   // ligature fi, Ll
  EXPECT_FALSE(IsLetter(0x0301));  // combining acute, Mn
  EXPECT_TRUE(IsNumber(U'7'));
  EXPECT_TRUE(IsNumber(0x00B2));   // superscript two, No
  EXPECT_TRUE(IsNumber(0x2167));   // Roman numeral eight, Nl
  EXPECT_FALSE(IsNumber(U'x'));
  EXPECT_TRUE(IsWhiteSpace(0x3000));
  EXPECT_TRUE(IsWhiteSpace(0x0085));
  EXPECT_FALSE(IsWhiteSpace(0x200B));  // zero width space is not White_Space
  EXPECT_FALSE(IsWhiteSpace(0x001C));
  EXPECT_EQ(std::string(UnicodeDataVersion()), "14.0.0");
}

TEST(UnicodeDataTest, NfcKeepsExclusionsDecomposed) {
  // U+0958 is a composition exclusion and U+212B (Angstrom) a singleton.
  EXPECT_EQ(ToNfc(U"\u0958"), (std::u32string{0x0915, 0x093C}));
  EXPECT_EQ(ToNfc(U"\u212B"), std::u32string{0x00C5});
  EXPECT_EQ(ToNfc(U"\u0344"), (std::u32string{0x0308, 0x0301}));
}

// A small BPE tokenizer.json in CLIP's layout; tests replace parts of it.
// The vocabulary lacks most byte symbols, so they encode as <unk>.
constexpr char kTinyTokenizerJson[] = R"({
  "added_tokens": [
    {"id": 5, "content": "<|startoftext|>", "single_word": false,
     "lstrip": false, "rstrip": false, "normalized": true, "special": true},
    {"id": 6, "content": "<|endoftext|>", "single_word": false,
     "lstrip": false, "rstrip": false, "normalized": true, "special": true}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "NFC"},
    {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
    {"type": "Lowercase"}]},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex":
      "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
     "behavior": "Removed", "invert": true},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
     "use_regex": false}]},
  "post_processor": {"type": "RobertaProcessing",
    "sep": ["<|endoftext|>", 6], "cls": ["<|startoftext|>", 5],
    "trim_offsets": false, "add_prefix_space": false},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>",
    "continuing_subword_prefix": "", "end_of_word_suffix": "</w>",
    "fuse_unk": false,
    "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab</w>": 3, "b</w>": 4,
              "<|startoftext|>": 5, "<|endoftext|>": 6},
    "merges": ["a b</w>"]}
})";

// Returns the tiny JSON with the first `from` replaced by `to`.
std::string TinyJsonWith(const std::string& from, const std::string& to) {
  std::string json = kTinyTokenizerJson;
  size_t at = json.find(from);
  EXPECT_NE(at, std::string::npos) << "template lacks " << from;
  if (at != std::string::npos) json.replace(at, from.size(), to);
  return json;
}

TEST(TinyTokenizerTest, EncodesWithMergesAndUnknownBytes) {
  std::unique_ptr<Tokenizer> tokenizer;
  Status status = Tokenizer::FromJson(kTinyTokenizerJson, &tokenizer);
  ASSERT_TRUE(status.ok()) << status.message;
  std::vector<int32_t> ids;
  ASSERT_TRUE(tokenizer->Encode("AB ba", &ids).ok());
  // "ab" merges to ab</w>, but in "ba" the final a</w> is not in the vocab.
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 3, 2, 0, 6}));
}

TEST(TinyTokenizerTest, AcceptsMergesAsPairs) {
  std::unique_ptr<Tokenizer> tokenizer;
  Status status = Tokenizer::FromJson(
      TinyJsonWith(R"("merges": ["a b</w>"])", R"("merges": [["a", "b</w>"]])"),
      &tokenizer);
  ASSERT_TRUE(status.ok()) << status.message;
  std::vector<int32_t> ids;
  ASSERT_TRUE(tokenizer->Encode("ab", &ids).ok());
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 3, 6}));
}

struct MalformedCase {
  const char* name;
  std::string json;
  StatusCode code;
  const char* message;  // expected substring
};

TEST(TinyTokenizerTest, RejectsMalformedFilesNamingTheField) {
  const MalformedCase cases[] = {
      {"not JSON", "{\"model\": ", StatusCode::kParseError,
       "tokenizer.json: "},
      {"top level array", "[1, 2]", StatusCode::kInvalidArgument,
       "tokenizer.json: top level has type array, expected object"},
      {"missing vocab",
       TinyJsonWith(R"("vocab": {)", R"("vocabulary": {)"),
       StatusCode::kInvalidArgument, "tokenizer.json: model.vocab is missing"},
      {"vocab of wrong type",
       TinyJsonWith(R"("vocab": {"<unk>": 0,)", R"("vocab": [0], "x": {)"),
       StatusCode::kInvalidArgument,
       "tokenizer.json: model.vocab has type array, expected object"},
      {"negative id", TinyJsonWith(R"("a": 1,)", R"("a": -1,)"),
       StatusCode::kInvalidArgument,
       "model.vocab[\"a\"] is -1, expected an integer id"},
      {"repeated id", TinyJsonWith(R"("a": 1,)", R"("a": 2,)"),
       StatusCode::kInvalidArgument, "already used by \"a\""},
      {"merge with three parts",
       TinyJsonWith(R"(["a b</w>"])", R"(["a b</w>", "a b c"])"),
       StatusCode::kInvalidArgument,
       "tokenizer.json: model.merges[1] has 3 parts, expected 2"},
      {"merge pair with one part",
       TinyJsonWith(R"(["a b</w>"])", R"([["a"]])"),
       StatusCode::kInvalidArgument,
       "tokenizer.json: model.merges[0] has 1 parts, expected 2"},
      {"merge of wrong type", TinyJsonWith(R"(["a b</w>"])", R"([7])"),
       StatusCode::kInvalidArgument,
       "tokenizer.json: model.merges[0] has type number"},
      {"merge of unknown token", TinyJsonWith(R"(["a b</w>"])", R"(["a q"])"),
       StatusCode::kInvalidArgument,
       "tokenizer.json: model.merges[0] uses \"q\", which is not in "
       "model.vocab"},
      {"missing merges", TinyJsonWith(R"("merges")", R"("merged")"),
       StatusCode::kInvalidArgument, "model.merges is missing"},
      {"unknown model type",
       TinyJsonWith(R"("type": "BPE")", R"("type": "WordPiece")"),
       StatusCode::kUnsupported,
       "tokenizer.json: model.type is \"WordPiece\", expected \"BPE\""},
      {"missing model", TinyJsonWith(R"("model":)", R"("modal":)"),
       StatusCode::kInvalidArgument, "tokenizer.json: model is missing"},
      {"unknown unk token",
       TinyJsonWith(R"("unk_token": "<unk>")", R"("unk_token": "<?>")"),
       StatusCode::kInvalidArgument, "model.unk_token is \"<?>\""},
      {"no unk token and missing bytes",
       TinyJsonWith(R"("unk_token": "<unk>")", R"("unk_token": null)"),
       StatusCode::kInvalidArgument,
       "model.vocab lacks the byte-level symbol"},
      {"dropout", TinyJsonWith(R"("dropout": null)", R"("dropout": 0.1)"),
       StatusCode::kUnsupported, "model.dropout is 0.1, expected null or 0"},
      {"subword prefix",
       TinyJsonWith(R"("continuing_subword_prefix": "")",
                    R"("continuing_subword_prefix": "##")"),
       StatusCode::kUnsupported, "model.continuing_subword_prefix"},
      {"other normalizer",
       TinyJsonWith(R"({"type": "NFC"})", R"({"type": "NFKC"})"),
       StatusCode::kUnsupported,
       "tokenizer.json: normalizer.normalizers[0].type is \"NFKC\""},
      {"normalizer of wrong type",
       TinyJsonWith(R"("normalizer": {"type": "Sequence",)",
                    R"("normalizer": 3, "n": {"type": "Sequence",)"),
       StatusCode::kInvalidArgument,
       "tokenizer.json: normalizer has type number, expected object"},
      {"other split pattern", TinyJsonWith(R"([\\p{N}]|)", R"([\\p{N}]+|)"),
       StatusCode::kUnsupported,
       "pre_tokenizer.pretokenizers[0].pattern.Regex"},
      {"prefix space",
       TinyJsonWith(R"("add_prefix_space": false, "trim_offsets": true)",
                    R"("add_prefix_space": true, "trim_offsets": true)"),
       StatusCode::kUnsupported,
       "pre_tokenizer.pretokenizers[1].add_prefix_space is true"},
      {"missing post-processor",
       TinyJsonWith(R"("post_processor")", R"("post_processing")"),
       StatusCode::kInvalidArgument, "post_processor is missing"},
      {"template post-processor",
       TinyJsonWith(R"("RobertaProcessing")", R"("TemplateProcessing")"),
       StatusCode::kUnsupported, "post_processor.type"},
      {"added token without id", TinyJsonWith(R"({"id": 5, )", "{"),
       StatusCode::kInvalidArgument, "added_tokens[0].id is missing"},
      {"lstrip added token",
       TinyJsonWith(R"("lstrip": false)", R"("lstrip": true)"),
       StatusCode::kUnsupported, "added_tokens[0].lstrip is true"},
  };
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<Tokenizer> tokenizer;
    Status status = Tokenizer::FromJson(c.json, &tokenizer);
    EXPECT_EQ(status.code, c.code)
        << "expected " << StatusCodeName(c.code) << ", got "
        << StatusCodeName(status.code) << ": " << status.message;
    EXPECT_NE(status.message.find(c.message), std::string::npos)
        << "expected message containing: " << c.message
        << "\nactual: " << status.message;
    EXPECT_EQ(tokenizer, nullptr);
  }
}

}  // namespace
}  // namespace dualmem
