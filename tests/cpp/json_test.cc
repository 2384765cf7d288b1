#include "json.h"

#include <gtest/gtest.h>

#include <string>

namespace dualmem {
namespace {

TEST(JsonTest, ParsesNestedDocument) {
  JsonValue value;
  Status status = ParseJson(R"({"a": [1, -2.5e2, true, null], "b": {"c": "x"}})", &value);
  ASSERT_TRUE(status.ok()) << status.message;
  ASSERT_TRUE(value.is_object());
  const JsonValue* a = value.Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items().size(), 4u);
  EXPECT_EQ(a->items()[0].as_number(), 1.0);
  EXPECT_EQ(a->items()[1].as_number(), -250.0);
  EXPECT_TRUE(a->items()[2].as_bool());
  EXPECT_TRUE(a->items()[3].is_null());
  EXPECT_EQ(value.Find("b")->Find("c")->as_string(), "x");
  EXPECT_EQ(value.Find("missing"), nullptr);
}

TEST(JsonTest, DecodesEscapesAndSurrogatePairs) {
  JsonValue value;
  ASSERT_TRUE(ParseJson(R"("q\"\\\/\n\u00e9\ud83d\udd29")", &value).ok());
  EXPECT_EQ(value.as_string(), "q\"\\/\n\xC3\xA9\xF0\x9F\x94\xA9");
}

TEST(JsonTest, LoneSurrogateBecomesReplacementCharacter) {
  JsonValue value;
  ASSERT_TRUE(ParseJson(R"("\ud800x")", &value).ok());
  EXPECT_EQ(value.as_string(), "\xEF\xBF\xBDx");
}

TEST(JsonTest, RepeatedKeyResolvesToLastValue) {
  JsonValue value;
  ASSERT_TRUE(ParseJson(R"({"k": 1, "k": 2})", &value).ok());
  EXPECT_EQ(value.Find("k")->as_number(), 2.0);
  EXPECT_EQ(value.members().size(), 2u);
}

TEST(JsonTest, RejectsMalformedDocumentsWithOffset) {
  const char* cases[] = {"",        "{",          "[1,]",      "{\"a\" 1}", "01",
                         "1.",      "tru",        "\"abc",     "[1] x",     "\"\\x\"",
                         "-",       "{\"a\":}",   "1e",        "\"\t\"",    "[\"\\u12\"]"};
  for (const char* text : cases) {
    JsonValue value;
    Status status = ParseJson(text, &value);
    EXPECT_EQ(status.code, StatusCode::kParseError) << "input: " << text;
    EXPECT_NE(status.message.find("at byte"), std::string::npos) << status.message;
  }
}

TEST(JsonTest, RejectsNumbersOutsideDoubleRange) {
  JsonValue value;
  Status status = ParseJson("1e999", &value);
  EXPECT_EQ(status.code, StatusCode::kParseError);
  EXPECT_NE(status.message.find("1e999"), std::string::npos) << status.message;
}

TEST(JsonTest, RejectsExcessiveNesting) {
  std::string deep(kJsonMaxDepth + 10, '[');
  deep += std::string(kJsonMaxDepth + 10, ']');
  JsonValue value;
  EXPECT_EQ(ParseJson(deep, &value).code, StatusCode::kLimitExceeded);
}

TEST(JsonTest, FailedParseLeavesOutputUnchanged) {
  JsonValue value;
  ASSERT_TRUE(ParseJson("[1, 2]", &value).ok());
  EXPECT_FALSE(ParseJson("[3, ", &value).ok());
  ASSERT_EQ(value.items().size(), 2u);
  EXPECT_EQ(value.items()[1].as_number(), 2.0);
}

}  // namespace
}  // namespace dualmem
