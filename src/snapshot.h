// Versioned binary snapshot of a DualMemoryNetwork: its configuration, the
// class table and every memory slot with its metadata, bit for bit, so that
// save -> load -> save yields the same bytes and a loaded network steps
// exactly like the saved one.
//
// Format version 1. Integers are unsigned and floats IEEE 754, all
// little-endian, with no padding. Offsets are in bytes.
//
//   0   8    magic "DMNSNAP\0"
//   8   4    format version (1)
//   12  8    total size of the snapshot, checksum included
//   20  32   model fingerprint, e.g. SHA-256 over the model files, tokenizer
//            and preprocessing config; the core stores and compares it only
//   52  4    dim, 1 to kMaxSnapshotDim
//   56  1    precision of stored slots: 0 float32, 1 float16, 2 int8
//   57  3    reserved, zero
//   60  4    capacity, dynamic slots per class, 1 to kMaxSnapshotSlots
//   64  24   float32 logit_scale, beta, selection_ratio, weight_text,
//            weight_dynamic, weight_static (DmnConfig)
//   88  8    next sequence number, above every stored one
//   96  4    class count, up to kMaxSnapshotClasses
//   100      classes, each:
//              4       name length in bytes, up to kMaxClassNameBytes
//              n       name, UTF-8
//              4 dim   text embedding, float32, unit length
//              8       sequence number of the class's text slot
//              4       slot count, up to kMaxSnapshotSlots, text slot excluded
//              then each slot, in the network's order:
//                1     source: 1 shot, 2 dynamic, 3 correction
//                1     reserved, zero
//                2     view index within its image, 0 the original
//                8     entropy (nats), float64
//                8     timestamp (ms since the epoch), float64
//                8     sequence number; the views of one image share it
//                4     int8 scale as float32, exactly 1 for other precisions
//                dim   elements of `precision` (4, 2 or 1 bytes each)
//   end-4 4  CRC-32C of every byte before it
//
// Errors: kParseError for a wrong magic, a truncated or overlong snapshot, a
// checksum mismatch, an unknown enum value or invalid UTF-8; kUnsupported for
// a version newer than this build reads; kFailedPrecondition for another
// model's fingerprint; kLimitExceeded for a count or size above the maxima
// below; kInvalidArgument for values out of range (non-finite floats, vectors
// that are not unit length, sequence numbers out of order). Messages start
// with "snapshot byte N (field): ".
#ifndef DUALMEM_SNAPSHOT_H_
#define DUALMEM_SNAPSHOT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dmn.h"
#include "status.h"

namespace dualmem {

constexpr uint32_t kSnapshotVersion = 1;
constexpr int kMaxSnapshotDim = 8192;
constexpr int kMaxSnapshotClasses = 65536;
constexpr int kMaxClassNameBytes = 1024;
// Slots per class besides the text slot; its Gram matrix is then 256 MiB.
constexpr int kMaxSnapshotSlots = 8192;
// Bytes that the loaded network may take (DualMemoryNetwork::MemoryBytes),
// checked before each class is allocated.
constexpr size_t kMaxSnapshotMemoryBytes = size_t{1} << 30;

// 32 bytes that name the model a memory belongs to.
struct ModelFingerprint {
  std::array<uint8_t, 32> bytes{};
};

// Parses 64 hex digits (either case) into a fingerprint.
Status ParseFingerprintHex(std::string_view hex, ModelFingerprint* out);
// Returns the fingerprint as 64 lowercase hex digits.
std::string FingerprintHex(const ModelFingerprint& fingerprint);

// NOTE: a trained adapter (DualMemoryNetwork::Train) is not part of format
// version 1, so a loaded network reads out training-free until it is
// trained again.
//
// Serializes `network` into `out` (replacing its contents). `class_names`
// has one UTF-8 name per class, or is empty to store empty names. Fails
// with kInvalidArgument or kLimitExceeded, leaving `out` unchanged, when a
// name or count does not fit the format.
Status SaveSnapshot(const DualMemoryNetwork& network, const ModelFingerprint& fingerprint,
                    const std::vector<std::string>& class_names, std::vector<uint8_t>* out);

struct LoadedSnapshot {
  std::unique_ptr<DualMemoryNetwork> network;  // null after a failed load
  std::vector<std::string> class_names;
  ModelFingerprint fingerprint;
  // Where a failed load stopped: the byte offset and field name that the
  // message starts with (SIZE_MAX and "" after a success).
  size_t error_offset = SIZE_MAX;
  std::string error_field;
};

// Parses `size` bytes into a new network. With `expected_fingerprint`
// non-null, a snapshot of another model fails with kFailedPrecondition.
// Nothing outside `out` changes, so a caller keeps its live network until
// the load succeeds.
Status LoadSnapshot(const uint8_t* data, size_t size,
                    const ModelFingerprint* expected_fingerprint, LoadedSnapshot* out);

}  // namespace dualmem

#endif  // DUALMEM_SNAPSHOT_H_
