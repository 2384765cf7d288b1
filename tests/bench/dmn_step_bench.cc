// dualmem_dmn_bench: times DMN steps and bare streaming passes of the native
// core. tests/bench/dmn-step.js runs it as a child process and alternates it
// round by round with the WebAssembly contenders, so each reply is the time
// of one unit of work measured in here, without the pipe's round trip.
//
// Requests, one line each on stdin; one reply line each on stdout:
//   {"classes":1000,"slots":50,"dim":512,"precision":"int8","seed":1}
//           builds a memory, replacing any earlier one, and fills it as
//           dmn-step.js fills its memories; replies "ready BYTES" with the
//           core's MemoryBytes()
//   step N  N DMN steps, each on the next query; replies with the mean
//           milliseconds of one
//   pass N  N bare streaming passes (MemoryBank::AllSimilarities), each on
//           the next query; replies with the mean milliseconds of one
// N is optional and defaults to 1. A request that fails gets the reply
// "error: MESSAGE". End of input ends the program.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "dmn.h"
#include "json.h"
#include "memory_bank.h"
#include "status.h"

namespace {

using dualmem::DualMemoryNetwork;
using dualmem::Status;

// Distinct queries cycled through by step and pass, as in dmn-step.js,
// which makes few enough steps that every one replaces a restored slot.
constexpr int kNumQueries = 64;

// Entropy given to the restored slots: above ln(classes) for any class count
// below e^10 (about 22 000), so every step's prediction is more confident
// than the worst slot of its class and replaces it.
constexpr double kRestoredEntropy = 10.0;

// Unit vector `index` of stream `seed`, the same values as makeVector in
// dmn-step.js: a 32-bit linear congruential generator started from a hash of
// (seed, index), values uniform in [-0.5, 0.5), scaled to unit length in
// double.
void MakeVector(uint32_t seed, uint32_t index, int dim, float* out) {
  uint32_t state = ((seed ^ 0x9e3779b9u) * 0x85ebca6bu) ^ ((index + 1u) * 0xc2b2ae35u);
  double sum = 0.0;
  for (int i = 0; i < dim; ++i) {
    state = state * 1664525u + 1013904223u;
    out[i] = static_cast<float>(static_cast<double>(state) / 4294967296.0 - 0.5);
    sum += static_cast<double>(out[i]) * out[i];
  }
  double norm = std::sqrt(sum);
  for (int i = 0; i < dim; ++i) out[i] = static_cast<float>(out[i] / norm);
}

struct Bench {
  std::unique_ptr<DualMemoryNetwork> network;
  std::vector<float> queries;  // kNumQueries x dim
  int next_query = 0;
  dualmem::StepOutput step_output;
  dualmem::BankQuery pass_query;
  std::vector<float> pass_similarities;

  const float* NextQuery() {
    int dim = network->dim();
    const float* query = queries.data() + static_cast<size_t>(next_query) * dim;
    next_query = (next_query + 1) % kNumQueries;
    return query;
  }
};

Status ReadInt(const dualmem::JsonValue& request, const char* key, int min, int* out) {
  const dualmem::JsonValue* value = request.Find(key);
  if (value == nullptr || !value->is_number() || !(value->as_number() >= min) ||
      value->as_number() > 1e9 || value->as_number() != std::floor(value->as_number())) {
    return dualmem::InvalidArgument(std::string("request field \"") + key +
                                    "\" is missing or not an integer from " + std::to_string(min) +
                                    " to 1e9");
  }
  *out = static_cast<int>(value->as_number());
  return Status::Ok();
}

// Builds the memory: every class's text embedding first, then `slots`
// dynamic slots per class with entropies kRestoredEntropy + slot.
Status Build(const std::string& line, Bench* bench, size_t* bytes) {
  dualmem::JsonValue request;
  DUALMEM_RETURN_IF_ERROR(dualmem::ParseJson(line, &request));
  int classes = 0, slots = 0, dim = 0, seed = 0;
  DUALMEM_RETURN_IF_ERROR(ReadInt(request, "classes", 1, &classes));
  DUALMEM_RETURN_IF_ERROR(ReadInt(request, "slots", 1, &slots));
  DUALMEM_RETURN_IF_ERROR(ReadInt(request, "dim", 1, &dim));
  DUALMEM_RETURN_IF_ERROR(ReadInt(request, "seed", 0, &seed));
  const dualmem::JsonValue* precision = request.Find("precision");
  dualmem::DmnConfig config;
  config.capacity = slots;
  std::string name = precision != nullptr ? precision->as_string() : "";
  if (name == "float32") {
    config.precision = dualmem::Precision::kFloat32;
  } else if (name == "float16") {
    config.precision = dualmem::Precision::kFloat16;
  } else if (name == "int8") {
    config.precision = dualmem::Precision::kInt8;
  } else {
    return dualmem::InvalidArgument("request field \"precision\" is \"" + name +
                                    "\", expected \"float32\", \"float16\" or \"int8\"");
  }

  // Free the previous memory before the next one is filled, so that two
  // large memories never coexist.
  bench->network.reset();
  std::unique_ptr<DualMemoryNetwork> network;
  DUALMEM_RETURN_IF_ERROR(DualMemoryNetwork::Create(dim, config, &network));
  std::vector<float> vector(dim);
  for (int c = 0; c < classes; ++c) {
    MakeVector(seed, c, dim, vector.data());
    DUALMEM_RETURN_IF_ERROR(network->AddClass(vector.data(), dim));
  }
  for (int c = 0; c < classes; ++c) {
    for (int s = 0; s < slots; ++s) {
      MakeVector(seed + 1, static_cast<uint32_t>(c) * slots + s, dim, vector.data());
      DUALMEM_RETURN_IF_ERROR(
          network->RestoreDynamic(c, vector.data(), dim, kRestoredEntropy + s, 0.0));
    }
  }
  bench->queries.resize(static_cast<size_t>(kNumQueries) * dim);
  for (int q = 0; q < kNumQueries; ++q) {
    MakeVector(seed + 2, q, dim, bench->queries.data() + static_cast<size_t>(q) * dim);
  }
  bench->next_query = 0;
  bench->network = std::move(network);
  *bytes = bench->network->MemoryBytes();
  return Status::Ok();
}

double MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

Status TimeSteps(Bench* bench, int count, double* milliseconds) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    const float* query = bench->NextQuery();
    DUALMEM_RETURN_IF_ERROR(bench->network->Step(query, bench->network->dim(), 1, 0.0, true,
                                                 &bench->step_output));
  }
  *milliseconds = MillisecondsSince(start) / count;
  return Status::Ok();
}

// Times what the WebAssembly handle's streamingPass does: prepare the query,
// then one AllSimilarities call into a buffer sized once.
void TimePasses(Bench* bench, int count, double* milliseconds) {
  const dualmem::MemoryBank& bank = bench->network->bank();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    const float* query = bench->NextQuery();
    bank.PrepareQuery(query, &bench->pass_query);
    bench->pass_similarities.resize(bank.total_slot_count());
    bank.AllSimilarities(bench->pass_query, bench->pass_similarities.data());
  }
  *milliseconds = MillisecondsSince(start) / count;
}

// Splits "step 10" into the command and its count; a missing count is 1.
Status ParseTimingRequest(const std::string& line, std::string* command, int* count) {
  size_t space = line.find(' ');
  *command = line.substr(0, space);
  *count = 1;
  if (space == std::string::npos) return Status::Ok();
  char* end = nullptr;
  long value = std::strtol(line.c_str() + space + 1, &end, 10);
  if (*end != '\0' || value < 1 || value > 1000000) {
    return dualmem::InvalidArgument("request \"" + line + "\" has count \"" +
                                    line.substr(space + 1) + "\", expected 1 to 1000000");
  }
  *count = static_cast<int>(value);
  return Status::Ok();
}

}  // namespace

int main() {
  Bench bench;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    Status status = Status::Ok();
    if (line[0] == '{') {
      size_t bytes = 0;
      status = Build(line, &bench, &bytes);
      if (status.ok()) std::printf("ready %zu\n", bytes);
    } else {
      std::string command;
      int count = 1;
      double milliseconds = 0.0;
      status = ParseTimingRequest(line, &command, &count);
      if (status.ok() && command != "step" && command != "pass") {
        status = dualmem::InvalidArgument("unknown request \"" + line +
                                          "\", expected a JSON object, step N or pass N");
      } else if (status.ok() && !bench.network) {
        status = dualmem::InvalidArgument(command + " before a memory was built, expected a JSON "
                                          "request with classes, slots, dim, precision and seed");
      } else if (status.ok() && command == "step") {
        status = TimeSteps(&bench, count, &milliseconds);
      } else if (status.ok()) {
        TimePasses(&bench, count, &milliseconds);
      }
      if (status.ok()) std::printf("%.6f\n", milliseconds);
    }
    if (!status.ok()) std::printf("error: %s\n", status.message.c_str());
    std::fflush(stdout);
  }
  return 0;
}
