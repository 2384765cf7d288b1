#include "dmn.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

namespace dualmem {
namespace {

Status NotFound(std::string message) {
  return MakeStatus(StatusCode::kNotFound, std::move(message));
}

std::string FormatFloat(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);
  return buffer;
}

Status CheckPositive(const char* field, double value) {
  if (std::isfinite(value) && value > 0.0) return Status::Ok();
  return InvalidArgument(std::string("DmnConfig.") + field + " is " + FormatFloat(value) +
                         ", expected a finite value > 0");
}

Status CheckWeights(float text, float dynamic, float static_weight) {
  const char* names[3] = {"text", "dynamic", "static"};
  float values[3] = {text, dynamic, static_weight};
  for (int i = 0; i < 3; ++i) {
    if (!std::isfinite(values[i]) || values[i] < 0.0f) {
      return InvalidArgument(std::string("weight_") + names[i] + " is " + FormatFloat(values[i]) +
                             ", expected a finite value >= 0");
    }
  }
  if (text + dynamic + static_weight <= 0.0f) {
    return InvalidArgument("weights text, dynamic and static are all 0, expected at least one > 0");
  }
  return Status::Ok();
}

Status CheckConfig(int dim, const DmnConfig& config) {
  if (dim <= 0) {
    return InvalidArgument("dim is " + std::to_string(dim) + ", expected an integer > 0");
  }
  DUALMEM_RETURN_IF_ERROR(CheckPositive("logit_scale", config.logit_scale));
  DUALMEM_RETURN_IF_ERROR(CheckPositive("beta", config.beta));
  if (config.capacity <= 0) {
    return InvalidArgument("DmnConfig.capacity is " + std::to_string(config.capacity) +
                           ", expected an integer > 0");
  }
  if (!(config.selection_ratio > 0.0f && config.selection_ratio <= 1.0f)) {
    return InvalidArgument("DmnConfig.selection_ratio is " + FormatFloat(config.selection_ratio) +
                           ", expected a value in (0, 1]");
  }
  int precision = static_cast<int>(config.precision);
  if (precision > static_cast<int>(Precision::kInt8)) {
    return InvalidArgument("DmnConfig.precision is " + std::to_string(precision) +
                           ", expected 0 (float32), 1 (float16) or 2 (int8)");
  }
  return CheckWeights(config.weight_text, config.weight_dynamic, config.weight_static);
}

Status CheckLength(const char* field, size_t length, size_t expected, const char* expected_text) {
  if (length == expected) return Status::Ok();
  return InvalidArgument(std::string(field) + " has " + std::to_string(length) +
                         " values, expected " + expected_text + " = " + std::to_string(expected));
}

// Returns the index of the first largest value and writes the gap to the
// runner-up (infinity when there is none).
int ArgMax(const double* values, size_t count, double* gap) {
  size_t best = 0;
  for (size_t i = 1; i < count; ++i) {
    if (values[i] > values[best]) best = i;
  }
  double second = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < count; ++i) {
    if (i != best) second = std::max(second, values[i]);
  }
  *gap = values[best] - second;
  return static_cast<int>(best);
}

// A correction is a shot whose label a user gave after a classification.
bool IsLabelled(const SlotInfo& info) {
  return info.source == SlotSource::kShot || info.source == SlotSource::kCorrection;
}

bool InStaticMemory(const SlotInfo& info) {
  return info.source == SlotSource::kText || IsLabelled(info);
}

// The dynamic readout uses the text embedding, the original view of each
// shot and the stored test images, but not the augmented views of shots.
bool InDynamicMemory(const SlotInfo& info) {
  return !IsLabelled(info) || info.view == 0;
}

// Largest distance of a restored vector's norm from 1, per precision.
// Float32 rows come from NormalizeL2 (off by rounding, about 1e-7);
// float16 rounding moves the norm by at most 2^-11 relative. Int8 is a
// sanity bound: the rounding error of a unit vector has norm below 0.34 for
// dim <= 8192, and is far smaller for real embeddings.
double UnitNormTolerance(Precision precision) {
  switch (precision) {
    case Precision::kFloat32:
      return 1e-3;
    case Precision::kFloat16:
      return 4e-3;
    case Precision::kInt8:
      return 0.5;
  }
  return 0.0;
}

Status CheckUnitNorm(const char* field, const float* values, int dim, Precision precision) {
  double tolerance = UnitNormTolerance(precision);

  // Fast path: restoring a snapshot checks every slot, and the SIMD float sum
  // costs a fraction of the scalar loops below. A NaN or infinity makes the
  // sum non-finite. Its rounding is about 1e-7 relative, so it can disagree
  // with the exact check only for a norm that close to the tolerance.
  float fast = Dot(values, values, dim);
  if (std::isfinite(fast) && std::fabs(std::sqrt(static_cast<double>(fast)) - 1.0) <= tolerance) {
    return Status::Ok();
  }

  // Exact check, which names the offending element.
  for (int i = 0; i < dim; ++i) {
    if (!std::isfinite(values[i])) {
      return InvalidArgument(std::string(field) + "[" + std::to_string(i) + "] is " +
                             FormatFloat(values[i]) + ", expected a finite number");
    }
  }
  double norm = std::sqrt(SumOfSquares(values, dim));
  if (std::fabs(norm - 1.0) > tolerance) {
    return InvalidArgument(std::string(field) + " has norm " + FormatFloat(norm) +
                           ", expected 1 within " + FormatFloat(tolerance) + " (" +
                           PrecisionName(precision) + ")");
  }
  return Status::Ok();
}

}  // namespace

DualMemoryNetwork::DualMemoryNetwork(int dim, const DmnConfig& config)
    : dim_(dim), config_(config), bank_(dim, config.precision) {}

Status DualMemoryNetwork::Create(int dim, const DmnConfig& config,
                                 std::unique_ptr<DualMemoryNetwork>* out) {
  if (out == nullptr) return InvalidArgument("Create: out is null");
  DUALMEM_RETURN_IF_ERROR(CheckConfig(dim, config));
  out->reset(new DualMemoryNetwork(dim, config));
  return Status::Ok();
}

Status DualMemoryNetwork::SetWeights(float text, float dynamic, float static_weight) {
  DUALMEM_RETURN_IF_ERROR(CheckWeights(text, dynamic, static_weight));
  config_.weight_text = text;
  config_.weight_dynamic = dynamic;
  config_.weight_static = static_weight;
  return Status::Ok();
}

Status DualMemoryNetwork::CheckClassIndex(const char* operation, int class_index) const {
  if (class_index >= 0 && class_index < num_classes()) return Status::Ok();
  return NotFound(std::string(operation) + ": class index " + std::to_string(class_index) +
                  " does not exist, expected 0 <= index < " + std::to_string(num_classes()));
}

// Checks one embedding of dim_ values and writes it scaled to unit length.
Status DualMemoryNetwork::NormalizeInto(const char* field, const float* values, float* out) const {
  for (int i = 0; i < dim_; ++i) {
    if (!std::isfinite(values[i])) {
      return InvalidArgument(std::string(field) + "[" + std::to_string(i) + "] is " +
                             FormatFloat(values[i]) + ", expected a finite number");
    }
  }
  if (!NormalizeL2(values, dim_, out)) {
    return InvalidArgument(std::string(field) +
                           " has zero length, expected a non-zero embedding");
  }
  return Status::Ok();
}

void DualMemoryNetwork::GrowScratch(int class_index) {
  size_t classes = num_classes();
  if (logits_.size() < classes) {
    logits_.resize(classes);
    static_scores_.resize(classes);
    dynamic_scores_.resize(classes);
    confident_.resize(classes);
    static_probs_.resize(classes);
    dynamic_probs_.resize(classes);
    fused_.resize(classes);
  }
  // The dynamic slots of a class can grow to `capacity` during steps, so
  // the per-slot buffers are sized for that in advance.
  int dynamic = DynamicCount(class_index);
  size_t slots = bank_.slot_count(class_index) - dynamic + config_.capacity;
  if (similarities_.size() < slots) {
    similarities_.resize(slots);
    weights_static_.resize(slots);
    weights_dynamic_.resize(slots);
  }
}

Status DualMemoryNetwork::AddClass(const float* text_embedding, size_t length) {
  if (text_embedding == nullptr) return InvalidArgument("AddClass: text_embedding is null");
  DUALMEM_RETURN_IF_ERROR(CheckLength("AddClass: text_embedding", length, dim_, "dim"));
  std::vector<float> unit(dim_);
  DUALMEM_RETURN_IF_ERROR(NormalizeInto("AddClass: text_embedding", text_embedding, unit.data()));

  text_.insert(text_.end(), unit.begin(), unit.end());
  shot_counts_.push_back(0);
  bank_.AddClass();
  int class_index = num_classes() - 1;
  SlotInfo info;
  info.source = SlotSource::kText;
  info.sequence = next_sequence_++;
  bank_.AppendSlot(class_index, unit.data(), info);
  GrowScratch(class_index);
  return Status::Ok();
}

Status DualMemoryNetwork::RemoveClass(int class_index) {
  DUALMEM_RETURN_IF_ERROR(CheckClassIndex("RemoveClass", class_index));
  text_.erase(text_.begin() + static_cast<size_t>(class_index) * dim_,
              text_.begin() + static_cast<size_t>(class_index + 1) * dim_);
  total_shots_ -= shot_counts_[class_index];
  shot_counts_.erase(shot_counts_.begin() + class_index);
  bank_.RemoveClass(class_index);
  return Status::Ok();
}

Status DualMemoryNetwork::SetClassEmbedding(int class_index, const float* embedding,
                                            size_t length) {
  DUALMEM_RETURN_IF_ERROR(CheckClassIndex("SetClassEmbedding", class_index));
  if (embedding == nullptr) return InvalidArgument("SetClassEmbedding: embedding is null");
  DUALMEM_RETURN_IF_ERROR(CheckLength("SetClassEmbedding: embedding", length, dim_, "dim"));
  std::vector<float> unit(dim_);
  DUALMEM_RETURN_IF_ERROR(NormalizeInto("SetClassEmbedding: embedding", embedding, unit.data()));

  std::copy(unit.begin(), unit.end(), text_.begin() + static_cast<size_t>(class_index) * dim_);
  // AddClass stores the text embedding first and nothing removes it, so it
  // is always slot 0.
  SlotInfo info = bank_.slot_info(class_index, 0);
  bank_.ReplaceSlot(class_index, 0, unit.data(), info);
  return Status::Ok();
}

Status DualMemoryNetwork::AddShot(int class_index, const float* views, size_t length,
                                  int num_views) {
  return AddLabelledViews("AddShot", SlotSource::kShot, class_index, views, length, num_views);
}

Status DualMemoryNetwork::AddCorrection(int class_index, const float* views, size_t length,
                                        int num_views) {
  return AddLabelledViews("AddCorrection", SlotSource::kCorrection, class_index, views, length,
                          num_views);
}

Status DualMemoryNetwork::AddLabelledViews(const char* operation, SlotSource source,
                                           int class_index, const float* views, size_t length,
                                           int num_views) {
  const std::string name = operation;
  DUALMEM_RETURN_IF_ERROR(CheckClassIndex(operation, class_index));
  if (views == nullptr) return InvalidArgument(name + ": views is null");
  if (num_views <= 0 || num_views > std::numeric_limits<uint16_t>::max()) {
    return InvalidArgument(name + ": num_views is " + std::to_string(num_views) +
                           ", expected 1 to 65535");
  }
  size_t expected = static_cast<size_t>(num_views) * dim_;
  DUALMEM_RETURN_IF_ERROR(
      CheckLength((name + ": views").c_str(), length, expected, "num_views * dim"));
  std::vector<float> units(expected);
  for (int v = 0; v < num_views; ++v) {
    std::string field = name + ": views[" + std::to_string(v) + "]";
    DUALMEM_RETURN_IF_ERROR(NormalizeInto(field.c_str(), views + static_cast<size_t>(v) * dim_,
                                          units.data() + static_cast<size_t>(v) * dim_));
  }

  bank_.Reserve(class_index, bank_.slot_count(class_index) + num_views);
  for (int v = 0; v < num_views; ++v) {
    SlotInfo info;
    info.source = source;
    info.view = static_cast<uint16_t>(v);
    info.sequence = next_sequence_;
    bank_.AppendSlot(class_index, units.data() + static_cast<size_t>(v) * dim_, info);
  }
  ++next_sequence_;
  ++shot_counts_[class_index];
  ++total_shots_;
  GrowScratch(class_index);
  return Status::Ok();
}

Status DualMemoryNetwork::RestoreDynamic(int class_index, const float* view, size_t length,
                                         double entropy, double timestamp_ms) {
  DUALMEM_RETURN_IF_ERROR(CheckClassIndex("RestoreDynamic", class_index));
  if (view == nullptr) return InvalidArgument("RestoreDynamic: view is null");
  DUALMEM_RETURN_IF_ERROR(CheckLength("RestoreDynamic: view", length, dim_, "dim"));
  if (!std::isfinite(entropy) || !std::isfinite(timestamp_ms)) {
    return InvalidArgument("RestoreDynamic: entropy is " + FormatFloat(entropy) +
                           " and timestamp_ms is " + FormatFloat(timestamp_ms) +
                           ", expected finite numbers");
  }
  int dynamic = DynamicCount(class_index);
  if (dynamic >= config_.capacity) {
    return MakeStatus(StatusCode::kLimitExceeded,
                      "RestoreDynamic: class " + std::to_string(class_index) + " already holds " +
                          std::to_string(dynamic) + " dynamic slots, the capacity");
  }
  std::vector<float> unit(dim_);
  DUALMEM_RETURN_IF_ERROR(NormalizeInto("RestoreDynamic: view", view, unit.data()));

  SlotInfo info;
  info.source = SlotSource::kDynamic;
  info.entropy = entropy;
  info.sequence = next_sequence_++;
  info.timestamp_ms = timestamp_ms;
  bank_.Reserve(class_index, bank_.slot_count(class_index) + config_.capacity - dynamic);
  bank_.AppendSlot(class_index, unit.data(), info);
  return Status::Ok();
}

Status DualMemoryNetwork::RestoreClass(const float* unit_embedding, size_t length,
                                       uint64_t sequence, int num_slots) {
  if (unit_embedding == nullptr) return InvalidArgument("RestoreClass: unit_embedding is null");
  DUALMEM_RETURN_IF_ERROR(CheckLength("RestoreClass: unit_embedding", length, dim_, "dim"));
  DUALMEM_RETURN_IF_ERROR(
      CheckUnitNorm("RestoreClass: unit_embedding", unit_embedding, dim_, Precision::kFloat32));
  if (num_slots < 0) {
    return InvalidArgument("RestoreClass: num_slots is " + std::to_string(num_slots) +
                           ", expected an integer >= 0");
  }

  text_.insert(text_.end(), unit_embedding, unit_embedding + dim_);
  shot_counts_.push_back(0);
  bank_.AddClass();
  int class_index = num_classes() - 1;
  bank_.Reserve(class_index, 1 + num_slots);
  SlotInfo info;
  info.source = SlotSource::kText;
  info.sequence = sequence;
  bank_.AppendSlot(class_index, unit_embedding, info);
  next_sequence_ = std::max(next_sequence_, sequence + 1);
  GrowScratch(class_index);
  return Status::Ok();
}

// Checks a vector in the bank's stored form: a valid scale, no int8 level
// of -128 (the quantizer never writes it) and a finite, unit-length value.
Status DualMemoryNetwork::CheckStoredVector(const char* field, const void* stored,
                                            float scale) const {
  Precision precision = config_.precision;
  if (precision != Precision::kInt8 && scale != 1.0f) {
    return InvalidArgument(std::string(field) + " has scale " + FormatFloat(scale) +
                           ", expected 1 for " + PrecisionName(precision) + " slots");
  }
  if (precision == Precision::kInt8) {
    if (!(std::isfinite(scale) && scale > 0.0f)) {
      return InvalidArgument(std::string(field) + " has int8 scale " + FormatFloat(scale) +
                             ", expected a finite value > 0");
    }
    const int8_t* levels = static_cast<const int8_t*>(stored);
    for (int i = 0; i < dim_; ++i) {
      if (levels[i] == -128) {
        return InvalidArgument(std::string(field) + "[" + std::to_string(i) +
                               "] is the int8 level -128, expected -127 to 127");
      }
    }
  }
  std::vector<float> decoded(dim_);
  DecodeVector(stored, dim_, precision, scale, decoded.data());
  return CheckUnitNorm(field, decoded.data(), dim_, precision);
}

Status DualMemoryNetwork::RestoreSlot(int class_index, const void* stored, float scale,
                                      const SlotInfo& info) {
  DUALMEM_RETURN_IF_ERROR(CheckClassIndex("RestoreSlot", class_index));
  if (stored == nullptr) return InvalidArgument("RestoreSlot: stored is null");
  if (!std::isfinite(info.entropy) || !std::isfinite(info.timestamp_ms)) {
    return InvalidArgument("RestoreSlot: entropy is " + FormatFloat(info.entropy) +
                           " and timestamp_ms is " + FormatFloat(info.timestamp_ms) +
                           ", expected finite numbers");
  }
  int slots = bank_.slot_count(class_index);
  if (info.source == SlotSource::kDynamic) {
    if (info.view != 0) {
      return InvalidArgument("RestoreSlot: a dynamic slot has view " + std::to_string(info.view) +
                             ", expected 0");
    }
    int dynamic = DynamicCount(class_index);
    if (dynamic >= config_.capacity) {
      return MakeStatus(StatusCode::kLimitExceeded,
                        "RestoreSlot: class " + std::to_string(class_index) + " already holds " +
                            std::to_string(dynamic) + " dynamic slots, the capacity");
    }
  } else if (IsLabelled(info)) {
    // Views after the first continue the image stored just before them.
    if (info.view > 0) {
      const SlotInfo& previous = bank_.slot_info(class_index, slots - 1);
      if (previous.source != info.source || previous.sequence != info.sequence ||
          previous.view + 1 != info.view) {
        return InvalidArgument(
            "RestoreSlot: view " + std::to_string(info.view) + " of sequence " +
            std::to_string(info.sequence) + " does not follow view " +
            std::to_string(info.view - 1) + " of the same image and source");
      }
    }
  } else {
    return InvalidArgument("RestoreSlot: source is " +
                           std::to_string(static_cast<int>(info.source)) +
                           ", expected 1 (shot), 2 (dynamic) or 3 (correction)");
  }
  DUALMEM_RETURN_IF_ERROR(CheckStoredVector("RestoreSlot: vector", stored, scale));

  bank_.AppendStoredSlot(class_index, stored, scale, info);
  if (IsLabelled(info) && info.view == 0) {
    ++shot_counts_[class_index];
    ++total_shots_;
  }
  next_sequence_ = std::max(next_sequence_, info.sequence + 1);
  GrowScratch(class_index);
  return Status::Ok();
}

Status DualMemoryNetwork::SetNextSequence(uint64_t next_sequence) {
  if (next_sequence < next_sequence_) {
    return InvalidArgument("SetNextSequence: next_sequence is " + std::to_string(next_sequence) +
                           ", expected at least " + std::to_string(next_sequence_) +
                           ", one past the largest stored sequence number");
  }
  next_sequence_ = next_sequence;
  return Status::Ok();
}

const float* DualMemoryNetwork::class_embedding(int class_index) const {
  if (class_index < 0 || class_index >= num_classes()) return nullptr;
  return text_.data() + static_cast<size_t>(class_index) * dim_;
}

void DualMemoryNetwork::ResetDynamic() { bank_.RemoveSlotsEverywhere(SlotSource::kDynamic); }

Status DualMemoryNetwork::ClearShots(int class_index) {
  DUALMEM_RETURN_IF_ERROR(CheckClassIndex("ClearShots", class_index));
  bank_.RemoveSlots(class_index, SlotSource::kShot);
  bank_.RemoveSlots(class_index, SlotSource::kCorrection);
  total_shots_ -= shot_counts_[class_index];
  shot_counts_[class_index] = 0;
  return Status::Ok();
}

Status DualMemoryNetwork::DropDynamicOlderThan(double cutoff_ms, int* removed) {
  if (!std::isfinite(cutoff_ms)) {
    return InvalidArgument("DropDynamicOlderThan: cutoff_ms is " + std::to_string(cutoff_ms) +
                           ", expected a finite time in ms since the epoch");
  }
  *removed = 0;
  for (int c = 0; c < num_classes(); ++c) {
    std::vector<bool> remove(bank_.slot_count(c));
    for (int j = 0; j < bank_.slot_count(c); ++j) {
      const SlotInfo& info = bank_.slot_info(c, j);
      remove[j] = info.source == SlotSource::kDynamic && info.timestamp_ms < cutoff_ms;
      *removed += remove[j] ? 1 : 0;
    }
    bank_.RemoveMarkedSlots(c, remove);
  }
  return Status::Ok();
}

Status DualMemoryNetwork::DropHighestEntropyDynamic(int count, int* removed) {
  if (count < 0) {
    return InvalidArgument("DropHighestEntropyDynamic: count is " + std::to_string(count) +
                           ", expected 0 or more");
  }

  // Rank every dynamic slot: highest entropy first, then lowest sequence.
  struct Candidate {
    double entropy;
    uint64_t sequence;
    int class_index, slot;
  };
  std::vector<Candidate> candidates;
  for (int c = 0; c < num_classes(); ++c) {
    for (int j = 0; j < bank_.slot_count(c); ++j) {
      const SlotInfo& info = bank_.slot_info(c, j);
      if (info.source == SlotSource::kDynamic) candidates.push_back({info.entropy, info.sequence, c, j});
    }
  }
  size_t take = std::min(candidates.size(), static_cast<size_t>(count));
  std::partial_sort(candidates.begin(), candidates.begin() + take, candidates.end(),
                    [](const Candidate& a, const Candidate& b) {
                      if (a.entropy != b.entropy) return a.entropy > b.entropy;
                      return a.sequence < b.sequence;
                    });

  std::vector<std::vector<bool>> remove(num_classes());
  for (int c = 0; c < num_classes(); ++c) remove[c].assign(bank_.slot_count(c), false);
  for (size_t k = 0; k < take; ++k) remove[candidates[k].class_index][candidates[k].slot] = true;
  for (int c = 0; c < num_classes(); ++c) bank_.RemoveMarkedSlots(c, remove[c]);
  *removed = static_cast<int>(take);
  return Status::Ok();
}

int DualMemoryNetwork::DynamicCount(int class_index) const {
  if (class_index < 0 || class_index >= num_classes()) return -1;
  int count = 0;
  for (int j = 0; j < bank_.slot_count(class_index); ++j) {
    if (bank_.slot_info(class_index, j).source == SlotSource::kDynamic) ++count;
  }
  return count;
}

int DualMemoryNetwork::ShotCount(int class_index) const {
  if (class_index < 0 || class_index >= num_classes()) return -1;
  return shot_counts_[class_index];
}

size_t DualMemoryNetwork::MemoryBytes() const {
  return bank_.MemoryBytes() + text_.size() * sizeof(float) +
         (adapter_ ? adapter_->MemoryBytes() : 0);
}

// Copies the static memory (text slots, shots and corrections, dequantized)
// in bank order, which AdapterIsCurrent compares against later.
AdapterMemory DualMemoryNetwork::StaticMemory() const {
  AdapterMemory memory;
  memory.dim = dim_;
  memory.num_classes = num_classes();
  memory.beta = config_.beta;
  memory.logit_scale = config_.logit_scale;
  memory.text = text_;
  memory.class_begin.push_back(0);
  std::vector<float> vector(dim_);
  for (int c = 0; c < num_classes(); ++c) {
    for (int j = 0; j < bank_.slot_count(c); ++j) {
      const SlotInfo& info = bank_.slot_info(c, j);
      if (!InStaticMemory(info)) continue;
      bank_.DecodeSlot(c, j, vector.data());
      memory.slots.insert(memory.slots.end(), vector.begin(), vector.end());
      memory.slot_shot.push_back(info.source == SlotSource::kText
                                     ? -1
                                     : static_cast<int64_t>(info.sequence));
    }
    memory.class_begin.push_back(static_cast<int>(memory.slot_shot.size()));
  }
  return memory;
}

// True while the classes, text embeddings and static slots are those the
// adapter was trained on. A slot's vector never changes without its sequence
// number changing, except the text slot, which is compared by value.
bool DualMemoryNetwork::AdapterIsCurrent() const {
  const AdapterMemory& memory = adapter_->memory();
  if (memory.num_classes != num_classes() || memory.text != text_) return false;
  for (int c = 0; c < num_classes(); ++c) {
    int k = memory.class_begin[c];
    for (int j = 0; j < bank_.slot_count(c); ++j) {
      const SlotInfo& info = bank_.slot_info(c, j);
      if (!InStaticMemory(info)) continue;
      int64_t shot = info.source == SlotSource::kText ? -1 : static_cast<int64_t>(info.sequence);
      if (k >= memory.class_begin[c + 1] || memory.slot_shot[k] != shot) return false;
      ++k;
    }
    if (k != memory.class_begin[c + 1]) return false;
  }
  return true;
}

Status DualMemoryNetwork::Train(const TrainConfig& config, TrainResult* out) {
  if (out == nullptr) return InvalidArgument("Train: out is null");
  std::unique_ptr<Adapter> adapter;
  DUALMEM_RETURN_IF_ERROR(Adapter::Train(StaticMemory(), config, out, &adapter));
  adapter_ = std::move(adapter);
  return Status::Ok();
}

bool DualMemoryNetwork::trained() const { return adapter_ != nullptr && AdapterIsCurrent(); }

Status DualMemoryNetwork::Step(const float* views, size_t length, int num_views,
                               double timestamp_ms, bool update_memory, StepOutput* out) {
  // Validate everything before anything is written.
  if (out == nullptr) return InvalidArgument("Step: out is null");
  if (views == nullptr) return InvalidArgument("Step: views is null");
  if (num_classes() == 0) {
    return InvalidArgument("Step: the network has no classes, expected AddClass before Step");
  }
  if (num_views <= 0) {
    return InvalidArgument("Step: num_views is " + std::to_string(num_views) +
                           ", expected an integer > 0");
  }
  size_t expected = static_cast<size_t>(num_views) * dim_;
  DUALMEM_RETURN_IF_ERROR(CheckLength("Step: views", length, expected, "num_views * dim"));
  if (!std::isfinite(timestamp_ms)) {
    return InvalidArgument("Step: timestamp_ms is " + FormatFloat(timestamp_ms) +
                           ", expected a finite number of milliseconds");
  }
  bool has_static = total_shots_ > 0;
  float weight_sum = config_.weight_text + config_.weight_dynamic +
                     (has_static ? config_.weight_static : 0.0f);
  if (weight_sum <= 0.0f) {
    return InvalidArgument("Step: only the static weight is > 0 but no class has shots, "
                           "expected AddShot first or a text or dynamic weight > 0");
  }
  if (views_.size() < expected) views_.resize(expected);
  for (int v = 0; v < num_views; ++v) {
    const float* view = views + static_cast<size_t>(v) * dim_;
    if (!NormalizeL2(view, dim_, views_.data() + static_cast<size_t>(v) * dim_)) {
      std::string field = "Step: views[" + std::to_string(v) + "]";
      return NormalizeInto(field.c_str(), view, views_.data() + static_cast<size_t>(v) * dim_);
    }
  }

  size_t classes = num_classes();
  for (std::vector<float>* probs :
       {&out->text, &out->confident, &out->static_probs, &out->dynamic, &out->fused}) {
    probs->resize(classes);
  }
  out->has_static = has_static;
  out->inserted = false;
  out->replaced_slot = -1;
  out->decision_margin = std::numeric_limits<double>::infinity();

  if (adapter_ && !AdapterIsCurrent()) adapter_.reset();
  ComputeText(num_views, out);
  if (update_memory) UpdateMemory(out->pseudo_label, timestamp_ms, out);
  ReadMemories(out);
  Fuse(out);
  return Status::Ok();
}

// Zero-shot probabilities of every view, the confident-view average, its
// entropy and the pseudo-label.
void DualMemoryNetwork::ComputeText(int num_views, StepOutput* out) {
  size_t classes = num_classes();
  if (view_probs_.size() < num_views * classes) view_probs_.resize(num_views * classes);
  if (view_entropy_.size() < static_cast<size_t>(num_views)) {
    view_entropy_.resize(num_views);
    view_order_.resize(num_views);
  }
  // A trained adapter changes every view's query and the text embeddings.
  const float* queries = views_.data();
  const float* text = text_.data();
  if (adapter_) {
    adapted_views_.resize(static_cast<size_t>(num_views) * dim_);
    for (int v = 0; v < num_views; ++v) {
      adapter_->AdaptQuery(views_.data() + static_cast<size_t>(v) * dim_,
                           adapted_views_.data() + static_cast<size_t>(v) * dim_);
    }
    queries = adapted_views_.data();
    text = adapter_->text();
  }
  for (int v = 0; v < num_views; ++v) {
    DotBlock(queries + static_cast<size_t>(v) * dim_, text, Precision::kFloat32,
             nullptr, classes, dim_, logits_.data());
    double* probs = view_probs_.data() + v * classes;
    ScaledSoftmax(logits_.data(), classes, config_.logit_scale, probs);
    view_entropy_[v] = Entropy(probs, classes);
  }
  for (size_t c = 0; c < classes; ++c) out->text[c] = static_cast<float>(view_probs_[c]);

  // Keep the lowest-entropy views; equal entropies keep the lower index.
  // The small slack stops a float ratio such as 0.7f (0.69999999) from
  // keeping 6 of 10 views.
  int kept_views = static_cast<int>(std::floor(num_views * static_cast<double>(config_.selection_ratio) + 1e-6));
  kept_views = std::max(1, std::min(kept_views, num_views));
  for (int v = 0; v < num_views; ++v) view_order_[v] = v;
  std::sort(view_order_.begin(), view_order_.begin() + num_views, [this](int a, int b) {
    return view_entropy_[a] < view_entropy_[b] || (view_entropy_[a] == view_entropy_[b] && a < b);
  });
  if (kept_views < num_views) {
    double gap = view_entropy_[view_order_[kept_views]] - view_entropy_[view_order_[kept_views - 1]];
    out->decision_margin = std::min(out->decision_margin, gap);
  }

  std::fill(confident_.begin(), confident_.begin() + classes, 0.0);
  for (int k = 0; k < kept_views; ++k) {
    const double* probs = view_probs_.data() + view_order_[k] * classes;
    for (size_t c = 0; c < classes; ++c) confident_[c] += probs[c];
  }
  for (size_t c = 0; c < classes; ++c) {
    confident_[c] /= kept_views;
    out->confident[c] = static_cast<float>(confident_[c]);
  }
  confident_entropy_ = Entropy(confident_.data(), classes);
  out->entropy = static_cast<float>(confident_entropy_);
  double gap = 0.0;
  out->pseudo_label = ArgMax(confident_.data(), classes, &gap);
  out->decision_margin = std::min(out->decision_margin, gap);
}

// Stores view 0 under the pseudo-label: appended while the class has room,
// otherwise in place of the highest-entropy slot if the new entropy is lower.
void DualMemoryNetwork::UpdateMemory(int class_index, double timestamp_ms, StepOutput* out) {
  double entropy = confident_entropy_;
  int dynamic = 0, worst_slot = -1, worst_rank = -1;
  double worst = -std::numeric_limits<double>::infinity();
  double second = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < bank_.slot_count(class_index); ++j) {
    const SlotInfo& info = bank_.slot_info(class_index, j);
    if (info.source != SlotSource::kDynamic) continue;
    if (info.entropy > worst) {
      second = worst;
      worst = info.entropy;
      worst_slot = j;
      worst_rank = dynamic;
    } else {
      second = std::max(second, info.entropy);
    }
    ++dynamic;
  }

  SlotInfo info;
  info.source = SlotSource::kDynamic;
  info.entropy = entropy;
  info.sequence = next_sequence_++;
  info.timestamp_ms = timestamp_ms;
  if (dynamic < config_.capacity) {
    // Allocates once per class: room for every dynamic slot it may hold.
    bank_.Reserve(class_index, bank_.slot_count(class_index) + config_.capacity - dynamic);
    bank_.AppendSlot(class_index, views_.data(), info);
    out->inserted = true;
    return;
  }

  out->decision_margin = std::min(out->decision_margin, std::fabs(entropy - worst));
  if (dynamic > 1) out->decision_margin = std::min(out->decision_margin, worst - second);
  if (entropy < worst) {
    bank_.ReplaceSlot(class_index, worst_slot, views_.data(), info);
    out->inserted = true;
    out->replaced_slot = worst_rank;
  }
}

// Static and dynamic readouts for every class in one pass over the bank:
// score = sum_j w_j s_j / ||sum_j w_j v_j||, s_j = q·v_j,
// w_j = exp(-beta (1 - s_j)), with the norm taken from the Gram matrix.
void DualMemoryNetwork::ReadMemories(StepOutput* out) {
  size_t classes = num_classes();
  bank_.PrepareQuery(views_.data(), &bank_query_);
  for (size_t c = 0; c < classes; ++c) {
    int slots = bank_.slot_count(c);
    bank_.Similarities(c, bank_query_, similarities_.data());
    ReadoutWeights(similarities_.data(), slots, config_.beta, weights_dynamic_.data());
    double static_sum = 0.0, dynamic_sum = 0.0;
    if (shot_counts_[c] == 0) {
      // Without shots or corrections a class contains its text slot (slot
      // 0) and dynamic slots, so every slot is in the dynamic memory and
      // only the text slot in the static one. The step then reads no
      // SlotInfo (32 bytes a slot) for this class.
      for (int j = 0; j < slots; ++j) {
        dynamic_sum += static_cast<double>(weights_dynamic_[j]) * similarities_[j];
      }
      if (out->has_static) {
        std::fill(weights_static_.begin(), weights_static_.begin() + slots, 0.0f);
        weights_static_[0] = weights_dynamic_[0];
        static_sum = static_cast<double>(weights_static_[0]) * similarities_[0];
      }
    } else {
      for (int j = 0; j < slots; ++j) {
        const SlotInfo& info = bank_.slot_info(c, j);
        float s = similarities_[j];
        float w = weights_dynamic_[j];
        weights_static_[j] = InStaticMemory(info) ? w : 0.0f;
        if (!InDynamicMemory(info)) weights_dynamic_[j] = 0.0f;
        static_sum += static_cast<double>(weights_static_[j]) * s;
        dynamic_sum += static_cast<double>(weights_dynamic_[j]) * s;
      }
    }
    if (out->has_static) {
      double norm = std::sqrt(bank_.WeightedNormSquared(c, weights_static_.data()));
      static_scores_[c] = norm > 0.0 ? static_cast<float>(static_sum / norm) : 0.0f;
    }
    double norm = std::sqrt(bank_.WeightedNormSquared(c, weights_dynamic_.data()));
    dynamic_scores_[c] = norm > 0.0 ? static_cast<float>(dynamic_sum / norm) : 0.0f;
  }

  // A trained adapter replaces the static readout with its own, on the
  // adapted query. The dynamic slots are unadapted test images, so their
  // readout keeps the unadapted query that they are comparable with.
  if (adapter_ && out->has_static) {
    adapter_->StaticScores(adapted_views_.data(), static_scores_.data());
  }

  ScaledSoftmax(dynamic_scores_.data(), classes, config_.logit_scale, dynamic_probs_.data());
  for (size_t c = 0; c < classes; ++c) out->dynamic[c] = static_cast<float>(dynamic_probs_[c]);
  if (out->has_static) {
    ScaledSoftmax(static_scores_.data(), classes, config_.logit_scale, static_probs_.data());
  } else {
    std::fill(static_probs_.begin(), static_probs_.begin() + classes, 0.0);
  }
  for (size_t c = 0; c < classes; ++c) out->static_probs[c] = static_cast<float>(static_probs_[c]);
}

// Weighted mean of the heads in use; the static head drops out without shots.
void DualMemoryNetwork::Fuse(StepOutput* out) {
  size_t classes = num_classes();
  double weight_text = config_.weight_text, weight_dynamic = config_.weight_dynamic;
  double weight_static = out->has_static ? config_.weight_static : 0.0;
  double inverse = 1.0 / (weight_text + weight_dynamic + weight_static);
  for (size_t c = 0; c < classes; ++c) {
    fused_[c] = inverse * (weight_text * view_probs_[c] + weight_dynamic * dynamic_probs_[c] +
                           weight_static * static_probs_[c]);
    out->fused[c] = static_cast<float>(fused_[c]);
  }
  double gap = 0.0;
  out->label = ArgMax(fused_.data(), classes, &gap);
  out->decision_margin = std::min(out->decision_margin, gap);
}

Status AverageClassEmbedding(const float* prompt_embeddings, size_t length, int num_prompts,
                             int dim, std::vector<float>* out) {
  if (out == nullptr) return InvalidArgument("AverageClassEmbedding: out is null");
  if (prompt_embeddings == nullptr) {
    return InvalidArgument("AverageClassEmbedding: prompt_embeddings is null");
  }
  if (dim <= 0 || num_prompts <= 0) {
    return InvalidArgument("AverageClassEmbedding: num_prompts is " + std::to_string(num_prompts) +
                           " and dim is " + std::to_string(dim) + ", expected both > 0");
  }
  size_t expected = static_cast<size_t>(num_prompts) * dim;
  DUALMEM_RETURN_IF_ERROR(CheckLength("AverageClassEmbedding: prompt_embeddings", length,
                                      expected, "num_prompts * dim"));

  std::vector<double> sum(dim, 0.0);
  std::vector<float> unit(dim);
  for (int p = 0; p < num_prompts; ++p) {
    const float* prompt = prompt_embeddings + static_cast<size_t>(p) * dim;
    std::string field = "AverageClassEmbedding: prompt " + std::to_string(p);
    for (int i = 0; i < dim; ++i) {
      if (!std::isfinite(prompt[i])) {
        return InvalidArgument(field + " value " + std::to_string(i) + " is " +
                               FormatFloat(prompt[i]) + ", expected a finite number");
      }
    }
    if (!NormalizeL2(prompt, dim, unit.data())) {
      return InvalidArgument(field + " has zero length, expected a non-zero embedding");
    }
    for (int i = 0; i < dim; ++i) sum[i] += unit[i];
  }

  std::vector<float> mean(sum.begin(), sum.end());
  if (!NormalizeL2(mean.data(), dim, mean.data())) {
    return InvalidArgument("AverageClassEmbedding: the prompt embeddings cancel out to zero, "
                           "expected prompts with a non-zero mean direction");
  }
  out->swap(mean);
  return Status::Ok();
}

}  // namespace dualmem
