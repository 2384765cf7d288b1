// libFuzzer target for the snapshot parser. Each input is parsed twice: as
// given, which mostly exercises the envelope (magic, version, size,
// checksum), and with its size and checksum fixed up, so that mutations
// reach the field parser. Whatever parses must serialize back to the same
// bytes and step without crashing.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "checksum.h"
#include "dmn.h"
#include "snapshot.h"

namespace {

void Fail(const char* message) {
  std::fprintf(stderr, "snapshot_fuzz: %s\n", message);
  std::abort();
}

void ParseAndCheck(const uint8_t* data, size_t size) {
  dualmem::LoadedSnapshot loaded;
  dualmem::Status status = dualmem::LoadSnapshot(data, size, nullptr, &loaded);
  if (!status.ok()) {
    if (loaded.network != nullptr) Fail("a failed load returned a network");
    if (status.message.rfind("snapshot byte ", 0) != 0) Fail("an error message has no offset");
    return;
  }

  // Save(Load(bytes)) == bytes: the format has one encoding per network.
  std::vector<uint8_t> again;
  status = dualmem::SaveSnapshot(*loaded.network, loaded.fingerprint, loaded.class_names, &again);
  if (!status.ok()) Fail(status.message.c_str());
  if (again.size() != size || !std::equal(again.begin(), again.end(), data)) {
    Fail("re-serializing a loaded snapshot changed its bytes");
  }

  // A loaded network must step; its own first class embedding is a valid
  // query. Only the weights may make a step invalid (static weight alone
  // and no shots).
  dualmem::DualMemoryNetwork& network = *loaded.network;
  if (network.num_classes() == 0) return;
  const float* query = network.class_embedding(0);
  dualmem::StepOutput out;
  status = network.Step(query, network.dim(), 1, 0.0, true, &out);
  if (!status.ok() && status.code != dualmem::StatusCode::kInvalidArgument) {
    Fail(status.message.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ParseAndCheck(data, size);

  // The same bytes with a correct total size (offset 12) and CRC-32C trailer.
  constexpr size_t kMinimumSize = 104;
  if (size < kMinimumSize) return 0;
  std::vector<uint8_t> sealed(data, data + size);
  for (int i = 0; i < 8; ++i) sealed[12 + i] = static_cast<uint8_t>(uint64_t{size} >> (8 * i));
  uint32_t crc = dualmem::Crc32c(sealed.data(), size - 4);
  for (int i = 0; i < 4; ++i) sealed[size - 4 + i] = static_cast<uint8_t>(crc >> (8 * i));
  ParseAndCheck(sealed.data(), sealed.size());
  return 0;
}
