// A small JSON reader for the files the core reads: DMN traces, Hugging Face
// tokenizer.json and preprocessor_config.json. It builds a tree of values and
// reports the byte offset of the first syntax error. Numbers are doubles.
#ifndef DUALMEM_JSON_H_
#define DUALMEM_JSON_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "status.h"

namespace dualmem {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Accessors return the value for the matching type and a zero value
  // (false, 0, "", empty) for any other type.
  bool as_bool() const { return type_ == Type::kBool && bool_; }
  double as_number() const { return type_ == Type::kNumber ? number_ : 0.0; }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  // Object members in file order; keys may repeat as in the file.
  const std::vector<std::pair<std::string, JsonValue>>& members() const {
    return members_;
  }

  // Returns the last member named `key`, or nullptr when this is not an
  // object or has no such member.
  const JsonValue* Find(std::string_view key) const;

  // Name of a type for error messages, e.g. "array".
  static const char* TypeName(Type type);

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

// Parses `text` into `out`. On failure returns kParseError with the byte
// offset and what was expected, and leaves `out` unchanged. Nesting deeper
// than `kJsonMaxDepth` is rejected with kLimitExceeded.
constexpr int kJsonMaxDepth = 256;
Status ParseJson(std::string_view text, JsonValue* out);

}  // namespace dualmem

#endif  // DUALMEM_JSON_H_
