#include "tokenizer.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <mutex>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>

#include "json.h"
#include "unicode_data.h"

namespace dualmem {
namespace {

// The normalizer and pre-tokenizer settings of CLIP's tokenizer.json that
// this file implements, in the order the JSON lists them.
constexpr char kWhiteSpacePattern[] = R"(\s+)";
constexpr char kClipSplitPattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+)";
// The contractions that the split pattern tries before anything else.
constexpr std::u32string_view kContractions[] = {U"'s", U"'t",  U"'re", U"'ve",
                                                 U"'m", U"'ll", U"'d"};

// Bounds the per-word cache. Class prompts share most words, so it rarely
// fills, and when it does it is cleared rather than grown.
constexpr size_t kWordCacheCapacity = 10000;

// Rejects a context_length that would allocate absurd outputs. CLIP's text
// tower uses 77, and long-context CLIP variants stay far below this.
constexpr int kMaxContextLength = 1 << 16;

constexpr int32_t kNoId = -1;
constexpr double kMaxId = 2147483647.0;

struct AddedToken {
  std::u32string content;
  int32_t id;
  bool normalized;  // matched after normalization rather than before
};

struct MergeEntry {
  int32_t rank;       // index in model.merges; lower merges first
  int32_t merged_id;  // vocabulary id of the joined symbol
};

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
         static_cast<uint32_t>(right);
}

// GPT-2's byte-level alphabet: the printable Latin-1 bytes stand for
// themselves and the other bytes map to U+0100 onwards in byte order.
char32_t ByteSymbol(int byte) {
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
           (b >= 0xAE && b <= 0xFF);
  };
  if (printable(byte)) return static_cast<char32_t>(byte);
  char32_t offset = 0;
  for (int b = 0; b < byte; ++b) {
    if (!printable(b)) ++offset;
  }
  return 0x100 + offset;
}

// Formats a JSON number for an error message, e.g. "-1" or "0.1".
std::string FormatNumber(double number) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.15g", number);
  return text;
}

std::string ToUtf8(std::u32string_view text) {
  std::string out;
  for (char32_t code_point : text) AppendUtf8(code_point, &out);
  return out;
}

// Quotes a string for an error message, escaping quotes and control bytes.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

// --- field access with errors that name the field -------------------------

Status FieldError(StatusCode code, const std::string& path,
                  const std::string& problem) {
  return MakeStatus(code, "tokenizer.json: " + path + " " + problem);
}

std::string MemberPath(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string IndexPath(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

Status CheckType(const JsonValue& value, const std::string& path,
                 JsonValue::Type type) {
  if (value.type() == type) return Status::Ok();
  return FieldError(StatusCode::kInvalidArgument, path,
                    std::string("has type ") +
                        JsonValue::TypeName(value.type()) + ", expected " +
                        JsonValue::TypeName(type));
}

// Sets `*out` to the member `key` of `object`, which must exist and have
// `type`.
Status RequireMember(const JsonValue& object, const std::string& path,
                     std::string_view key, JsonValue::Type type,
                     const JsonValue** out) {
  const JsonValue* member = object.Find(key);
  std::string member_path = MemberPath(path, key);
  if (member == nullptr) {
    return FieldError(StatusCode::kInvalidArgument, member_path, "is missing");
  }
  DUALMEM_RETURN_IF_ERROR(CheckType(*member, member_path, type));
  *out = member;
  return Status::Ok();
}

// Like RequireMember, but a missing or null member sets `*out` to nullptr.
Status OptionalMember(const JsonValue& object, const std::string& path,
                      std::string_view key, JsonValue::Type type,
                      const JsonValue** out) {
  const JsonValue* member = object.Find(key);
  *out = nullptr;
  if (member == nullptr || member->is_null()) return Status::Ok();
  DUALMEM_RETURN_IF_ERROR(CheckType(*member, MemberPath(path, key), type));
  *out = member;
  return Status::Ok();
}

Status ReadId(const JsonValue& value, const std::string& path, int32_t* id) {
  DUALMEM_RETURN_IF_ERROR(CheckType(value, path, JsonValue::Type::kNumber));
  double number = value.as_number();
  if (!(number >= 0.0 && number <= kMaxId) || std::floor(number) != number) {
    return FieldError(StatusCode::kInvalidArgument, path,
                      "is " + FormatNumber(number) +
                          ", expected an integer id from 0 to 2147483647");
  }
  *id = static_cast<int32_t>(number);
  return Status::Ok();
}

// Checks that `object[key]` is the string `expected`. Any other value is a
// setting this tokenizer does not implement.
Status ExpectString(const JsonValue& object, const std::string& path,
                    std::string_view key, std::string_view expected) {
  const JsonValue* member = nullptr;
  DUALMEM_RETURN_IF_ERROR(
      RequireMember(object, path, key, JsonValue::Type::kString, &member));
  if (member->as_string() == expected) return Status::Ok();
  return FieldError(StatusCode::kUnsupported, MemberPath(path, key),
                    "is " + Quote(member->as_string()) + ", expected " +
                        Quote(expected) + " (only CLIP's tokenizer is "
                        "implemented)");
}

// Checks an optional boolean setting, where a missing one counts as
// `fallback`.
Status ExpectBool(const JsonValue& object, const std::string& path,
                  std::string_view key, bool expected, bool fallback) {
  const JsonValue* member = nullptr;
  DUALMEM_RETURN_IF_ERROR(
      OptionalMember(object, path, key, JsonValue::Type::kBool, &member));
  bool value = member == nullptr ? fallback : member->as_bool();
  if (value == expected) return Status::Ok();
  return FieldError(StatusCode::kUnsupported, MemberPath(path, key),
                    std::string("is ") + (value ? "true" : "false") +
                        ", expected " + (expected ? "true" : "false") +
                        " (not implemented)");
}

// Returns the item list of `object[key]`, which must be an array of
// `count` objects.
Status RequireObjectArray(const JsonValue& object, const std::string& path,
                          std::string_view key, size_t count,
                          const std::vector<JsonValue>** items) {
  const JsonValue* array = nullptr;
  DUALMEM_RETURN_IF_ERROR(
      RequireMember(object, path, key, JsonValue::Type::kArray, &array));
  std::string array_path = MemberPath(path, key);
  if (array->items().size() != count) {
    return FieldError(StatusCode::kUnsupported, array_path,
                      "has " + std::to_string(array->items().size()) +
                          " entries, expected " + std::to_string(count) +
                          " (only CLIP's tokenizer is implemented)");
  }
  for (size_t i = 0; i < count; ++i) {
    DUALMEM_RETURN_IF_ERROR(CheckType(array->items()[i],
                                      IndexPath(array_path, i),
                                      JsonValue::Type::kObject));
  }
  *items = &array->items();
  return Status::Ok();
}

// --- the parts of tokenizer.json ------------------------------------------

// Accepts only CLIP's normalizer: NFC, white space runs to " ", lowercase.
Status CheckNormalizer(const JsonValue& root) {
  const JsonValue* normalizer = nullptr;
  DUALMEM_RETURN_IF_ERROR(RequireMember(root, "", "normalizer",
                                        JsonValue::Type::kObject, &normalizer));
  DUALMEM_RETURN_IF_ERROR(
      ExpectString(*normalizer, "normalizer", "type", "Sequence"));
  const std::vector<JsonValue>* steps = nullptr;
  DUALMEM_RETURN_IF_ERROR(RequireObjectArray(*normalizer, "normalizer",
                                             "normalizers", 3, &steps));

  DUALMEM_RETURN_IF_ERROR(
      ExpectString((*steps)[0], "normalizer.normalizers[0]", "type", "NFC"));

  const std::string replace_path = "normalizer.normalizers[1]";
  const JsonValue& replace = (*steps)[1];
  DUALMEM_RETURN_IF_ERROR(ExpectString(replace, replace_path, "type",
                                       "Replace"));
  const JsonValue* pattern = nullptr;
  DUALMEM_RETURN_IF_ERROR(RequireMember(replace, replace_path, "pattern",
                                        JsonValue::Type::kObject, &pattern));
  DUALMEM_RETURN_IF_ERROR(ExpectString(*pattern, replace_path + ".pattern",
                                       "Regex", kWhiteSpacePattern));
  DUALMEM_RETURN_IF_ERROR(ExpectString(replace, replace_path, "content", " "));

  return ExpectString((*steps)[2], "normalizer.normalizers[2]", "type",
                      "Lowercase");
}

// Accepts only CLIP's pre-tokenizer: the split pattern, then byte-level
// mapping without a prefix space or a second split.
Status CheckPreTokenizer(const JsonValue& root) {
  const JsonValue* pre_tokenizer = nullptr;
  DUALMEM_RETURN_IF_ERROR(RequireMember(
      root, "", "pre_tokenizer", JsonValue::Type::kObject, &pre_tokenizer));
  DUALMEM_RETURN_IF_ERROR(
      ExpectString(*pre_tokenizer, "pre_tokenizer", "type", "Sequence"));
  const std::vector<JsonValue>* steps = nullptr;
  DUALMEM_RETURN_IF_ERROR(RequireObjectArray(*pre_tokenizer, "pre_tokenizer",
                                             "pretokenizers", 2, &steps));

  const std::string split_path = "pre_tokenizer.pretokenizers[0]";
  const JsonValue& split = (*steps)[0];
  DUALMEM_RETURN_IF_ERROR(ExpectString(split, split_path, "type", "Split"));
  const JsonValue* pattern = nullptr;
  DUALMEM_RETURN_IF_ERROR(RequireMember(split, split_path, "pattern",
                                        JsonValue::Type::kObject, &pattern));
  DUALMEM_RETURN_IF_ERROR(ExpectString(*pattern, split_path + ".pattern",
                                       "Regex", kClipSplitPattern));
  DUALMEM_RETURN_IF_ERROR(
      ExpectString(split, split_path, "behavior", "Removed"));
  DUALMEM_RETURN_IF_ERROR(ExpectBool(split, split_path, "invert", true, false));

  const std::string byte_level_path = "pre_tokenizer.pretokenizers[1]";
  const JsonValue& byte_level = (*steps)[1];
  DUALMEM_RETURN_IF_ERROR(
      ExpectString(byte_level, byte_level_path, "type", "ByteLevel"));
  DUALMEM_RETURN_IF_ERROR(ExpectBool(byte_level, byte_level_path,
                                     "add_prefix_space", false, true));
  return ExpectBool(byte_level, byte_level_path, "use_regex", false, true);
}

Status ParseAddedTokens(const JsonValue& root,
                        std::vector<AddedToken>* tokens) {
  const JsonValue* list = nullptr;
  DUALMEM_RETURN_IF_ERROR(OptionalMember(root, "", "added_tokens",
                                         JsonValue::Type::kArray, &list));
  if (list == nullptr) return Status::Ok();
  for (size_t i = 0; i < list->items().size(); ++i) {
    const JsonValue& entry = list->items()[i];
    std::string path = IndexPath("added_tokens", i);
    DUALMEM_RETURN_IF_ERROR(CheckType(entry, path, JsonValue::Type::kObject));

    AddedToken token;
    const JsonValue* id = nullptr;
    DUALMEM_RETURN_IF_ERROR(
        RequireMember(entry, path, "id", JsonValue::Type::kNumber, &id));
    DUALMEM_RETURN_IF_ERROR(ReadId(*id, path + ".id", &token.id));
    const JsonValue* content = nullptr;
    DUALMEM_RETURN_IF_ERROR(RequireMember(entry, path, "content",
                                          JsonValue::Type::kString, &content));
    if (content->as_string().empty()) {
      return FieldError(StatusCode::kInvalidArgument, path + ".content",
                        "is empty, expected the token's text");
    }
    DecodeUtf8Lossy(content->as_string(), &token.content);

    // A token with "normalized": true is matched in the normalized text.
    // When the flag is missing, special tokens are matched before
    // normalization and other tokens after it.
    const JsonValue* special = nullptr;
    DUALMEM_RETURN_IF_ERROR(OptionalMember(entry, path, "special",
                                           JsonValue::Type::kBool, &special));
    const JsonValue* normalized = nullptr;
    DUALMEM_RETURN_IF_ERROR(OptionalMember(
        entry, path, "normalized", JsonValue::Type::kBool, &normalized));
    bool is_special = special != nullptr && special->as_bool();
    token.normalized =
        normalized != nullptr ? normalized->as_bool() : !is_special;

    for (const char* flag : {"single_word", "lstrip", "rstrip"}) {
      DUALMEM_RETURN_IF_ERROR(ExpectBool(entry, path, flag, false, false));
    }
    tokens->push_back(std::move(token));
  }
  return Status::Ok();
}

// Reads the start (cls) and end (sep) tokens from the post-processor.
Status ParsePostProcessor(const JsonValue& root, int32_t* start_id,
                          int32_t* end_id) {
  const JsonValue* processor = nullptr;
  DUALMEM_RETURN_IF_ERROR(RequireMember(root, "", "post_processor",
                                        JsonValue::Type::kObject, &processor));
  const JsonValue* type = nullptr;
  DUALMEM_RETURN_IF_ERROR(RequireMember(*processor, "post_processor", "type",
                                        JsonValue::Type::kString, &type));
  if (type->as_string() != "RobertaProcessing" &&
      type->as_string() != "BertProcessing") {
    return FieldError(StatusCode::kUnsupported, "post_processor.type",
                      "is " + Quote(type->as_string()) +
                          ", expected \"RobertaProcessing\" or "
                          "\"BertProcessing\"");
  }

  const std::pair<const char*, int32_t*> fields[] = {{"cls", start_id},
                                                     {"sep", end_id}};
  for (const auto& [key, id] : fields) {
    const JsonValue* pair = nullptr;
    DUALMEM_RETURN_IF_ERROR(RequireMember(*processor, "post_processor", key,
                                          JsonValue::Type::kArray, &pair));
    std::string path = MemberPath("post_processor", key);
    if (pair->items().size() != 2 || !pair->items()[0].is_string()) {
      return FieldError(StatusCode::kInvalidArgument, path,
                        "is not a [token, id] pair");
    }
    DUALMEM_RETURN_IF_ERROR(ReadId(pair->items()[1], path + "[1]", id));
  }
  return Status::Ok();
}

// Splits a merge entry, "a b" or ["a", "b"], into its two symbols.
Status ReadMergePair(const JsonValue& entry, const std::string& path,
                     std::string* left, std::string* right) {
  if (entry.is_array()) {
    const std::vector<JsonValue>& parts = entry.items();
    if (parts.size() != 2) {
      return FieldError(StatusCode::kInvalidArgument, path,
                        "has " + std::to_string(parts.size()) +
                            " parts, expected 2");
    }
    for (size_t k = 0; k < 2; ++k) {
      DUALMEM_RETURN_IF_ERROR(CheckType(parts[k], IndexPath(path, k),
                                        JsonValue::Type::kString));
    }
    *left = parts[0].as_string();
    *right = parts[1].as_string();
    return Status::Ok();
  }
  if (!entry.is_string()) {
    return FieldError(StatusCode::kInvalidArgument, path,
                      std::string("has type ") +
                          JsonValue::TypeName(entry.type()) +
                          ", expected string \"a b\" or array [a, b]");
  }
  const std::string& text = entry.as_string();
  size_t space = text.find(' ');
  size_t parts = 1;
  for (char c : text) parts += c == ' ';
  if (parts != 2 || space == 0 || space + 1 == text.size()) {
    return FieldError(StatusCode::kInvalidArgument, path,
                      "has " + std::to_string(parts) +
                          " parts, expected 2: " + Quote(text));
  }
  *left = text.substr(0, space);
  *right = text.substr(space + 1);
  return Status::Ok();
}

}  // namespace

// Everything read from tokenizer.json, plus the per-word cache.
struct Tokenizer::Model {
  std::unordered_map<std::string, int32_t> vocab;
  std::unordered_map<uint64_t, MergeEntry> merges;
  std::vector<AddedToken> added_tokens;
  // Vocabulary ids of each byte's symbol, alone and with the end-of-word
  // suffix; kNoId when the vocabulary lacks it, which encodes as unk.
  int32_t byte_ids[256] = {};
  int32_t byte_suffix_ids[256] = {};
  int32_t unk_id = kNoId;
  bool fuse_unk = false;
  int32_t start_id = kNoId;
  int32_t end_id = kNoId;

  // Encode is const but fills the cache, so the cache has its own lock.
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  Status ParseBpe(const JsonValue& root);
  Status ParseMerges(const JsonValue& model);
  Status ResolveByteSymbols(const std::string& suffix);

  void EncodeText(const std::u32string& text, std::vector<int32_t>* ids) const;
  void EncodeNormalized(std::u32string_view text,
                        std::vector<int32_t>* ids) const;
  void EncodeWord(std::u32string_view word, std::vector<int32_t>* ids) const;
  std::vector<int32_t> ApplyMerges(const std::string& word) const;
};

Status Tokenizer::Model::ParseBpe(const JsonValue& root) {
  const JsonValue* model = nullptr;
  DUALMEM_RETURN_IF_ERROR(
      RequireMember(root, "", "model", JsonValue::Type::kObject, &model));
  const JsonValue* type = nullptr;
  DUALMEM_RETURN_IF_ERROR(
      OptionalMember(*model, "model", "type", JsonValue::Type::kString, &type));
  if (type != nullptr && type->as_string() != "BPE") {
    return FieldError(StatusCode::kUnsupported, "model.type",
                      "is " + Quote(type->as_string()) +
                          ", expected \"BPE\"");
  }

  // Vocabulary: token text to id, ids distinct.
  const JsonValue* vocab_json = nullptr;
  DUALMEM_RETURN_IF_ERROR(RequireMember(*model, "model", "vocab",
                                        JsonValue::Type::kObject, &vocab_json));
  std::unordered_map<int32_t, const std::string*> tokens_by_id;
  for (const auto& [token, value] : vocab_json->members()) {
    std::string path = "model.vocab[" + Quote(token) + "]";
    int32_t id = kNoId;
    DUALMEM_RETURN_IF_ERROR(ReadId(value, path, &id));
    auto [it, inserted] = tokens_by_id.emplace(id, &token);
    if (!inserted) {
      return FieldError(StatusCode::kInvalidArgument, path,
                        "has id " + std::to_string(id) + ", already used by " +
                            Quote(*it->second));
    }
    vocab[token] = id;
  }

  DUALMEM_RETURN_IF_ERROR(ParseMerges(*model));

  // Settings of the BPE model that change the output and are not
  // implemented here are rejected rather than ignored.
  const JsonValue* prefix = nullptr;
  DUALMEM_RETURN_IF_ERROR(OptionalMember(*model, "model",
                                         "continuing_subword_prefix",
                                         JsonValue::Type::kString, &prefix));
  if (prefix != nullptr && !prefix->as_string().empty()) {
    return FieldError(StatusCode::kUnsupported,
                      "model.continuing_subword_prefix",
                      "is " + Quote(prefix->as_string()) +
                          ", expected \"\" or null (not implemented)");
  }
  const JsonValue* dropout = nullptr;
  DUALMEM_RETURN_IF_ERROR(OptionalMember(*model, "model", "dropout",
                                         JsonValue::Type::kNumber, &dropout));
  if (dropout != nullptr && dropout->as_number() != 0.0) {
    return FieldError(StatusCode::kUnsupported, "model.dropout",
                      "is " + FormatNumber(dropout->as_number()) +
                          ", expected null or 0 (encoding is deterministic)");
  }
  DUALMEM_RETURN_IF_ERROR(
      ExpectBool(*model, "model", "byte_fallback", false, false));
  DUALMEM_RETURN_IF_ERROR(
      ExpectBool(*model, "model", "ignore_merges", false, false));
  const JsonValue* fuse = nullptr;
  DUALMEM_RETURN_IF_ERROR(OptionalMember(*model, "model", "fuse_unk",
                                         JsonValue::Type::kBool, &fuse));
  fuse_unk = fuse != nullptr && fuse->as_bool();

  // The unknown token must be in the vocabulary when it is set.
  const JsonValue* unk = nullptr;
  DUALMEM_RETURN_IF_ERROR(OptionalMember(*model, "model", "unk_token",
                                         JsonValue::Type::kString, &unk));
  if (unk != nullptr) {
    auto it = vocab.find(unk->as_string());
    if (it == vocab.end()) {
      return FieldError(StatusCode::kInvalidArgument, "model.unk_token",
                        "is " + Quote(unk->as_string()) +
                            ", which is not in model.vocab");
    }
    unk_id = it->second;
  }

  const JsonValue* suffix = nullptr;
  DUALMEM_RETURN_IF_ERROR(OptionalMember(*model, "model", "end_of_word_suffix",
                                         JsonValue::Type::kString, &suffix));
  return ResolveByteSymbols(suffix == nullptr ? "" : suffix->as_string());
}

Status Tokenizer::Model::ParseMerges(const JsonValue& model) {
  const JsonValue* list = nullptr;
  DUALMEM_RETURN_IF_ERROR(
      RequireMember(model, "model", "merges", JsonValue::Type::kArray, &list));
  const std::vector<JsonValue>& entries = list->items();
  merges.reserve(entries.size());
  std::string left;
  std::string right;
  for (size_t i = 0; i < entries.size(); ++i) {
    std::string path = IndexPath("model.merges", i);
    DUALMEM_RETURN_IF_ERROR(ReadMergePair(entries[i], path, &left, &right));

    // Both symbols and their concatenation must be tokens.
    int32_t ids[3];
    const std::string* parts[3] = {&left, &right, nullptr};
    std::string merged = left + right;
    parts[2] = &merged;
    for (int k = 0; k < 3; ++k) {
      auto it = vocab.find(*parts[k]);
      if (it == vocab.end()) {
        return FieldError(StatusCode::kInvalidArgument, path,
                          "uses " + Quote(*parts[k]) +
                              ", which is not in model.vocab");
      }
      ids[k] = it->second;
    }
    // A repeated pair keeps its later rank.
    merges[PairKey(ids[0], ids[1])] =
        MergeEntry{static_cast<int32_t>(i), ids[2]};
  }
  return Status::Ok();
}

Status Tokenizer::Model::ResolveByteSymbols(const std::string& suffix) {
  for (int byte = 0; byte < 256; ++byte) {
    std::string symbol;
    AppendUtf8(ByteSymbol(byte), &symbol);
    auto plain = vocab.find(symbol);
    auto suffixed = vocab.find(symbol + suffix);
    byte_ids[byte] = plain == vocab.end() ? kNoId : plain->second;
    byte_suffix_ids[byte] = suffixed == vocab.end() ? kNoId : suffixed->second;
    if (unk_id == kNoId && (plain == vocab.end() || suffixed == vocab.end())) {
      const std::string& missing = plain == vocab.end() ? symbol
                                                        : symbol + suffix;
      char byte_text[8];
      std::snprintf(byte_text, sizeof(byte_text), "0x%02X", byte);
      return FieldError(StatusCode::kInvalidArgument, "model.vocab",
                        "lacks the byte-level symbol " + Quote(missing) +
                            " (byte " + byte_text +
                            ") and model.unk_token is not set");
    }
  }
  return Status::Ok();
}

// Runs BPE on one word's bytes. It starts from the byte symbols (the last
// with the end-of-word suffix) and joins the adjacent pair of lowest merge
// rank, the leftmost among equals, until no pair has a merge. A heap of
// candidate pairs keeps this O(n log n), and entries that a join made stale
// are skipped.
std::vector<int32_t> Tokenizer::Model::ApplyMerges(
    const std::string& word) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    auto byte = static_cast<unsigned char>(word[i]);
    int32_t id = i + 1 == word.size() ? byte_suffix_ids[byte] : byte_ids[byte];
    if (id == kNoId) {
      id = unk_id;
      if (fuse_unk && !symbols.empty() && symbols.back().id == unk_id) {
        continue;
      }
    }
    auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, index - 1, index + 1});
  }
  if (symbols.empty()) return {};
  symbols.back().next = kNoId;

  struct Candidate {
    int32_t rank;
    int32_t position;
    int32_t left_id;
    int32_t right_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank
                                : position > other.position;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>,
                      std::greater<Candidate>>
      queue;
  auto push_pair = [&](int32_t position) {
    if (position == kNoId) return;
    int32_t next = symbols[position].next;
    if (next == kNoId) return;
    auto it = merges.find(PairKey(symbols[position].id, symbols[next].id));
    if (it == merges.end()) return;
    queue.push(Candidate{it->second.rank, position, symbols[position].id,
                         symbols[next].id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) {
    push_pair(i);
  }

  while (!queue.empty()) {
    Candidate candidate = queue.top();
    queue.pop();
    Symbol& left = symbols[candidate.position];
    if (left.id == kNoId || left.next == kNoId) continue;
    Symbol& right = symbols[left.next];
    if (left.id != candidate.left_id || right.id != candidate.right_id) {
      continue;
    }
    left.id = merges.at(PairKey(left.id, right.id)).merged_id;
    left.next = right.next;
    if (right.next != kNoId) symbols[right.next].prev = candidate.position;
    right.id = kNoId;
    push_pair(candidate.position);
    push_pair(left.prev);
  }

  std::vector<int32_t> ids;
  for (int32_t i = 0; i != kNoId; i = symbols[i].next) {
    ids.push_back(symbols[i].id);
  }
  return ids;
}

void Tokenizer::Model::EncodeWord(std::u32string_view word,
                                  std::vector<int32_t>* ids) const {
  std::string bytes = ToUtf8(word);
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.find(bytes);
    if (it != cache.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> word_ids = ApplyMerges(bytes);
  ids->insert(ids->end(), word_ids.begin(), word_ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (cache.size() >= kWordCacheCapacity) cache.clear();
  cache.emplace(std::move(bytes), std::move(word_ids));
}

namespace {

// One piece of text between added tokens, or one added token.
struct Piece {
  size_t begin;
  size_t end;
  int32_t token_id;  // kNoId for text
};

// Splits `text` at the added tokens whose `normalized` flag matches, taking
// the leftmost match and the longest token at that position.
std::vector<Piece> SplitAtAddedTokens(std::u32string_view text,
                                      const std::vector<AddedToken>& tokens,
                                      bool normalized) {
  std::vector<Piece> pieces;
  size_t text_begin = 0;
  size_t i = 0;
  while (i < text.size()) {
    const AddedToken* match = nullptr;
    for (const AddedToken& token : tokens) {
      if (token.normalized != normalized) continue;
      if (text.compare(i, token.content.size(), token.content) != 0) continue;
      if (match == nullptr || token.content.size() > match->content.size()) {
        match = &token;
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    if (i > text_begin) pieces.push_back(Piece{text_begin, i, kNoId});
    pieces.push_back(Piece{i, i + match->content.size(), match->id});
    i += match->content.size();
    text_begin = i;
  }
  if (text_begin < text.size()) {
    pieces.push_back(Piece{text_begin, text.size(), kNoId});
  }
  return pieces;
}

// CLIP's normalizer: NFC, each run of white space to one space, then
// lowercase one code point at a time (as Hugging Face does, without the
// final-sigma rule).
std::u32string Normalize(std::u32string_view text) {
  std::u32string composed = ToNfc(text);
  std::u32string out;
  out.reserve(composed.size());
  bool in_space = false;
  for (char32_t code_point : composed) {
    if (IsWhiteSpace(code_point)) {
      if (!in_space) out.push_back(U' ');
      in_space = true;
      continue;
    }
    in_space = false;
    AppendLowercase(code_point, &out);
  }
  return out;
}

bool IsOther(char32_t code_point) {
  return !IsWhiteSpace(code_point) && !IsLetter(code_point) &&
         !IsNumber(code_point);
}

// Returns the length of CLIP's split-pattern match at `begin`, or 0 where
// the text is white space, which the pattern skips. The alternatives are
// tried in the pattern's order: contractions, a run of letters, one digit,
// a run of other characters.
size_t MatchWord(std::u32string_view text, size_t begin) {
  char32_t first = text[begin];
  if (IsWhiteSpace(first)) return 0;
  for (std::u32string_view contraction : kContractions) {
    if (text.compare(begin, contraction.size(), contraction) == 0) {
      return contraction.size();
    }
  }
  size_t end = begin + 1;
  if (IsLetter(first)) {
    while (end < text.size() && IsLetter(text[end])) ++end;
  } else if (!IsNumber(first)) {
    while (end < text.size() && IsOther(text[end])) ++end;
  }
  return end - begin;
}

}  // namespace

void Tokenizer::Model::EncodeNormalized(std::u32string_view text,
                                        std::vector<int32_t>* ids) const {
  size_t i = 0;
  while (i < text.size()) {
    size_t length = MatchWord(text, i);
    if (length == 0) {
      ++i;
      continue;
    }
    EncodeWord(text.substr(i, length), ids);
    i += length;
  }
}

void Tokenizer::Model::EncodeText(const std::u32string& text,
                                  std::vector<int32_t>* ids) const {
  for (const Piece& raw : SplitAtAddedTokens(text, added_tokens, false)) {
    if (raw.token_id != kNoId) {
      ids->push_back(raw.token_id);
      continue;
    }
    std::u32string normalized = Normalize(
        std::u32string_view(text).substr(raw.begin, raw.end - raw.begin));
    for (const Piece& piece :
         SplitAtAddedTokens(normalized, added_tokens, true)) {
      if (piece.token_id != kNoId) {
        ids->push_back(piece.token_id);
        continue;
      }
      EncodeNormalized(std::u32string_view(normalized).substr(
                           piece.begin, piece.end - piece.begin),
                       ids);
    }
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Model> model) : model_(std::move(model)) {}

Tokenizer::~Tokenizer() = default;

int32_t Tokenizer::start_id() const { return model_->start_id; }

int32_t Tokenizer::end_id() const { return model_->end_id; }

size_t Tokenizer::vocab_size() const { return model_->vocab.size(); }

Status Tokenizer::FromJson(std::string_view tokenizer_json,
                           std::unique_ptr<Tokenizer>* out) {
  JsonValue root;
  Status parsed = ParseJson(tokenizer_json, &root);
  if (!parsed.ok()) {
    return MakeStatus(parsed.code, "tokenizer.json: " + parsed.message);
  }
  if (!root.is_object()) {
    return MakeStatus(StatusCode::kInvalidArgument,
                      std::string("tokenizer.json: top level has type ") +
                          JsonValue::TypeName(root.type()) +
                          ", expected object");
  }

  auto model = std::make_unique<Model>();
  DUALMEM_RETURN_IF_ERROR(model->ParseBpe(root));
  DUALMEM_RETURN_IF_ERROR(CheckNormalizer(root));
  DUALMEM_RETURN_IF_ERROR(CheckPreTokenizer(root));
  DUALMEM_RETURN_IF_ERROR(ParseAddedTokens(root, &model->added_tokens));
  DUALMEM_RETURN_IF_ERROR(
      ParsePostProcessor(root, &model->start_id, &model->end_id));

  out->reset(new Tokenizer(std::move(model)));
  return Status::Ok();
}

Status Tokenizer::Encode(std::string_view utf8,
                         std::vector<int32_t>* ids) const {
  std::u32string text;
  DecodeUtf8Lossy(utf8, &text);
  std::vector<int32_t> result;
  result.push_back(model_->start_id);
  model_->EncodeText(text, &result);
  result.push_back(model_->end_id);
  *ids = std::move(result);
  return Status::Ok();
}

Status Tokenizer::EncodeForModel(std::string_view utf8, int context_length,
                                 std::vector<int32_t>* ids,
                                 std::vector<int32_t>* attention_mask) const {
  if (context_length < 2) {
    return InvalidArgument("context_length is " +
                           std::to_string(context_length) +
                           ", expected at least 2 (start and end tokens)");
  }
  if (context_length > kMaxContextLength) {
    return MakeStatus(StatusCode::kLimitExceeded,
                      "context_length is " + std::to_string(context_length) +
                          ", expected at most " +
                          std::to_string(kMaxContextLength));
  }
  std::vector<int32_t> encoded;
  DUALMEM_RETURN_IF_ERROR(Encode(utf8, &encoded));

  // Keep the start token, the first context_length - 2 content tokens and
  // the end token, then pad.
  const size_t length = static_cast<size_t>(context_length);
  if (encoded.size() > length) {
    encoded.resize(length - 1);
    encoded.push_back(model_->end_id);
  }
  std::vector<int32_t> mask(encoded.size(), 1);
  encoded.resize(length, pad_id());
  mask.resize(length, 0);

  *ids = std::move(encoded);
  *attention_mask = std::move(mask);
  return Status::Ok();
}

}  // namespace dualmem
