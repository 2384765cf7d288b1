// DMN conformance traces: `dmn-trace/1` JSON in (configuration, class text
// embeddings, labelled shots and a stream of test images) and
// `dmn-expected/1` JSON out (per stream item: text, confident, static,
// dynamic and fused probabilities, label and dynamic slot counts).
#ifndef DUALMEM_TRACE_H_
#define DUALMEM_TRACE_H_

#include <string>
#include <string_view>
#include <vector>

#include "dmn.h"
#include "status.h"

namespace dualmem {

// One image as `num_views` embeddings of the trace's dimension, back to back;
// views[0] is the original.
struct TraceImage {
  int label = -1;  // class of a shot; -1 for stream items
  int num_views = 0;
  std::vector<float> views;
};

struct DmnTrace {
  DmnConfig config;
  int dim = 0;
  std::vector<std::vector<float>> text_embeddings;  // one row per class
  std::vector<TraceImage> shots;
  std::vector<TraceImage> stream;
  std::vector<int> labels;  // true class of each stream item; never an input
};

// Output of one stream item, as written to `dmn-expected/1`.
struct TraceResult {
  StepOutput output;
  std::vector<int> memory_counts;  // dynamic slots per class after the update
};

// Parses and checks a `dmn-trace/1` document. Errors are kParseError for
// malformed JSON and kInvalidArgument naming the field, e.g.
// "trace: stream[3].views[1] has 63 values, expected 64".
Status ParseDmnTrace(std::string_view json_text, DmnTrace* out);

// Runs the trace through a DualMemoryNetwork built from `trace.config`: shots
// first, then the stream in order with timestamp = item index.
Status RunDmnTrace(const DmnTrace& trace, std::vector<TraceResult>* results);

// Formats results as a `dmn-expected/1` document; `static` is null for
// items without a static readout. Floats are printed with %.9g.
std::string FormatDmnExpected(const std::vector<TraceResult>& results);

}  // namespace dualmem

#endif  // DUALMEM_TRACE_H_
