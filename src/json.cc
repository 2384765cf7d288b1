#include "json.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "unicode_data.h"

namespace dualmem {

const JsonValue* JsonValue::Find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  // Search from the back so that a repeated key resolves to its last value,
  // as JavaScript's JSON.parse does.
  for (auto it = members_.rbegin(); it != members_.rend(); ++it) {
    if (it->first == key) return &it->second;
  }
  return nullptr;
}

const char* JsonValue::TypeName(Type type) {
  switch (type) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "boolean";
    case Type::kNumber:
      return "number";
    case Type::kString:
      return "string";
    case Type::kArray:
      return "array";
    case Type::kObject:
      return "object";
  }
  return "unknown";
}

// Recursive-descent parser over a string_view. Errors carry the byte offset
// so that a user can find the broken spot in a large file.
class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  Status ParseDocument(JsonValue* out) {
    SkipWhitespace();
    DUALMEM_RETURN_IF_ERROR(ParseValue(out, 0));
    SkipWhitespace();
    if (pos_ != text_.size()) return Error("unexpected data after the JSON value");
    return Status::Ok();
  }

 private:
  Status Error(const std::string& what) const {
    return MakeStatus(StatusCode::kParseError,
                      "invalid JSON at byte " + std::to_string(pos_) + ": " + what);
  }

  void SkipWhitespace() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  bool ConsumeLiteral(std::string_view literal) {
    if (text_.substr(pos_, literal.size()) != literal) return false;
    pos_ += literal.size();
    return true;
  }

  Status ParseValue(JsonValue* out, int depth) {
    if (depth > kJsonMaxDepth) {
      return MakeStatus(StatusCode::kLimitExceeded,
                        "JSON nesting deeper than " + std::to_string(kJsonMaxDepth) +
                            " levels at byte " + std::to_string(pos_));
    }
    if (pos_ >= text_.size()) return Error("expected a value, found the end of the text");
    char c = text_[pos_];
    if (c == '{') return ParseObject(out, depth);
    if (c == '[') return ParseArray(out, depth);
    if (c == '"') {
      out->type_ = JsonValue::Type::kString;
      return ParseString(&out->string_);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(out);
    if (ConsumeLiteral("true")) {
      out->type_ = JsonValue::Type::kBool;
      out->bool_ = true;
      return Status::Ok();
    }
    if (ConsumeLiteral("false")) {
      out->type_ = JsonValue::Type::kBool;
      out->bool_ = false;
      return Status::Ok();
    }
    if (ConsumeLiteral("null")) {
      out->type_ = JsonValue::Type::kNull;
      return Status::Ok();
    }
    return Error(std::string("unexpected character '") + c + "'");
  }

  Status ParseObject(JsonValue* out, int depth) {
    out->type_ = JsonValue::Type::kObject;
    ++pos_;  // '{'
    SkipWhitespace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return Status::Ok();
    }
    while (true) {
      SkipWhitespace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return Error("expected a string key");
      std::string key;
      DUALMEM_RETURN_IF_ERROR(ParseString(&key));
      SkipWhitespace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return Error("expected ':' after a key");
      ++pos_;
      SkipWhitespace();
      out->members_.emplace_back(std::move(key), JsonValue());
      DUALMEM_RETURN_IF_ERROR(ParseValue(&out->members_.back().second, depth + 1));
      SkipWhitespace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        return Status::Ok();
      }
      return Error("expected ',' or '}' in an object");
    }
  }

  Status ParseArray(JsonValue* out, int depth) {
    out->type_ = JsonValue::Type::kArray;
    ++pos_;  // '['
    SkipWhitespace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return Status::Ok();
    }
    while (true) {
      SkipWhitespace();
      out->items_.emplace_back();
      DUALMEM_RETURN_IF_ERROR(ParseValue(&out->items_.back(), depth + 1));
      SkipWhitespace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return Status::Ok();
      }
      return Error("expected ',' or ']' in an array");
    }
  }

  Status ParseNumber(JsonValue* out) {
    size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    size_t digits_start = pos_;
    while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    if (pos_ == digits_start) return Error("expected a digit");
    if (text_[digits_start] == '0' && pos_ - digits_start > 1) {
      return Error("a number may not start with 0");
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      size_t fraction_start = pos_;
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
      if (pos_ == fraction_start) return Error("expected a digit after '.'");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      size_t exponent_start = pos_;
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
      if (pos_ == exponent_start) return Error("expected a digit in the exponent");
    }
    // strtod needs a terminated string; numbers are short, so copy.
    std::string literal(text_.substr(start, pos_ - start));
    double value = std::strtod(literal.c_str(), nullptr);
    if (!std::isfinite(value)) {
      pos_ = start;
      return Error("number " + literal + " is out of the double range");
    }
    out->type_ = JsonValue::Type::kNumber;
    out->number_ = value;
    return Status::Ok();
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }

  Status ParseHex4(uint32_t* out) {
    if (pos_ + 4 > text_.size()) return Error("truncated \\u escape");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_ + i];
      value <<= 4;
      if (c >= '0' && c <= '9') {
        value |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        value |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        value |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return Error("invalid hex digit in \\u escape");
      }
    }
    pos_ += 4;
    *out = value;
    return Status::Ok();
  }

  // Decodes one \u escape, joining a UTF-16 surrogate pair. A lone surrogate
  // becomes U+FFFD, as JavaScript's TextEncoder would write it.
  Status ParseUnicodeEscape(std::string* out) {
    uint32_t unit = 0;
    DUALMEM_RETURN_IF_ERROR(ParseHex4(&unit));
    if (unit >= 0xD800 && unit <= 0xDBFF && text_.substr(pos_, 2) == "\\u") {
      size_t saved = pos_;
      pos_ += 2;
      uint32_t low = 0;
      DUALMEM_RETURN_IF_ERROR(ParseHex4(&low));
      if (low >= 0xDC00 && low <= 0xDFFF) {
        AppendUtf8(static_cast<char32_t>(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)), out);
        return Status::Ok();
      }
      pos_ = saved;
    }
    if (unit >= 0xD800 && unit <= 0xDFFF) unit = 0xFFFD;
    AppendUtf8(static_cast<char32_t>(unit), out);
    return Status::Ok();
  }

  Status ParseString(std::string* out) {
    ++pos_;  // opening quote
    std::string value;
    while (true) {
      if (pos_ >= text_.size()) return Error("unterminated string");
      char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        break;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return Error("control character in a string");
      }
      if (c != '\\') {
        value.push_back(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= text_.size()) return Error("unterminated escape");
      char escape = text_[pos_++];
      switch (escape) {
        case '"':
          value.push_back('"');
          break;
        case '\\':
          value.push_back('\\');
          break;
        case '/':
          value.push_back('/');
          break;
        case 'b':
          value.push_back('\b');
          break;
        case 'f':
          value.push_back('\f');
          break;
        case 'n':
          value.push_back('\n');
          break;
        case 'r':
          value.push_back('\r');
          break;
        case 't':
          value.push_back('\t');
          break;
        case 'u':
          DUALMEM_RETURN_IF_ERROR(ParseUnicodeEscape(&value));
          break;
        default:
          --pos_;
          return Error(std::string("invalid escape '\\") + escape + "'");
      }
    }
    *out = std::move(value);
    return Status::Ok();
  }

  std::string_view text_;
  size_t pos_ = 0;
};

Status ParseJson(std::string_view text, JsonValue* out) {
  JsonValue value;
  JsonParser parser(text);
  DUALMEM_RETURN_IF_ERROR(parser.ParseDocument(&value));
  *out = std::move(value);
  return Status::Ok();
}

}  // namespace dualmem
