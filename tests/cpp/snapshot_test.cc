#include "snapshot.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "checksum.h"
#include "dmn.h"
#include "kernels.h"

namespace dualmem {
namespace {

constexpr int kDim = 16;
constexpr int kCapacity = 3;
constexpr size_t kSlotHeaderBytes = 32;
const Precision kPrecisions[] = {Precision::kFloat32, Precision::kFloat16, Precision::kInt8};

ModelFingerprint FingerprintOf(uint8_t seed) {
  ModelFingerprint fingerprint;
  for (size_t i = 0; i < fingerprint.bytes.size(); ++i) {
    fingerprint.bytes[i] = static_cast<uint8_t>(seed + 7 * i);
  }
  return fingerprint;
}

std::vector<float> RandomVector(std::mt19937* rng, int count) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (float& value : values) value = uniform(*rng);
  return values;
}

// Views of a test image near class `target`'s embedding, so that the
// pseudo-labels spread over the classes and the dynamic memories fill up.
std::vector<float> ImageNear(const DualMemoryNetwork& network, int target, int num_views,
                             std::mt19937* rng) {
  std::vector<float> views = RandomVector(rng, num_views * kDim);
  const float* text = network.class_embedding(target);
  for (int v = 0; v < num_views; ++v) {
    for (int i = 0; i < kDim; ++i) views[v * kDim + i] = 0.3f * views[v * kDim + i] + text[i];
  }
  return views;
}

void Check(const Status& status) { ASSERT_TRUE(status.ok()) << status.message; }

// Runs `count` steps with memory updates; returns how many replaced a slot.
int RunSteps(DualMemoryNetwork* network, int count, std::mt19937* rng,
             std::vector<StepOutput>* outputs = nullptr) {
  int replacements = 0;
  for (int i = 0; i < count; ++i) {
    int target = static_cast<int>((*rng)() % network->num_classes());
    std::vector<float> views = ImageNear(*network, target, 2, rng);
    StepOutput out;
    Status status = network->Step(views.data(), views.size(), 2, 1000.0 * i, true, &out);
    EXPECT_TRUE(status.ok()) << status.message;
    if (out.replaced_slot >= 0) ++replacements;
    if (outputs != nullptr) outputs->push_back(out);
  }
  return replacements;
}

// A network with every kind of slot: shots of one and several views,
// corrections, dynamic slots that were replaced, a removed class, a changed
// text embedding and changed weights.
std::unique_ptr<DualMemoryNetwork> BuildNetwork(Precision precision, std::vector<std::string>* names) {
  std::mt19937 rng(1234);
  DmnConfig config;
  config.logit_scale = 20.0f;
  config.capacity = kCapacity;
  config.selection_ratio = 0.5f;
  config.precision = precision;
  std::unique_ptr<DualMemoryNetwork> network;
  EXPECT_TRUE(DualMemoryNetwork::Create(kDim, config, &network).ok());
  *names = {"cat", "dog", "\xC3\x9Cnicode \xE7\x8C\xAB", "removed", ""};
  for (size_t c = 0; c < names->size(); ++c) {
    std::vector<float> text = RandomVector(&rng, kDim);
    EXPECT_TRUE(network->AddClass(text.data(), text.size()).ok());
  }
  EXPECT_TRUE(network->SetWeights(1.0f, 0.5f, 0.8f).ok());

  std::vector<float> shot = ImageNear(*network, 0, 2, &rng);
  EXPECT_TRUE(network->AddShot(0, shot.data(), shot.size(), 2).ok());
  shot = ImageNear(*network, 1, 1, &rng);
  EXPECT_TRUE(network->AddShot(1, shot.data(), shot.size(), 1).ok());
  shot = ImageNear(*network, 2, 3, &rng);
  EXPECT_TRUE(network->AddCorrection(2, shot.data(), shot.size(), 3).ok());

  int replacements = RunSteps(network.get(), 40, &rng);
  EXPECT_TRUE(network->RemoveClass(3).ok());
  names->erase(names->begin() + 3);
  std::vector<float> text = RandomVector(&rng, kDim);
  EXPECT_TRUE(network->SetClassEmbedding(1, text.data(), text.size()).ok());
  shot = ImageNear(*network, 3, 2, &rng);
  EXPECT_TRUE(network->AddShot(3, shot.data(), shot.size(), 2).ok());
  shot = ImageNear(*network, 0, 1, &rng);
  EXPECT_TRUE(network->AddCorrection(0, shot.data(), shot.size(), 1).ok());
  replacements += RunSteps(network.get(), 20, &rng);
  // Replaced slots are where an int8 Gram matrix could depend on history.
  EXPECT_GT(replacements, 0);
  return network;
}

std::vector<uint8_t> Save(const DualMemoryNetwork& network, const std::vector<std::string>& names,
                          const ModelFingerprint& fingerprint = FingerprintOf(1)) {
  std::vector<uint8_t> bytes;
  Status status = SaveSnapshot(network, fingerprint, names, &bytes);
  EXPECT_TRUE(status.ok()) << status.message;
  return bytes;
}

LoadedSnapshot Load(const std::vector<uint8_t>& bytes, const ModelFingerprint* expected = nullptr) {
  LoadedSnapshot loaded;
  Status status = LoadSnapshot(bytes.data(), bytes.size(), expected, &loaded);
  EXPECT_TRUE(status.ok()) << status.message;
  return loaded;
}

void PutU32(std::vector<uint8_t>* bytes, size_t offset, uint32_t value) {
  for (int i = 0; i < 4; ++i) (*bytes)[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}
void PutU64(std::vector<uint8_t>* bytes, size_t offset, uint64_t value) {
  for (int i = 0; i < 8; ++i) (*bytes)[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}
void PutF32(std::vector<uint8_t>* bytes, size_t offset, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  PutU32(bytes, offset, bits);
}
void PutF64(std::vector<uint8_t>* bytes, size_t offset, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, 8);
  PutU64(bytes, offset, bits);
}
uint32_t GetU32(const std::vector<uint8_t>& bytes, size_t offset) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(bytes[offset + i]) << (8 * i);
  return value;
}
uint64_t GetU64(const std::vector<uint8_t>& bytes, size_t offset) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(bytes[offset + i]) << (8 * i);
  return value;
}

// Rewrites the total size and the checksum after an edit, so that the
// parser reaches the edited field.
void Reseal(std::vector<uint8_t>* bytes) {
  PutU64(bytes, 12, bytes->size());
  uint32_t crc = Crc32c(bytes->data(), bytes->size() - 4);
  PutU32(bytes, bytes->size() - 4, crc);
}

// Offsets of fields, found by walking the layout documented in snapshot.h
// independently of the parser.
struct Layout {
  explicit Layout(const std::vector<uint8_t>& bytes) : bytes(bytes) {
    dim = GetU32(bytes, 52);
    element = PrecisionBytes(static_cast<Precision>(bytes[56]));
  }
  size_t ClassOffset(int class_index) const {
    size_t offset = 100;
    for (int c = 0; c < class_index; ++c) {
      size_t count_offset = SlotCountOffset(offset);
      offset = count_offset + 4 + GetU32(bytes, count_offset) * SlotBytes();
    }
    return offset;
  }
  size_t NameOffset(int class_index) const { return ClassOffset(class_index) + 4; }
  size_t TextOffset(int class_index) const {
    size_t start = ClassOffset(class_index);
    return start + 4 + GetU32(bytes, start);
  }
  size_t TextSequenceOffset(int class_index) const { return TextOffset(class_index) + 4 * dim; }
  size_t SlotCountOffset(size_t class_offset) const {
    return class_offset + 4 + GetU32(bytes, class_offset) + 4 * dim + 8;
  }
  // Offset of slot `slot` of a class, counted as in the bank (slot 0 is the
  // text slot, which is not stored as a slot).
  size_t SlotOffset(int class_index, int slot) const {
    return SlotCountOffset(ClassOffset(class_index)) + 4 + (slot - 1) * SlotBytes();
  }
  size_t SlotBytes() const { return kSlotHeaderBytes + dim * element; }

  const std::vector<uint8_t>& bytes;
  size_t dim, element;
};

// The first bank slot (class, slot) whose info satisfies `match`.
std::pair<int, int> FindSlot(const DualMemoryNetwork& network,
                             const std::function<bool(const SlotInfo&)>& match, int skip = 0) {
  const MemoryBank& bank = network.bank();
  for (int c = 0; c < network.num_classes(); ++c) {
    for (int j = 1; j < bank.slot_count(c); ++j) {
      if (match(bank.slot_info(c, j)) && skip-- == 0) return {c, j};
    }
  }
  ADD_FAILURE() << "no slot matches";
  return {0, 1};
}

void ExpectSameOutputs(const StepOutput& expected, const StepOutput& actual, int step) {
  EXPECT_EQ(actual.text, expected.text) << "step " << step;
  EXPECT_EQ(actual.confident, expected.confident) << "step " << step;
  EXPECT_EQ(actual.static_probs, expected.static_probs) << "step " << step;
  EXPECT_EQ(actual.dynamic, expected.dynamic) << "step " << step;
  EXPECT_EQ(actual.fused, expected.fused) << "step " << step;
  EXPECT_EQ(actual.label, expected.label) << "step " << step;
  EXPECT_EQ(actual.pseudo_label, expected.pseudo_label) << "step " << step;
  EXPECT_EQ(actual.entropy, expected.entropy) << "step " << step;
  EXPECT_EQ(actual.inserted, expected.inserted) << "step " << step;
  EXPECT_EQ(actual.replaced_slot, expected.replaced_slot) << "step " << step;
  EXPECT_EQ(actual.decision_margin, expected.decision_margin) << "step " << step;
}

class SnapshotRoundTrip : public testing::TestWithParam<Precision> {};

TEST_P(SnapshotRoundTrip, SaveLoadSaveGivesIdenticalBytes) {
  std::vector<std::string> names;
  auto network = BuildNetwork(GetParam(), &names);
  std::vector<uint8_t> first = Save(*network, names);
  LoadedSnapshot loaded = Load(first);
  ASSERT_NE(loaded.network, nullptr);

  EXPECT_EQ(Save(*loaded.network, loaded.class_names), first);
  EXPECT_EQ(loaded.class_names, names);
  EXPECT_EQ(loaded.fingerprint.bytes, FingerprintOf(1).bytes);
  EXPECT_EQ(loaded.error_offset, SIZE_MAX);
  EXPECT_EQ(loaded.network->MemoryBytes(), network->MemoryBytes());
  for (int c = 0; c < network->num_classes(); ++c) {
    EXPECT_EQ(loaded.network->ShotCount(c), network->ShotCount(c)) << "class " << c;
    EXPECT_EQ(loaded.network->DynamicCount(c), network->DynamicCount(c)) << "class " << c;
  }
}

TEST_P(SnapshotRoundTrip, RestoresGramMatricesExactly) {
  std::vector<std::string> names;
  auto network = BuildNetwork(GetParam(), &names);
  LoadedSnapshot loaded = Load(Save(*network, names));
  const MemoryBank& expected = network->bank();
  const MemoryBank& actual = loaded.network->bank();
  for (int c = 0; c < network->num_classes(); ++c) {
    ASSERT_EQ(actual.slot_count(c), expected.slot_count(c));
    for (int i = 0; i < expected.slot_count(c); ++i) {
      for (int j = 0; j < expected.slot_count(c); ++j) {
        ASSERT_EQ(actual.gram(c, i, j), expected.gram(c, i, j))
            << "class " << c << " entry (" << i << ", " << j << ")";
      }
    }
  }
}

TEST_P(SnapshotRoundTrip, StepsAfterLoadMatchStepsWithout) {
  std::vector<std::string> names;
  auto network = BuildNetwork(GetParam(), &names);
  LoadedSnapshot loaded = Load(Save(*network, names));

  // The same images through both networks, updating their memories.
  std::mt19937 rng_original(99), rng_loaded(99);
  std::vector<StepOutput> expected, actual;
  RunSteps(network.get(), 30, &rng_original, &expected);
  RunSteps(loaded.network.get(), 30, &rng_loaded, &actual);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) ExpectSameOutputs(expected[i], actual[i], i);
  EXPECT_EQ(Save(*loaded.network, names), Save(*network, names));
}

TEST_P(SnapshotRoundTrip, EmptyNetworkRoundTrips) {
  DmnConfig config;
  config.precision = GetParam();
  std::unique_ptr<DualMemoryNetwork> network;
  Check(DualMemoryNetwork::Create(kDim, config, &network));
  std::vector<uint8_t> bytes = Save(*network, {});
  EXPECT_EQ(bytes.size(), 104u);
  LoadedSnapshot loaded = Load(bytes);
  ASSERT_NE(loaded.network, nullptr);
  EXPECT_EQ(loaded.network->num_classes(), 0);
  EXPECT_EQ(loaded.network->config().precision, GetParam());
  EXPECT_EQ(Save(*loaded.network, {}), bytes);
}

INSTANTIATE_TEST_SUITE_P(Precisions, SnapshotRoundTrip, testing::ValuesIn(kPrecisions),
                         [](const testing::TestParamInfo<Precision>& info) {
                           return std::string(PrecisionName(info.param));
                         });

TEST(Snapshot, KeepsSlotMetadataAndSources) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  LoadedSnapshot loaded = Load(Save(*network, names));
  const MemoryBank& expected = network->bank();
  const MemoryBank& actual = loaded.network->bank();
  int corrections = 0;
  for (int c = 0; c < network->num_classes(); ++c) {
    for (int j = 0; j < expected.slot_count(c); ++j) {
      const SlotInfo& want = expected.slot_info(c, j);
      const SlotInfo& got = actual.slot_info(c, j);
      EXPECT_EQ(got.source, want.source) << c << "/" << j;
      EXPECT_EQ(got.view, want.view) << c << "/" << j;
      EXPECT_EQ(got.entropy, want.entropy) << c << "/" << j;
      EXPECT_EQ(got.sequence, want.sequence) << c << "/" << j;
      EXPECT_EQ(got.timestamp_ms, want.timestamp_ms) << c << "/" << j;
      if (got.source == SlotSource::kCorrection) ++corrections;
    }
  }
  EXPECT_EQ(corrections, 4);  // 3 views in class 2 and 1 in class 0
  EXPECT_EQ(loaded.network->next_sequence(), network->next_sequence());
}

TEST(Snapshot, RejectsEveryTruncation) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat16, &names);
  std::vector<uint8_t> bytes = Save(*network, names);
  for (size_t size = 0; size < bytes.size(); ++size) {
    LoadedSnapshot loaded;
    Status status = LoadSnapshot(bytes.data(), size, nullptr, &loaded);
    ASSERT_EQ(status.code, StatusCode::kParseError) << "size " << size << ": " << status.message;
    ASSERT_EQ(loaded.network, nullptr) << "size " << size;
  }
}

// A truncated body whose size and checksum were fixed up reaches the field
// parser, which must stop at the missing bytes.
TEST(Snapshot, RejectsEveryResealedTruncation) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kInt8, &names);
  std::vector<uint8_t> bytes = Save(*network, names);
  for (size_t body = 100; body < bytes.size() - 4; ++body) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + body);
    cut.resize(body + 4);
    Reseal(&cut);
    LoadedSnapshot loaded;
    Status status = LoadSnapshot(cut.data(), cut.size(), nullptr, &loaded);
    ASSERT_EQ(status.code, StatusCode::kParseError) << "body " << body << ": " << status.message;
    ASSERT_EQ(loaded.network, nullptr) << "body " << body;
    ASSERT_LE(loaded.error_offset, body) << "body " << body;
  }
}

TEST(Snapshot, RejectsFutureVersionAsUnsupported) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  std::vector<uint8_t> bytes = Save(*network, names);
  PutU32(&bytes, 8, kSnapshotVersion + 1);
  // A newer version may lay out the rest differently, so neither the size
  // nor the checksum is checked first.
  bytes.resize(40);
  LoadedSnapshot loaded;
  Status status = LoadSnapshot(bytes.data(), bytes.size(), nullptr, &loaded);
  EXPECT_EQ(status.code, StatusCode::kUnsupported) << status.message;
  EXPECT_EQ(loaded.error_offset, 8u);
  EXPECT_NE(status.message.find("version 2"), std::string::npos) << status.message;
}

TEST(Snapshot, RejectsSizeOtherThanDeclared) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  const std::vector<uint8_t> bytes = Save(*network, names);
  for (int64_t change : {-1, 1, 1000}) {
    std::vector<uint8_t> edited = bytes;
    PutU64(&edited, 12, bytes.size() + change);
    LoadedSnapshot loaded;
    Status status = LoadSnapshot(edited.data(), edited.size(), nullptr, &loaded);
    EXPECT_EQ(status.code, StatusCode::kParseError) << status.message;
    EXPECT_EQ(loaded.error_offset, 12u) << status.message;
    EXPECT_EQ(loaded.error_field, "total size") << status.message;
  }
}

TEST(Snapshot, RejectsAnotherModelsFingerprint) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  std::vector<uint8_t> bytes = Save(*network, names, FingerprintOf(1));

  ModelFingerprint other = FingerprintOf(2);
  LoadedSnapshot loaded;
  Status status = LoadSnapshot(bytes.data(), bytes.size(), &other, &loaded);
  EXPECT_EQ(status.code, StatusCode::kFailedPrecondition) << status.message;
  EXPECT_EQ(loaded.network, nullptr);
  EXPECT_EQ(loaded.error_offset, 20u);
  EXPECT_EQ(loaded.error_field, "fingerprint");
  EXPECT_NE(status.message.find(FingerprintHex(FingerprintOf(1))), std::string::npos);
  EXPECT_NE(status.message.find(FingerprintHex(other)), std::string::npos);

  ModelFingerprint same = FingerprintOf(1);
  EXPECT_NE(Load(bytes, &same).network, nullptr);
}

TEST(Snapshot, RejectsChecksumMismatch) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  std::vector<uint8_t> bytes = Save(*network, names);
  for (size_t offset : {size_t{20}, size_t{64}, bytes.size() / 2, bytes.size() - 5,
                        bytes.size() - 1}) {
    std::vector<uint8_t> corrupt = bytes;
    corrupt[offset] ^= 0x10;
    LoadedSnapshot loaded;
    Status status = LoadSnapshot(corrupt.data(), corrupt.size(), nullptr, &loaded);
    EXPECT_EQ(status.code, StatusCode::kParseError) << status.message;
    EXPECT_EQ(loaded.error_field, "checksum") << "byte " << offset;
    EXPECT_EQ(loaded.error_offset, bytes.size() - 4);
  }
}

struct Corruption {
  std::string name;
  std::function<void(std::vector<uint8_t>*)> edit;
  StatusCode code;
  size_t offset;
  std::string field;
};

void ExpectRejected(const std::vector<uint8_t>& original, const Corruption& corruption) {
  std::vector<uint8_t> bytes = original;
  corruption.edit(&bytes);
  Reseal(&bytes);
  LoadedSnapshot loaded;
  Status status = LoadSnapshot(bytes.data(), bytes.size(), nullptr, &loaded);
  EXPECT_EQ(status.code, corruption.code)
      << corruption.name << ": got " << StatusCodeName(status.code) << ", " << status.message;
  EXPECT_EQ(loaded.error_offset, corruption.offset) << corruption.name << ": " << status.message;
  EXPECT_EQ(loaded.error_field, corruption.field) << corruption.name << ": " << status.message;
  EXPECT_EQ(status.message.rfind("snapshot byte " + std::to_string(corruption.offset) + " (", 0),
            0u)
      << corruption.name << ": " << status.message;
  EXPECT_EQ(loaded.network, nullptr) << corruption.name;
}

std::string SlotField(std::pair<int, int> slot, const std::string& name) {
  std::string field =
      "class " + std::to_string(slot.first) + " slot " + std::to_string(slot.second - 1);
  return name.empty() ? field : field + " " + name;
}

TEST(Snapshot, RejectsCorruptHeaderFields) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  const std::vector<uint8_t> bytes = Save(*network, names);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const StatusCode parse = StatusCode::kParseError, invalid = StatusCode::kInvalidArgument,
                   limit = StatusCode::kLimitExceeded;
  Layout layout(bytes);
  const int classes = network->num_classes();

  const Corruption cases[] = {
      {"magic", [](auto* b) { (*b)[3] = 'X'; }, parse, 0, "magic"},
      {"version 0", [](auto* b) { PutU32(b, 8, 0); }, parse, 8, "version"},
      {"dim 0", [](auto* b) { PutU32(b, 52, 0); }, invalid, 52, "dim"},
      {"dim above max", [](auto* b) { PutU32(b, 52, kMaxSnapshotDim + 1); }, limit, 52, "dim"},
      {"precision 3", [](auto* b) { (*b)[56] = 3; }, parse, 56, "precision"},
      {"reserved", [](auto* b) { (*b)[58] = 1; }, parse, 58, "reserved"},
      {"capacity 0", [](auto* b) { PutU32(b, 60, 0); }, invalid, 60, "capacity"},
      {"capacity above max", [](auto* b) { PutU32(b, 60, kMaxSnapshotSlots + 1); }, limit, 60,
       "capacity"},
      {"logit_scale NaN", [&](auto* b) { PutF32(b, 64, nan); }, invalid, 64, "logit_scale"},
      {"beta negative", [](auto* b) { PutF32(b, 68, -1.0f); }, invalid, 68, "beta"},
      {"selection_ratio above 1", [](auto* b) { PutF32(b, 72, 1.5f); }, invalid, 72,
       "selection_ratio"},
      {"weight_text negative", [](auto* b) { PutF32(b, 76, -0.5f); }, invalid, 76, "weight_text"},
      {"weight_dynamic infinite", [&](auto* b) { PutF32(b, 80, inf); }, invalid, 80,
       "weight_dynamic"},
      {"weights all zero",
       [](auto* b) {
         for (size_t offset : {76, 80, 84}) PutF32(b, offset, 0.0f);
       },
       invalid, 76, "weights"},
      // Class 0's text slot has sequence 0; its first slot, a shot, has a
      // later one.
      {"next sequence too small", [](auto* b) { PutU64(b, 88, 1); }, invalid,
       layout.SlotOffset(0, 1) + 20, "class 0 slot 0 sequence"},
      {"class count above max", [](auto* b) { PutU32(b, 96, kMaxSnapshotClasses + 1); }, limit, 96,
       "class count"},
      {"class count beyond the bytes", [](auto* b) { PutU32(b, 96, 60000); }, parse, 96,
       "class count"},
      {"class count one short", [&](auto* b) { PutU32(b, 96, classes - 1); }, parse,
       layout.ClassOffset(classes - 1), "end"},
      {"trailing bytes", [](auto* b) { b->insert(b->end() - 4, 3, 0); }, parse, bytes.size() - 4,
       "end"},
  };
  for (const Corruption& corruption : cases) ExpectRejected(bytes, corruption);
}

TEST(Snapshot, RejectsCorruptClassFields) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  const std::vector<uint8_t> bytes = Save(*network, names);
  const StatusCode parse = StatusCode::kParseError, invalid = StatusCode::kInvalidArgument,
                   limit = StatusCode::kLimitExceeded;
  Layout layout(bytes);
  size_t name = layout.NameOffset(0);  // "cat"
  size_t text = layout.TextOffset(0);
  size_t count = layout.SlotCountOffset(layout.ClassOffset(0));

  const Corruption cases[] = {
      {"name length above max",
       [&](auto* b) { PutU32(b, layout.ClassOffset(0), kMaxClassNameBytes + 1); }, limit,
       layout.ClassOffset(0), "class 0 name length"},
      {"name with byte 0xFF", [&](auto* b) { (*b)[name + 1] = 0xFF; }, parse, name + 1,
       "class 0 name"},
      {"name with an overlong slash",
       [&](auto* b) {
         (*b)[name] = 0xC0;
         (*b)[name + 1] = 0xAF;
       },
       parse, name, "class 0 name"},
      {"name with a surrogate",
       [&](auto* b) {
         (*b)[name] = 0xED;
         (*b)[name + 1] = 0xA0;
         (*b)[name + 2] = 0x80;
       },
       parse, name, "class 0 name"},
      {"text embedding not unit", [&](auto* b) { PutF32(b, text, 3.0f); }, invalid, text,
       "class 0 text embedding"},
      {"text embedding NaN",
       [&](auto* b) { PutF32(b, text + 8, std::numeric_limits<float>::quiet_NaN()); }, invalid,
       text, "class 0 text embedding"},
      {"slot count above max", [&](auto* b) { PutU32(b, count, kMaxSnapshotSlots + 1); }, limit,
       count, "class 0 slot count"},
      {"slot count beyond the bytes", [&](auto* b) { PutU32(b, count, 5000); }, parse, count,
       "class 0 slot count"},
  };
  for (const Corruption& corruption : cases) ExpectRejected(bytes, corruption);
}

TEST(Snapshot, RejectsCorruptSlotFields) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  const std::vector<uint8_t> bytes = Save(*network, names);
  const StatusCode parse = StatusCode::kParseError, invalid = StatusCode::kInvalidArgument;
  Layout layout(bytes);
  auto is_dynamic = [](const SlotInfo& info) { return info.source == SlotSource::kDynamic; };
  auto second_view = [](const SlotInfo& info) {
    return info.source == SlotSource::kShot && info.view == 1;
  };
  std::pair<int, int> dynamic = FindSlot(*network, is_dynamic);
  std::pair<int, int> other_dynamic = FindSlot(*network, is_dynamic, 1);
  std::pair<int, int> view = FindSlot(*network, second_view);
  size_t slot = layout.SlotOffset(dynamic.first, dynamic.second);
  size_t view_slot = layout.SlotOffset(view.first, view.second);
  size_t other = layout.SlotOffset(other_dynamic.first, other_dynamic.second);
  const uint64_t next = GetU64(bytes, 88);

  const Corruption cases[] = {
      {"source 0 (text)", [&](auto* b) { (*b)[slot] = 0; }, parse, slot,
       SlotField(dynamic, "source")},
      {"source 4", [&](auto* b) { (*b)[slot] = 4; }, parse, slot, SlotField(dynamic, "source")},
      {"reserved", [&](auto* b) { (*b)[slot + 1] = 9; }, parse, slot + 1,
       SlotField(dynamic, "reserved")},
      {"dynamic slot with view 1", [&](auto* b) { (*b)[slot + 2] = 1; }, invalid, slot,
       SlotField(dynamic, "")},
      {"shot view out of order", [&](auto* b) { (*b)[view_slot + 2] = 5; }, invalid, view_slot,
       SlotField(view, "")},
      {"entropy NaN",
       [&](auto* b) { PutF64(b, slot + 4, std::numeric_limits<double>::quiet_NaN()); }, invalid,
       slot + 4, SlotField(dynamic, "entropy")},
      {"timestamp infinite",
       [&](auto* b) { PutF64(b, slot + 12, std::numeric_limits<double>::infinity()); }, invalid,
       slot + 12, SlotField(dynamic, "timestamp")},
      {"sequence not below next", [&](auto* b) { PutU64(b, slot + 20, next); }, invalid,
       slot + 20, SlotField(dynamic, "sequence")},
      {"sequence used twice",
       [&](auto* b) { PutU64(b, other + 20, GetU64(bytes, slot + 20)); }, invalid,
       std::max(slot, other) + 20, "sequence"},
      {"float32 scale not 1", [&](auto* b) { PutF32(b, slot + 28, 2.0f); }, invalid, slot,
       SlotField(dynamic, "")},
      {"vector not unit", [&](auto* b) { PutF32(b, slot + 32, 5.0f); }, invalid, slot,
       SlotField(dynamic, "")},
      {"vector infinite",
       [&](auto* b) { PutF32(b, slot + 36, std::numeric_limits<float>::infinity()); }, invalid,
       slot, SlotField(dynamic, "")},
  };
  for (const Corruption& corruption : cases) ExpectRejected(bytes, corruption);
}

TEST(Snapshot, RejectsCorruptQuantizedVectors) {
  std::vector<std::string> names;
  auto is_dynamic = [](const SlotInfo& info) { return info.source == SlotSource::kDynamic; };
  const StatusCode invalid = StatusCode::kInvalidArgument;

  auto int8_network = BuildNetwork(Precision::kInt8, &names);
  const std::vector<uint8_t> int8_bytes = Save(*int8_network, names);
  std::pair<int, int> dynamic = FindSlot(*int8_network, is_dynamic);
  size_t slot = Layout(int8_bytes).SlotOffset(dynamic.first, dynamic.second);
  const Corruption int8_cases[] = {
      {"int8 level -128", [&](auto* b) { (*b)[slot + 32] = 0x80; }, invalid, slot,
       SlotField(dynamic, "")},
      {"int8 scale 0", [&](auto* b) { PutF32(b, slot + 28, 0.0f); }, invalid, slot,
       SlotField(dynamic, "")},
      {"int8 scale NaN",
       [&](auto* b) { PutF32(b, slot + 28, std::numeric_limits<float>::quiet_NaN()); }, invalid,
       slot, SlotField(dynamic, "")},
      {"int8 scale too large", [&](auto* b) { PutF32(b, slot + 28, 1.0f); }, invalid, slot,
       SlotField(dynamic, "")},
  };
  for (const Corruption& corruption : int8_cases) ExpectRejected(int8_bytes, corruption);

  auto half_network = BuildNetwork(Precision::kFloat16, &names);
  const std::vector<uint8_t> half_bytes = Save(*half_network, names);
  dynamic = FindSlot(*half_network, is_dynamic);
  slot = Layout(half_bytes).SlotOffset(dynamic.first, dynamic.second);
  const Corruption half_cases[] = {
      {"float16 infinity",
       [&](auto* b) {
         (*b)[slot + 32] = 0x00;
         (*b)[slot + 33] = 0x7C;
       },
       invalid, slot, SlotField(dynamic, "")},
      {"float16 scale not 1", [&](auto* b) { PutF32(b, slot + 28, 0.5f); }, invalid, slot,
       SlotField(dynamic, "")},
  };
  for (const Corruption& corruption : half_cases) ExpectRejected(half_bytes, corruption);
}

TEST(Snapshot, RejectsDynamicSlotsAboveCapacity) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  const std::vector<uint8_t> bytes = Save(*network, names);
  // The first class holding two dynamic slots fails at its second one.
  int class_index = -1;
  for (int c = 0; c < network->num_classes() && class_index < 0; ++c) {
    if (network->DynamicCount(c) >= 2) class_index = c;
  }
  ASSERT_GE(class_index, 0);
  auto in_class = [&](const SlotInfo& info) { return info.source == SlotSource::kDynamic; };
  int skip = 1;
  for (int c = 0; c < class_index; ++c) skip += network->DynamicCount(c);
  std::pair<int, int> second = FindSlot(*network, in_class, skip);
  ASSERT_EQ(second.first, class_index);

  Corruption corruption{"capacity 1", [](auto* b) { PutU32(b, 60, 1); },
                        StatusCode::kLimitExceeded,
                        Layout(bytes).SlotOffset(second.first, second.second),
                        SlotField(second, "")};
  ExpectRejected(bytes, corruption);
}

TEST(Snapshot, SaveRejectsNamesThatDoNotFit) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  std::vector<uint8_t> bytes = {1, 2, 3};

  std::vector<std::string> too_few(names.begin(), names.end() - 1);
  Status status = SaveSnapshot(*network, FingerprintOf(1), too_few, &bytes);
  EXPECT_EQ(status.code, StatusCode::kInvalidArgument) << status.message;

  std::vector<std::string> invalid = names;
  invalid[1] = "bad \xFF name";
  status = SaveSnapshot(*network, FingerprintOf(1), invalid, &bytes);
  EXPECT_EQ(status.code, StatusCode::kInvalidArgument) << status.message;

  std::vector<std::string> long_name = names;
  long_name[0] = std::string(kMaxClassNameBytes + 1, 'a');
  status = SaveSnapshot(*network, FingerprintOf(1), long_name, &bytes);
  EXPECT_EQ(status.code, StatusCode::kLimitExceeded) << status.message;
  EXPECT_EQ(bytes, (std::vector<uint8_t>{1, 2, 3}));

  // Without names every class gets an empty one.
  LoadedSnapshot loaded = Load(Save(*network, {}));
  EXPECT_EQ(loaded.class_names, std::vector<std::string>(network->num_classes()));
}

TEST(ModelFingerprint, HexRoundTrips) {
  ModelFingerprint fingerprint = FingerprintOf(200);
  std::string hex = FingerprintHex(fingerprint);
  EXPECT_EQ(hex.size(), 64u);
  ModelFingerprint parsed;
  Check(ParseFingerprintHex(hex, &parsed));
  EXPECT_EQ(parsed.bytes, fingerprint.bytes);

  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  Check(ParseFingerprintHex(upper, &parsed));
  EXPECT_EQ(parsed.bytes, fingerprint.bytes);
}

TEST(ModelFingerprint, RejectsMalformedHex) {
  ModelFingerprint parsed;
  EXPECT_EQ(ParseFingerprintHex("abc", &parsed).code, StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseFingerprintHex(std::string(63, '0') + "g", &parsed).code,
            StatusCode::kInvalidArgument);
}

TEST(Snapshot, CorrectionsCountAsShots) {
  std::vector<std::string> names;
  auto network = BuildNetwork(Precision::kFloat32, &names);
  // Class 2 has one correction of three views and nothing else labelled.
  EXPECT_EQ(network->ShotCount(2), 1);
  Check(network->ClearShots(2));
  EXPECT_EQ(network->ShotCount(2), 0);
  const MemoryBank& bank = network->bank();
  for (int j = 0; j < bank.slot_count(2); ++j) {
    EXPECT_NE(bank.slot_info(2, j).source, SlotSource::kCorrection) << "slot " << j;
  }
}

}  // namespace
}  // namespace dualmem
