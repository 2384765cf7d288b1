// dualmem_replay TRACE.json
//
// Runs a `dmn-trace/1` file through the Dual Memory Network and prints the
// `dmn-expected/1` document to stdout. Exit codes: 0 on success, 2 on a
// usage, read, parse or run error (message on stderr).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "trace.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s TRACE.json\n", argc > 0 ? argv[0] : "dualmem_replay");
    return 2;
  }
  std::ifstream file(argv[1], std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "dualmem_replay: cannot open %s\n", argv[1]);
    return 2;
  }
  std::stringstream contents;
  contents << file.rdbuf();

  dualmem::DmnTrace trace;
  dualmem::Status status = dualmem::ParseDmnTrace(contents.str(), &trace);
  std::vector<dualmem::TraceResult> results;
  if (status.ok()) status = dualmem::RunDmnTrace(trace, &results);
  if (!status.ok()) {
    std::fprintf(stderr, "dualmem_replay: %s: %s\n", argv[1], status.message.c_str());
    return 2;
  }
  std::string text = dualmem::FormatDmnExpected(results);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
