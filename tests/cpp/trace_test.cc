#include "trace.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "json.h"

namespace dualmem {
namespace {

std::string ReadFixture(const std::string& name) {
  std::ifstream file(std::string(DUALMEM_FIXTURES_DIR) + "/dmn/" + name, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Builds a small valid trace (3 classes, 4 dimensions) with pieces that a
// test can replace.
struct TraceText {
  std::string format = "\"dmn-trace/1\"";
  std::string config =
      "{\"logit_scale\": 100.0, \"beta\": 5.5, \"capacity\": 2, \"selection_ratio\": 0.5,"
      " \"weights\": {\"text\": 1.0, \"dynamic\": 1.0, \"static\": 1.0}}";
  std::string texts = "[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0.5]]";
  std::string shots = "[{\"label\": 2, \"views\": [[0.1, 0.2, 1, 0.4], [0, 0.3, 1, 0.5]]}]";
  std::string stream =
      "[{\"views\": [[1, 0.1, 0, 0], [0.9, 0.2, 0, 0]]}, {\"views\": [[0, 1, 0.2, 0]]},"
      " {\"views\": [[0.1, 0, 1, 0.3]]}, {\"views\": [[0, 1, 0, 0.1]]}]";
  std::string labels = "[0, 1, 2, 1]";

  std::string Json() const {
    return "{\"format\": " + format + ", \"config\": " + config + ", \"text_embeddings\": " +
           texts + ", \"shots\": " + shots + ", \"stream\": " + stream + ", \"labels\": " +
           labels + "}";
  }
};

std::string ParseError(const TraceText& text) {
  DmnTrace trace;
  Status status = ParseDmnTrace(text.Json(), &trace);
  EXPECT_FALSE(status.ok());
  return status.message;
}

TEST(DmnTrace, ParsesGoldenShapes) {
  DmnTrace trace;
  Status status = ParseDmnTrace(ReadFixture("c100_d512.trace.json"), &trace);
  ASSERT_TRUE(status.ok()) << status.message;
  EXPECT_EQ(trace.dim, 512);
  EXPECT_EQ(trace.text_embeddings.size(), 100u);
  EXPECT_EQ(trace.shots.size(), 100u);
  EXPECT_EQ(trace.stream.size(), 120u);
  EXPECT_EQ(trace.labels.size(), 120u);
  EXPECT_EQ(trace.config.capacity, 10);
  EXPECT_FLOAT_EQ(trace.config.weight_static, 2.0f);
  EXPECT_FLOAT_EQ(trace.config.weight_dynamic, 0.3f);
  EXPECT_EQ(trace.stream[0].num_views, 2);
  EXPECT_EQ(trace.stream[0].views.size(), 2u * 512u);
}

TEST(DmnTrace, ParsesSmallTrace) {
  DmnTrace trace;
  Status status = ParseDmnTrace(TraceText().Json(), &trace);
  ASSERT_TRUE(status.ok()) << status.message;
  EXPECT_EQ(trace.dim, 4);
  ASSERT_EQ(trace.shots.size(), 1u);
  EXPECT_EQ(trace.shots[0].label, 2);
  EXPECT_EQ(trace.shots[0].num_views, 2);
  EXPECT_EQ(trace.labels[3], 1);
}

TEST(DmnTrace, RejectsShortView) {
  TraceText text;
  text.stream = "[{\"views\": [[1, 0, 0, 0]]}, {\"views\": [[1, 0, 0, 0], [1, 0, 0]]}]";
  text.labels = "[0, 1]";
  EXPECT_EQ(ParseError(text), "trace: stream[1].views[1] has 3 values, expected 4");
}

TEST(DmnTrace, RejectsRaggedTextEmbeddings) {
  TraceText text;
  text.texts = "[[1, 0, 0, 0], [0, 1, 0]]";
  EXPECT_EQ(ParseError(text), "trace: text_embeddings[1] has 3 values, expected 4");
}

TEST(DmnTrace, RejectsWrongFormat) {
  TraceText text;
  text.format = "\"dmn-trace/2\"";
  EXPECT_EQ(ParseError(text), "trace: format is \"dmn-trace/2\", expected \"dmn-trace/1\"");
}

TEST(DmnTrace, RejectsLabelsOutOfRange) {
  TraceText text;
  text.labels = "[0, 1, 3, 1]";
  EXPECT_EQ(ParseError(text), "trace: labels[2] is 3, expected 0 <= label < 3");
  text.labels = "[0, 1]";
  EXPECT_EQ(ParseError(text), "trace: labels has 2 values, expected one per stream item = 4");
  TraceText shot;
  shot.shots = "[{\"label\": -1, \"views\": [[1, 0, 0, 0]]}]";
  EXPECT_EQ(ParseError(shot), "trace: shots[0].label is -1, expected 0 <= label < 3");
}

TEST(DmnTrace, RejectsBadConfig) {
  TraceText text;
  text.config =
      "{\"logit_scale\": 100.0, \"beta\": 5.5, \"capacity\": 0, \"selection_ratio\": 0.5,"
      " \"weights\": {\"text\": 1.0, \"dynamic\": 1.0, \"static\": 1.0}}";
  EXPECT_NE(ParseError(text).find("capacity is 0"), std::string::npos);
  text.config = "{\"logit_scale\": 100.0, \"beta\": \"high\"}";
  EXPECT_EQ(ParseError(text), "trace: config.beta has type string, expected number");
  text.config = "{\"logit_scale\": 100.0}";
  EXPECT_EQ(ParseError(text), "trace: config.beta is missing, expected number");
  text.config =
      "{\"logit_scale\": 100.0, \"beta\": 5.5, \"capacity\": 2.5, \"selection_ratio\": 0.5,"
      " \"weights\": {\"text\": 1.0, \"dynamic\": 1.0, \"static\": 1.0}}";
  EXPECT_EQ(ParseError(text), "trace: config.capacity is 2.5, expected an integer");
}

TEST(DmnTrace, RejectsZeroAndEmptyVectors) {
  TraceText text;
  text.stream = "[{\"views\": [[0, 0, 0, 0]]}]";
  text.labels = "[0]";
  EXPECT_EQ(ParseError(text), "trace: stream[0].views[0] has zero length, expected a non-zero embedding");
  text.stream = "[{\"views\": []}]";
  EXPECT_EQ(ParseError(text), "trace: stream[0].views is empty, expected at least one view");
}

TEST(DmnTrace, RejectsMalformedJson) {
  DmnTrace trace;
  Status status = ParseDmnTrace("{\"format\": ", &trace);
  EXPECT_EQ(status.code, StatusCode::kParseError) << status.message;
}

TEST(DmnTrace, FormatsExpectedDocument) {
  DmnTrace trace;
  ASSERT_TRUE(ParseDmnTrace(TraceText().Json(), &trace).ok());
  std::vector<TraceResult> results;
  Status status = RunDmnTrace(trace, &results);
  ASSERT_TRUE(status.ok()) << status.message;
  ASSERT_EQ(results.size(), 4u);

  JsonValue document;
  ASSERT_TRUE(ParseJson(FormatDmnExpected(results), &document).ok());
  EXPECT_EQ(document.Find("format")->as_string(), "dmn-expected/1");
  const std::vector<JsonValue>& items = document.Find("results")->items();
  ASSERT_EQ(items.size(), 4u);
  for (const char* key : {"text", "confident", "static", "dynamic", "fused", "memory_counts"}) {
    ASSERT_NE(items[0].Find(key), nullptr) << key;
    EXPECT_EQ(items[0].Find(key)->items().size(), 3u) << key;
  }
  EXPECT_EQ(static_cast<int>(items[0].Find("label")->as_number()), results[0].output.label);
  // %.9g keeps float32 values exact.
  EXPECT_EQ(static_cast<float>(items[1].Find("fused")->items()[1].as_number()),
            results[1].output.fused[1]);
}

TEST(DmnTrace, StaticIsNullWithoutShots) {
  TraceText text;
  text.shots = "[]";
  DmnTrace trace;
  ASSERT_TRUE(ParseDmnTrace(text.Json(), &trace).ok());
  std::vector<TraceResult> results;
  ASSERT_TRUE(RunDmnTrace(trace, &results).ok());
  JsonValue document;
  ASSERT_TRUE(ParseJson(FormatDmnExpected(results), &document).ok());
  EXPECT_TRUE(document.Find("results")->items()[0].Find("static")->is_null());
}

TEST(DmnTrace, MemoryCountsFollowCapacity) {
  DmnTrace trace;
  ASSERT_TRUE(ParseDmnTrace(ReadFixture("capacity3_replacement.trace.json"), &trace).ok());
  std::vector<TraceResult> results;
  ASSERT_TRUE(RunDmnTrace(trace, &results).ok());
  for (const TraceResult& result : results) {
    for (int count : result.memory_counts) EXPECT_LE(count, 3);
  }
  int total = 0;
  for (int count : results.back().memory_counts) total += count;
  EXPECT_EQ(total, 3 * 6) << "300 items should fill all 6 classes to capacity 3";
}

}  // namespace
}  // namespace dualmem
