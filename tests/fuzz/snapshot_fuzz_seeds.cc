// Writes small valid snapshots, one per precision plus an empty network,
// into the folder given as the only argument: the seed corpus of
// snapshot_fuzz. Small networks (dim 4) keep each input under a kilobyte,
// so that the fuzzer's mutations hit every field often.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "dmn.h"
#include "snapshot.h"

namespace {

constexpr int kDim = 4;

// Deterministic values in [-1, 1) from a 32-bit linear congruential generator.
class Values {
 public:
  std::vector<float> Next(int count) {
    std::vector<float> values(count);
    for (float& value : values) {
      state_ = state_ * 1664525u + 1013904223u;
      value = static_cast<float>(state_ >> 8) / 8388608.0f - 1.0f;
    }
    return values;
  }

 private:
  uint32_t state_ = 12345u;
};

bool Write(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return false;
  bool written = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  return std::fclose(file) == 0 && written;
}

// Returns the first failure, or an empty string.
std::string Build(dualmem::Precision precision, int classes, std::vector<uint8_t>* out) {
  dualmem::DmnConfig config;
  config.capacity = 2;
  config.logit_scale = 10.0f;
  config.precision = precision;
  std::unique_ptr<dualmem::DualMemoryNetwork> network;
  dualmem::Status status = dualmem::DualMemoryNetwork::Create(kDim, config, &network);
  Values values;
  std::vector<std::string> names;
  for (int c = 0; c < classes && status.ok(); ++c) {
    std::vector<float> text = values.Next(kDim);
    status = network->AddClass(text.data(), text.size());
    names.push_back("class " + std::to_string(c));
  }
  if (status.ok() && classes > 0) {
    std::vector<float> views = values.Next(2 * kDim);
    status = network->AddShot(0, views.data(), views.size(), 2);
    if (status.ok()) status = network->AddCorrection(classes - 1, views.data(), kDim, 1);
  }
  for (int i = 0; i < 3 * classes && status.ok(); ++i) {
    std::vector<float> views = values.Next(kDim);
    dualmem::StepOutput step;
    status = network->Step(views.data(), views.size(), 1, 1000.0 * i, true, &step);
  }
  dualmem::ModelFingerprint fingerprint;
  fingerprint.bytes.fill(0xAB);
  if (status.ok()) status = dualmem::SaveSnapshot(*network, fingerprint, names, out);
  return status.ok() ? "" : status.message;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_FOLDER\n", argv[0]);
    return 2;
  }
  const std::string folder = argv[1];
  struct Seed {
    const char* name;
    dualmem::Precision precision;
    int classes;
  };
  const Seed seeds[] = {
      {"float32", dualmem::Precision::kFloat32, 3},
      {"float16", dualmem::Precision::kFloat16, 3},
      {"int8", dualmem::Precision::kInt8, 3},
      {"empty", dualmem::Precision::kFloat32, 0},
  };
  for (const Seed& seed : seeds) {
    std::vector<uint8_t> bytes;
    std::string error = Build(seed.precision, seed.classes, &bytes);
    std::string path = folder + "/seed-" + seed.name + ".snapshot";
    if (!error.empty() || !Write(path, bytes)) {
      std::fprintf(stderr, "snapshot_fuzz_seeds: %s: %s\n", path.c_str(),
                   error.empty() ? "could not write the file" : error.c_str());
      return 1;
    }
  }
  return 0;
}
