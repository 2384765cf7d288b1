#include "snapshot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

#include "checksum.h"

namespace dualmem {
namespace {

constexpr char kMagic[8] = {'D', 'M', 'N', 'S', 'N', 'A', 'P', '\0'};
constexpr size_t kHeaderBytes = 100;  // up to and including the class count
constexpr size_t kChecksumBytes = 4;
constexpr size_t kFingerprintOffset = 20;
constexpr size_t kSlotHeaderBytes = 32;  // slot fields before the vector

// Whether the host stores integers and floats little-endian, as the format
// does, so that vectors can be copied whole. GCC and Clang define these
// macros, and other compilers take the byte-by-byte path.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr bool kHostIsLittleEndian = true;
#else
constexpr bool kHostIsLittleEndian = false;
#endif

std::string FormatFloat(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);
  return buffer;
}

// Returns the index of the first byte that breaks UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or `size`.
size_t FindInvalidUtf8(const uint8_t* text, size_t size) {
  size_t i = 0;
  while (i < size) {
    uint8_t lead = text[i];
    size_t length = 0;
    uint8_t low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (lead < 0x80) {
      length = 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;   // overlong below U+0800
      if (lead == 0xED) high = 0x9F;  // surrogates U+D800 to U+DFFF
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;   // overlong below U+10000
      if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (length > size - i) return i;
    for (size_t k = 1; k < length; ++k) {
      uint8_t byte = text[i + k];
      uint8_t min = k == 1 ? low : 0x80, max = k == 1 ? high : 0xBF;
      if (byte < min || byte > max) return i;
    }
    i += length;
  }
  return size;
}

// Memory that a class of `slots` stored slots (its text slot included)
// takes, as DualMemoryNetwork::MemoryBytes counts it for a network without
// a trained adapter.
size_t ClassMemoryBytes(int dim, Precision precision, size_t slots) {
  size_t per_slot = dim * PrecisionBytes(precision) + sizeof(SlotInfo);
  if (precision == Precision::kInt8) per_slot += sizeof(float);
  return slots * per_slot + slots * slots * sizeof(float) + dim * sizeof(float);
}

// Appends little-endian fields to a byte vector.
class Writer {
 public:
  explicit Writer(std::vector<uint8_t>* bytes) : bytes_(bytes) {}

  void U8(uint8_t value) { bytes_->push_back(value); }
  void U16(uint16_t value) { Unsigned(value, 2); }
  void U32(uint32_t value) { Unsigned(value, 4); }
  void U64(uint64_t value) { Unsigned(value, 8); }
  void F32(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    U32(bits);
  }
  void F64(double value) {
    uint64_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    U64(bits);
  }
  void Bytes(const void* data, size_t size) {
    const uint8_t* begin = static_cast<const uint8_t*>(data);
    bytes_->insert(bytes_->end(), begin, begin + size);
  }
  // Writes `dim` elements of a vector in the bank's stored form.
  void Vector(const void* stored, int dim, Precision precision) {
    if (kHostIsLittleEndian) {
      Bytes(stored, dim * PrecisionBytes(precision));
      return;
    }
    switch (precision) {
      case Precision::kFloat32:
        for (int i = 0; i < dim; ++i) F32(static_cast<const float*>(stored)[i]);
        return;
      case Precision::kFloat16:
        for (int i = 0; i < dim; ++i) U16(static_cast<const uint16_t*>(stored)[i]);
        return;
      case Precision::kInt8:
        Bytes(stored, dim);
        return;
    }
  }

 private:
  void Unsigned(uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) bytes_->push_back(static_cast<uint8_t>(value >> (8 * i)));
  }

  std::vector<uint8_t>* bytes_;
};

// Names a field in error messages: "class C slot S name", "class C name" or
// "name". The text is built only when an error reports it, because a load
// reads tens of thousands of slots and fails at most once.
struct Field {
  Field(const char* name) : name(name) {}  // NOLINT: plain names convert implicitly
  Field(int class_index, const char* name) : class_index(class_index), name(name) {}
  Field(int class_index, int slot, const char* name)
      : class_index(class_index), slot(slot), name(name) {}

  std::string ToString() const {
    std::string text;
    if (class_index >= 0) text = "class " + std::to_string(class_index);
    if (slot >= 0) text += " slot " + std::to_string(slot);
    if (*name != '\0') text += text.empty() ? name : std::string(" ") + name;
    return text;
  }

  int class_index = -1;
  int slot = -1;
  const char* name;  // a string literal; empty names the whole class or slot
};

// Reads little-endian fields, checking each against the bytes that remain
// before the checksum. Every error names the offset and field where it
// happened and records them for LoadedSnapshot.
class Reader {
 public:
  Reader(const uint8_t* data, size_t end) : data_(data), end_(end) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return end_ - offset_; }
  const uint8_t* here() const { return data_ + offset_; }
  size_t error_offset() const { return error_offset_; }
  const std::string& error_field() const { return error_field_; }

  // Builds an error located at `offset`.
  Status ErrorAt(StatusCode code, size_t offset, const Field& field,
                 const std::string& detail) {
    error_offset_ = offset;
    error_field_ = field.ToString();
    return MakeStatus(code, "snapshot byte " + std::to_string(offset) + " (" + error_field_ +
                                "): " + detail);
  }
  Status Error(StatusCode code, const Field& field, const std::string& detail) {
    return ErrorAt(code, offset_, field, detail);
  }

  Status Need(size_t bytes, const Field& field) {
    if (bytes <= remaining()) return Status::Ok();
    return Error(StatusCode::kParseError, field,
                 "needs " + std::to_string(bytes) + " bytes but only " +
                     std::to_string(remaining()) + " remain before the checksum; the snapshot "
                     "is truncated or a count is corrupt");
  }
  Status U8(const Field& field, uint8_t* out) {
    DUALMEM_RETURN_IF_ERROR(Need(1, field));
    *out = data_[offset_++];
    return Status::Ok();
  }
  Status U16(const Field& field, uint16_t* out) {
    uint64_t value = 0;
    DUALMEM_RETURN_IF_ERROR(Unsigned(field, 2, &value));
    *out = static_cast<uint16_t>(value);
    return Status::Ok();
  }
  Status U32(const Field& field, uint32_t* out) {
    uint64_t value = 0;
    DUALMEM_RETURN_IF_ERROR(Unsigned(field, 4, &value));
    *out = static_cast<uint32_t>(value);
    return Status::Ok();
  }
  Status U64(const Field& field, uint64_t* out) { return Unsigned(field, 8, out); }
  Status F32(const Field& field, float* out) {
    uint32_t bits;
    DUALMEM_RETURN_IF_ERROR(U32(field, &bits));
    std::memcpy(out, &bits, sizeof(bits));
    return Status::Ok();
  }
  Status F64(const Field& field, double* out) {
    uint64_t bits;
    DUALMEM_RETURN_IF_ERROR(U64(field, &bits));
    std::memcpy(out, &bits, sizeof(bits));
    return Status::Ok();
  }
  // Reads `dim` elements of `precision` into `out` in the bank's stored form.
  Status Vector(const Field& field, int dim, Precision precision,
                std::vector<uint8_t>* out) {
    size_t element = PrecisionBytes(precision);
    DUALMEM_RETURN_IF_ERROR(Need(dim * element, field));
    out->resize(dim * element);
    if (element == 1 || kHostIsLittleEndian) {
      // The stored form is the file's byte order here, so one copy does.
      std::memcpy(out->data(), data_ + offset_, dim * element);
      offset_ += dim * element;
      return Status::Ok();
    }
    for (int i = 0; i < dim; ++i) {
      const uint8_t* source = data_ + offset_ + i * element;
      if (element == 4) {
        uint32_t bits = Decode(source, 4);
        std::memcpy(out->data() + i * 4, &bits, 4);
      } else if (element == 2) {
        uint16_t bits = static_cast<uint16_t>(Decode(source, 2));
        std::memcpy(out->data() + i * 2, &bits, 2);
      } else {
        (*out)[i] = *source;
      }
    }
    offset_ += dim * element;
    return Status::Ok();
  }
  void Skip(size_t bytes) { offset_ += bytes; }

 private:
  static uint64_t Decode(const uint8_t* source, int bytes) {
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(source[i]) << (8 * i);
    return value;
  }
  Status Unsigned(const Field& field, int bytes, uint64_t* out) {
    DUALMEM_RETURN_IF_ERROR(Need(bytes, field));
    *out = Decode(data_ + offset_, bytes);
    offset_ += bytes;
    return Status::Ok();
  }

  const uint8_t* data_;
  size_t end_;
  size_t offset_ = 0;
  size_t error_offset_ = SIZE_MAX;
  std::string error_field_;
};

Status CheckName(const std::string& name, int class_index) {
  if (name.size() > static_cast<size_t>(kMaxClassNameBytes)) {
    return MakeStatus(StatusCode::kLimitExceeded,
                      "SaveSnapshot: class " + std::to_string(class_index) + " name has " +
                          std::to_string(name.size()) + " bytes, expected at most " +
                          std::to_string(kMaxClassNameBytes));
  }
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(name.data());
  size_t bad = FindInvalidUtf8(bytes, name.size());
  if (bad != name.size()) {
    return InvalidArgument("SaveSnapshot: class " + std::to_string(class_index) +
                           " name is not valid UTF-8 at byte " + std::to_string(bad));
  }
  return Status::Ok();
}

// Checks that the network fits the format's limits, so that every saved
// snapshot loads again.
Status CheckSavable(const DualMemoryNetwork& network,
                    const std::vector<std::string>& class_names) {
  const MemoryBank& bank = network.bank();
  auto limit = [](const std::string& what, size_t value, size_t max) {
    return MakeStatus(StatusCode::kLimitExceeded,
                      "SaveSnapshot: " + what + " is " + std::to_string(value) +
                          ", the snapshot format allows at most " + std::to_string(max));
  };
  if (network.dim() > kMaxSnapshotDim) return limit("dim", network.dim(), kMaxSnapshotDim);
  if (network.config().capacity > kMaxSnapshotSlots) {
    return limit("capacity", network.config().capacity, kMaxSnapshotSlots);
  }
  if (network.num_classes() > kMaxSnapshotClasses) {
    return limit("the class count", network.num_classes(), kMaxSnapshotClasses);
  }
  if (!class_names.empty() && class_names.size() != static_cast<size_t>(network.num_classes())) {
    return InvalidArgument("SaveSnapshot: class_names has " + std::to_string(class_names.size()) +
                           " names, expected one per class (" +
                           std::to_string(network.num_classes()) + ") or none");
  }

  size_t memory = 0;
  for (int c = 0; c < network.num_classes(); ++c) {
    if (!class_names.empty()) DUALMEM_RETURN_IF_ERROR(CheckName(class_names[c], c));
    int slots = bank.slot_count(c) - 1;
    if (slots > kMaxSnapshotSlots) {
      return limit("the slot count of class " + std::to_string(c), slots, kMaxSnapshotSlots);
    }
    if (bank.slot_info(c, 0).source != SlotSource::kText) {
      return MakeStatus(StatusCode::kInternal,
                        "SaveSnapshot: slot 0 of class " + std::to_string(c) +
                            " is not the text slot");
    }
    memory += ClassMemoryBytes(network.dim(), network.config().precision, slots + 1);
  }
  if (memory > kMaxSnapshotMemoryBytes) {
    return limit("the memory of the network in bytes", memory, kMaxSnapshotMemoryBytes);
  }
  return Status::Ok();
}

// Checks magic, version, total size and checksum, in that order, so that a
// newer version is reported as such even when its layout differs.
Status ReadEnvelope(const uint8_t* data, size_t size, Reader* reader) {
  if (size < sizeof(kMagic) || std::memcmp(data, kMagic, sizeof(kMagic)) != 0) {
    return reader->ErrorAt(StatusCode::kParseError, 0, "magic",
                           "not a dualmem memory snapshot, expected the bytes \"DMNSNAP\\0\"");
  }
  auto truncated = [&](const char* field) {
    return reader->ErrorAt(StatusCode::kParseError, size, field,
                           "the snapshot has " + std::to_string(size) + " bytes, expected at least " +
                               std::to_string(kHeaderBytes + kChecksumBytes) +
                               "; it is truncated");
  };
  if (size < 12) return truncated("version");
  uint32_t version = 0;
  for (int i = 0; i < 4; ++i) version |= static_cast<uint32_t>(data[8 + i]) << (8 * i);
  if (version > kSnapshotVersion) {
    return reader->ErrorAt(StatusCode::kUnsupported, 8, "version",
                           "format version " + std::to_string(version) +
                               " is newer than this build reads (" +
                               std::to_string(kSnapshotVersion) + "); update dualmem");
  }
  if (version == 0) {
    return reader->ErrorAt(StatusCode::kParseError, 8, "version",
                           "format version is 0, expected 1 to " +
                               std::to_string(kSnapshotVersion));
  }

  if (size < kHeaderBytes + kChecksumBytes) return truncated("header");
  reader->Skip(12);
  uint64_t total = 0;
  DUALMEM_RETURN_IF_ERROR(reader->U64("total size", &total));
  if (total != size) {
    std::string what = total > size ? "; it is truncated" : "; bytes follow its end";
    return reader->ErrorAt(StatusCode::kParseError, 12, "total size",
                           "the header declares " + std::to_string(total) + " bytes, got " +
                               std::to_string(size) + what);
  }

  size_t body = size - kChecksumBytes;
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) stored |= static_cast<uint32_t>(data[body + i]) << (8 * i);
  uint32_t computed = Crc32c(data, body);
  if (stored != computed) {
    char detail[128];
    std::snprintf(detail, sizeof(detail),
                  "CRC-32C is 0x%08x, the bytes before it give 0x%08x; the snapshot is corrupt",
                  stored, computed);
    return reader->ErrorAt(StatusCode::kParseError, body, "checksum", detail);
  }
  return Status::Ok();
}

Status ReadFingerprint(const ModelFingerprint* expected, Reader* reader,
                       ModelFingerprint* fingerprint) {
  std::memcpy(fingerprint->bytes.data(), reader->here(), fingerprint->bytes.size());
  reader->Skip(fingerprint->bytes.size());
  if (expected == nullptr || expected->bytes == fingerprint->bytes) return Status::Ok();
  return reader->ErrorAt(StatusCode::kFailedPrecondition, kFingerprintOffset, "fingerprint",
                         "the memory was written for model fingerprint " +
                             FingerprintHex(*fingerprint) + ", this model is " +
                             FingerprintHex(*expected) +
                             "; clear the stored memory or load the model it was written for");
}

Status ReadConfig(Reader* reader, int* dim, DmnConfig* config) {
  uint32_t dim_value = 0;
  DUALMEM_RETURN_IF_ERROR(reader->U32("dim", &dim_value));
  if (dim_value == 0 || dim_value > static_cast<uint32_t>(kMaxSnapshotDim)) {
    StatusCode code = dim_value == 0 ? StatusCode::kInvalidArgument : StatusCode::kLimitExceeded;
    return reader->ErrorAt(code, reader->offset() - 4, "dim",
                           "dim is " + std::to_string(dim_value) + ", expected 1 to " +
                               std::to_string(kMaxSnapshotDim));
  }
  *dim = static_cast<int>(dim_value);

  uint8_t precision = 0;
  DUALMEM_RETURN_IF_ERROR(reader->U8("precision", &precision));
  if (precision > static_cast<uint8_t>(Precision::kInt8)) {
    return reader->ErrorAt(StatusCode::kParseError, reader->offset() - 1, "precision",
                           "precision is " + std::to_string(precision) +
                               ", expected 0 (float32), 1 (float16) or 2 (int8)");
  }
  config->precision = static_cast<Precision>(precision);
  for (int i = 0; i < 3; ++i) {
    uint8_t reserved = 0;
    DUALMEM_RETURN_IF_ERROR(reader->U8("reserved", &reserved));
    if (reserved != 0) {
      return reader->ErrorAt(StatusCode::kParseError, reader->offset() - 1, "reserved",
                             "reserved byte is " + std::to_string(reserved) + ", expected 0");
    }
  }

  uint32_t capacity = 0;
  DUALMEM_RETURN_IF_ERROR(reader->U32("capacity", &capacity));
  if (capacity == 0 || capacity > static_cast<uint32_t>(kMaxSnapshotSlots)) {
    StatusCode code = capacity == 0 ? StatusCode::kInvalidArgument : StatusCode::kLimitExceeded;
    return reader->ErrorAt(code, reader->offset() - 4, "capacity",
                           "capacity is " + std::to_string(capacity) + ", expected 1 to " +
                               std::to_string(kMaxSnapshotSlots));
  }
  config->capacity = static_cast<int>(capacity);

  // Each float is checked where it is read, so an error points at it.
  struct FloatField {
    const char* name;
    float* value;
    float min;           // lower bound of the allowed values
    bool min_exclusive;  // true when `min` itself is not allowed
  };
  const FloatField fields[] = {
      {"logit_scale", &config->logit_scale, 0.0f, true},
      {"beta", &config->beta, 0.0f, true},
      {"selection_ratio", &config->selection_ratio, 0.0f, true},
      {"weight_text", &config->weight_text, 0.0f, false},
      {"weight_dynamic", &config->weight_dynamic, 0.0f, false},
      {"weight_static", &config->weight_static, 0.0f, false},
  };
  for (const FloatField& field : fields) {
    DUALMEM_RETURN_IF_ERROR(reader->F32(field.name, field.value));
    float value = *field.value;
    bool in_range = std::isfinite(value) &&
                    (field.min_exclusive ? value > field.min : value >= field.min);
    if (field.value == &config->selection_ratio) in_range = in_range && value <= 1.0f;
    if (!in_range) {
      std::string expected = field.value == &config->selection_ratio ? "a value in (0, 1]"
                             : field.min_exclusive                   ? "a finite value > 0"
                                                                     : "a finite value >= 0";
      return reader->ErrorAt(StatusCode::kInvalidArgument, reader->offset() - 4, field.name,
                             std::string(field.name) + " is " + FormatFloat(value) +
                                 ", expected " + expected);
    }
  }
  if (config->weight_text + config->weight_dynamic + config->weight_static <= 0.0f) {
    return reader->ErrorAt(StatusCode::kInvalidArgument, reader->offset() - 12, "weights",
                           "weights text, dynamic and static are all 0, expected at least one > 0");
  }
  return Status::Ok();
}

// State carried from class to class while loading.
struct LoadState {
  int dim = 0;
  Precision precision = Precision::kFloat32;
  uint64_t next_sequence = 0;
  size_t memory_bytes = 0;
  // Sequence numbers of stored items with the offsets they were read from.
  // Items are text slots, first views of shots and corrections, and dynamic
  // slots, and no two items share a number.
  std::vector<std::pair<uint64_t, size_t>> sequences;
  std::vector<uint8_t> vector;  // one vector in stored form
};

Status ReadSequence(Reader* reader, const Field& field, LoadState* state, bool is_item,
                    uint64_t* out) {
  size_t offset = reader->offset();
  DUALMEM_RETURN_IF_ERROR(reader->U64(field, out));
  if (*out >= state->next_sequence) {
    return reader->ErrorAt(StatusCode::kInvalidArgument, offset, field,
                           "sequence number " + std::to_string(*out) +
                               " is not below the next sequence number " +
                               std::to_string(state->next_sequence));
  }
  if (is_item) state->sequences.emplace_back(*out, offset);
  return Status::Ok();
}

Status ReadSlot(int class_index, int slot, Reader* reader, LoadState* state,
                DualMemoryNetwork* network) {
  auto field = [&](const char* name) { return Field(class_index, slot, name); };
  size_t start = reader->offset();
  SlotInfo info;

  uint8_t source = 0, reserved = 0;
  DUALMEM_RETURN_IF_ERROR(reader->U8(field("source"), &source));
  if (source < static_cast<uint8_t>(SlotSource::kShot) ||
      source > static_cast<uint8_t>(SlotSource::kCorrection)) {
    return reader->ErrorAt(StatusCode::kParseError, start, field("source"),
                           "source is " + std::to_string(source) +
                               ", expected 1 (shot), 2 (dynamic) or 3 (correction)");
  }
  info.source = static_cast<SlotSource>(source);
  DUALMEM_RETURN_IF_ERROR(reader->U8(field("reserved"), &reserved));
  if (reserved != 0) {
    return reader->ErrorAt(StatusCode::kParseError, start + 1, field("reserved"),
                           "reserved byte is " + std::to_string(reserved) + ", expected 0");
  }
  DUALMEM_RETURN_IF_ERROR(reader->U16(field("view"), &info.view));
  size_t entropy_offset = reader->offset();
  DUALMEM_RETURN_IF_ERROR(reader->F64(field("entropy"), &info.entropy));
  if (!std::isfinite(info.entropy)) {
    return reader->ErrorAt(StatusCode::kInvalidArgument, entropy_offset, field("entropy"),
                           "entropy is " + FormatFloat(info.entropy) + ", expected a finite value");
  }
  size_t timestamp_offset = reader->offset();
  DUALMEM_RETURN_IF_ERROR(reader->F64(field("timestamp"), &info.timestamp_ms));
  if (!std::isfinite(info.timestamp_ms)) {
    return reader->ErrorAt(StatusCode::kInvalidArgument, timestamp_offset, field("timestamp"),
                           "timestamp is " + FormatFloat(info.timestamp_ms) +
                               ", expected a finite number of milliseconds");
  }
  bool is_item = info.source == SlotSource::kDynamic || info.view == 0;
  DUALMEM_RETURN_IF_ERROR(
      ReadSequence(reader, field("sequence"), state, is_item, &info.sequence));
  float scale = 0.0f;
  DUALMEM_RETURN_IF_ERROR(reader->F32(field("scale"), &scale));
  DUALMEM_RETURN_IF_ERROR(
      reader->Vector(field("vector"), state->dim, state->precision, &state->vector));

  // The network checks the view order, capacity, scale and vector norm.
  Status status = network->RestoreSlot(class_index, state->vector.data(), scale, info);
  if (!status.ok()) return reader->ErrorAt(status.code, start, field(""), status.message);
  return Status::Ok();
}

Status ReadClass(int class_index, Reader* reader, LoadState* state, DualMemoryNetwork* network,
                 std::string* name) {
  auto field = [&](const char* name) { return Field(class_index, name); };

  // Name.
  size_t length_offset = reader->offset();
  uint32_t name_bytes = 0;
  DUALMEM_RETURN_IF_ERROR(reader->U32(field("name length"), &name_bytes));
  if (name_bytes > static_cast<uint32_t>(kMaxClassNameBytes)) {
    return reader->ErrorAt(StatusCode::kLimitExceeded, length_offset, field("name length"),
                           "name length is " + std::to_string(name_bytes) +
                               " bytes, expected at most " + std::to_string(kMaxClassNameBytes));
  }
  DUALMEM_RETURN_IF_ERROR(reader->Need(name_bytes, field("name")));
  size_t bad = FindInvalidUtf8(reader->here(), name_bytes);
  if (bad != name_bytes) {
    return reader->ErrorAt(StatusCode::kParseError, reader->offset() + bad, field("name"),
                           "name is not valid UTF-8 at its byte " + std::to_string(bad));
  }
  name->assign(reinterpret_cast<const char*>(reader->here()), name_bytes);
  reader->Skip(name_bytes);

  // Text embedding and its slot.
  size_t text_offset = reader->offset();
  DUALMEM_RETURN_IF_ERROR(
      reader->Vector(field("text embedding"), state->dim, Precision::kFloat32, &state->vector));
  std::vector<float> text(state->dim);
  std::memcpy(text.data(), state->vector.data(), text.size() * sizeof(float));
  uint64_t text_sequence = 0;
  DUALMEM_RETURN_IF_ERROR(
      ReadSequence(reader, field("text sequence"), state, true, &text_sequence));

  // Slot count, checked against the bytes left and the memory budget before
  // anything is allocated.
  size_t count_offset = reader->offset();
  uint32_t slot_count = 0;
  DUALMEM_RETURN_IF_ERROR(reader->U32(field("slot count"), &slot_count));
  if (slot_count > static_cast<uint32_t>(kMaxSnapshotSlots)) {
    return reader->ErrorAt(StatusCode::kLimitExceeded, count_offset, field("slot count"),
                           "slot count is " + std::to_string(slot_count) +
                               ", expected at most " + std::to_string(kMaxSnapshotSlots));
  }
  size_t slot_bytes = kSlotHeaderBytes + state->dim * PrecisionBytes(state->precision);
  if (slot_count * slot_bytes > reader->remaining()) {
    return reader->ErrorAt(StatusCode::kParseError, count_offset, field("slot count"),
                           "slot count " + std::to_string(slot_count) + " needs " +
                               std::to_string(slot_count * slot_bytes) + " bytes but only " +
                               std::to_string(reader->remaining()) +
                               " remain; the snapshot is truncated or the count is corrupt");
  }
  state->memory_bytes += ClassMemoryBytes(state->dim, state->precision, slot_count + 1);
  if (state->memory_bytes > kMaxSnapshotMemoryBytes) {
    return reader->ErrorAt(StatusCode::kLimitExceeded, count_offset, field("slot count"),
                           "the network would take " + std::to_string(state->memory_bytes) +
                               " bytes once this class is loaded, expected at most " +
                               std::to_string(kMaxSnapshotMemoryBytes));
  }

  Status status = network->RestoreClass(text.data(), text.size(), text_sequence,
                                        static_cast<int>(slot_count));
  if (!status.ok()) {
    return reader->ErrorAt(status.code, text_offset, field("text embedding"), status.message);
  }
  for (uint32_t slot = 0; slot < slot_count; ++slot) {
    DUALMEM_RETURN_IF_ERROR(ReadSlot(class_index, static_cast<int>(slot), reader, state, network));
  }
  return Status::Ok();
}

// Reads everything after the fingerprint into `out`.
Status ReadBody(Reader* reader, LoadedSnapshot* out) {
  LoadState state;
  DmnConfig config;
  DUALMEM_RETURN_IF_ERROR(ReadConfig(reader, &state.dim, &config));
  state.precision = config.precision;
  std::unique_ptr<DualMemoryNetwork> network;
  Status status = DualMemoryNetwork::Create(state.dim, config, &network);
  if (!status.ok()) return reader->ErrorAt(status.code, 52, "config", status.message);

  DUALMEM_RETURN_IF_ERROR(reader->U64("next sequence", &state.next_sequence));
  size_t count_offset = reader->offset();
  uint32_t class_count = 0;
  DUALMEM_RETURN_IF_ERROR(reader->U32("class count", &class_count));
  if (class_count > static_cast<uint32_t>(kMaxSnapshotClasses)) {
    return reader->ErrorAt(StatusCode::kLimitExceeded, count_offset, "class count",
                           "class count is " + std::to_string(class_count) +
                               ", expected at most " + std::to_string(kMaxSnapshotClasses));
  }
  // Each class takes at least its name length, text embedding, text
  // sequence and slot count.
  size_t min_class_bytes = 4 + state.dim * sizeof(float) + 8 + 4;
  if (class_count * min_class_bytes > reader->remaining()) {
    return reader->ErrorAt(StatusCode::kParseError, count_offset, "class count",
                           "class count " + std::to_string(class_count) + " needs at least " +
                               std::to_string(class_count * min_class_bytes) +
                               " bytes but only " + std::to_string(reader->remaining()) +
                               " remain; the snapshot is truncated or the count is corrupt");
  }

  std::vector<std::string> names(class_count);
  for (uint32_t c = 0; c < class_count; ++c) {
    DUALMEM_RETURN_IF_ERROR(ReadClass(static_cast<int>(c), reader, &state, network.get(), &names[c]));
  }
  if (reader->remaining() != 0) {
    return reader->Error(StatusCode::kParseError, "end",
                         std::to_string(reader->remaining()) +
                             " bytes follow the last class, expected the checksum");
  }

  // Sequence numbers name items uniquely; report the later of two equal ones.
  std::vector<std::pair<uint64_t, size_t>>& sequences = state.sequences;
  std::sort(sequences.begin(), sequences.end());
  for (size_t i = 1; i < sequences.size(); ++i) {
    if (sequences[i].first == sequences[i - 1].first) {
      return reader->ErrorAt(StatusCode::kInvalidArgument, sequences[i].second, "sequence",
                             "sequence number " + std::to_string(sequences[i].first) +
                                 " is also used at byte " + std::to_string(sequences[i - 1].second) +
                                 ", expected each stored item to have its own");
    }
  }
  status = network->SetNextSequence(state.next_sequence);
  if (!status.ok()) return reader->ErrorAt(status.code, 88, "next sequence", status.message);

  out->network = std::move(network);
  out->class_names = std::move(names);
  return Status::Ok();
}

}  // namespace

Status ParseFingerprintHex(std::string_view hex, ModelFingerprint* out) {
  if (out == nullptr) return InvalidArgument("ParseFingerprintHex: out is null");
  if (hex.size() != 2 * out->bytes.size()) {
    return InvalidArgument("model fingerprint has " + std::to_string(hex.size()) +
                           " characters, expected 64 hex digits (a SHA-256)");
  }
  ModelFingerprint parsed;
  for (size_t i = 0; i < hex.size(); ++i) {
    char c = hex[i];
    int digit = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
    if (digit < 0) {
      return InvalidArgument("model fingerprint character " + std::to_string(i) + " is '" +
                             std::string(1, c) + "', expected a hex digit");
    }
    parsed.bytes[i / 2] = static_cast<uint8_t>(parsed.bytes[i / 2] * 16 + digit);
  }
  *out = parsed;
  return Status::Ok();
}

std::string FingerprintHex(const ModelFingerprint& fingerprint) {
  static const char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * fingerprint.bytes.size());
  for (uint8_t byte : fingerprint.bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xF]);
  }
  return hex;
}

Status SaveSnapshot(const DualMemoryNetwork& network, const ModelFingerprint& fingerprint,
                    const std::vector<std::string>& class_names, std::vector<uint8_t>* out) {
  if (out == nullptr) return InvalidArgument("SaveSnapshot: out is null");
  DUALMEM_RETURN_IF_ERROR(CheckSavable(network, class_names));
  const MemoryBank& bank = network.bank();
  const DmnConfig& config = network.config();
  const int dim = network.dim();

  // The size is known, so the vector is allocated once instead of doubling
  // through copies of a snapshot that can take a hundred megabytes.
  size_t slot_bytes = kSlotHeaderBytes + dim * PrecisionBytes(config.precision);
  size_t size = kHeaderBytes + kChecksumBytes;
  for (int c = 0; c < network.num_classes(); ++c) {
    size_t name_bytes = class_names.empty() ? 0 : class_names[c].size();
    size += 4 + name_bytes + dim * sizeof(float) + 8 + 4 + (bank.slot_count(c) - 1) * slot_bytes;
  }

  // Header and configuration; the total size is filled in at the end.
  std::vector<uint8_t> bytes;
  bytes.reserve(size);
  Writer writer(&bytes);
  writer.Bytes(kMagic, sizeof(kMagic));
  writer.U32(kSnapshotVersion);
  writer.U64(0);
  writer.Bytes(fingerprint.bytes.data(), fingerprint.bytes.size());
  writer.U32(static_cast<uint32_t>(dim));
  writer.U8(static_cast<uint8_t>(config.precision));
  for (int i = 0; i < 3; ++i) writer.U8(0);
  writer.U32(static_cast<uint32_t>(config.capacity));
  for (float value : {config.logit_scale, config.beta, config.selection_ratio,
                      config.weight_text, config.weight_dynamic, config.weight_static}) {
    writer.F32(value);
  }
  writer.U64(network.next_sequence());
  writer.U32(static_cast<uint32_t>(network.num_classes()));

  // Classes and their slots; slot 0 is the text slot, stored as the class's
  // embedding and sequence number.
  for (int c = 0; c < network.num_classes(); ++c) {
    const std::string empty;
    const std::string& name = class_names.empty() ? empty : class_names[c];
    writer.U32(static_cast<uint32_t>(name.size()));
    writer.Bytes(name.data(), name.size());
    writer.Vector(network.class_embedding(c), dim, Precision::kFloat32);
    writer.U64(bank.slot_info(c, 0).sequence);
    writer.U32(static_cast<uint32_t>(bank.slot_count(c) - 1));
    for (int j = 1; j < bank.slot_count(c); ++j) {
      const SlotInfo& info = bank.slot_info(c, j);
      writer.U8(static_cast<uint8_t>(info.source));
      writer.U8(0);
      writer.U16(info.view);
      writer.F64(info.entropy);
      writer.F64(info.timestamp_ms);
      writer.U64(info.sequence);
      writer.F32(bank.slot_scale(c, j));
      writer.Vector(bank.stored_slot(c, j), dim, config.precision);
    }
  }

  // Total size, then the checksum over everything before it.
  uint64_t total = bytes.size() + kChecksumBytes;
  for (int i = 0; i < 8; ++i) bytes[12 + i] = static_cast<uint8_t>(total >> (8 * i));
  writer.U32(Crc32c(bytes.data(), bytes.size()));
  out->swap(bytes);
  return Status::Ok();
}

Status LoadSnapshot(const uint8_t* data, size_t size,
                    const ModelFingerprint* expected_fingerprint, LoadedSnapshot* out) {
  if (out == nullptr) return InvalidArgument("LoadSnapshot: out is null");
  if (data == nullptr && size > 0) return InvalidArgument("LoadSnapshot: data is null");
  LoadedSnapshot loaded;
  Reader reader(data, size < kChecksumBytes ? 0 : size - kChecksumBytes);

  Status status = ReadEnvelope(data, size, &reader);
  if (status.ok()) status = ReadFingerprint(expected_fingerprint, &reader, &loaded.fingerprint);
  if (status.ok()) status = ReadBody(&reader, &loaded);
  if (!status.ok()) {
    loaded.network.reset();
    loaded.class_names.clear();
    loaded.error_offset = reader.error_offset();
    loaded.error_field = reader.error_field();
  }
  *out = std::move(loaded);
  return status;
}

}  // namespace dualmem
