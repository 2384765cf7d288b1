#include "memory_bank.h"

#include <algorithm>
#include <cstring>

namespace dualmem {

MemoryBank::MemoryBank(int dim, Precision precision)
    : dim_(dim),
      precision_(precision),
      slot_bytes_(static_cast<size_t>(dim) * PrecisionBytes(precision)),
      decoded_(static_cast<size_t>(dim)) {}

int MemoryBank::slot_count(int class_index) const {
  return static_cast<int>(classes_[class_index].infos.size());
}

const SlotInfo& MemoryBank::slot_info(int class_index, int slot) const {
  return classes_[class_index].infos[slot];
}

void MemoryBank::AddClass() { classes_.emplace_back(); }

void MemoryBank::RemoveClass(int class_index) {
  classes_.erase(classes_.begin() + class_index);
}

void MemoryBank::Reserve(int class_index, int num_slots) {
  ClassSlots& slots = classes_[class_index];
  slots.data.reserve(static_cast<size_t>(num_slots) * slot_bytes_);
  slots.scales.reserve(num_slots);
  slots.infos.reserve(num_slots);
  EnsureGramStride(&slots, num_slots);
}

// Grows the Gram matrix's row stride to at least `num_slots`, doubling so
// that a run of appends copies the matrix only a logarithmic number of times.
void MemoryBank::EnsureGramStride(ClassSlots* slots, int num_slots) {
  if (num_slots <= slots->gram_stride) return;
  int stride = std::max(num_slots, 2 * slots->gram_stride);
  std::vector<float> gram(static_cast<size_t>(stride) * stride, 0.0f);
  int filled = static_cast<int>(slots->infos.size());
  for (int i = 0; i < filled; ++i) {
    std::memcpy(&gram[static_cast<size_t>(i) * stride],
                &slots->gram[static_cast<size_t>(i) * slots->gram_stride],
                filled * sizeof(float));
  }
  slots->gram.swap(gram);
  slots->gram_stride = stride;
}

void MemoryBank::StoreVector(ClassSlots* slots, int slot, const float* vector) {
  EncodeVector(vector, dim_, precision_, &slots->data[slot * slot_bytes_],
               &slots->scales[slot]);
}

// Recomputes row and column `slot` from the stored form of every slot, so the
// matrix describes exactly the vectors a readout will see.
void MemoryBank::UpdateGramRow(ClassSlots* slots, int slot) {
  int filled = static_cast<int>(slots->infos.size());
  if (precision_ == Precision::kInt8) {
    // The entry is the integer dot product of both slots' levels times both
    // scales, so it does not depend on which slot was stored last. A bank
    // rebuilt slot by slot from a snapshot then has the saved matrix, even
    // after replacements.
    const int8_t* levels = reinterpret_cast<const int8_t*>(&slots->data[slot * slot_bytes_]);
    widened_.assign(levels, levels + dim_);
    float* row = &slots->gram[static_cast<size_t>(slot) * slots->gram_stride];
    DotBlockInt8(widened_.data(), slots->scales[slot],
                 reinterpret_cast<const int8_t*>(slots->data.data()), slots->scales.data(),
                 filled, dim_, row);
    for (int j = 0; j < filled; ++j) {
      slots->gram[static_cast<size_t>(j) * slots->gram_stride + slot] = row[j];
    }
    return;
  }
  // A float32 slot is its own decoded form, so it is read in place. A copy
  // would cost a snapshot load one more pass over every stored vector.
  const float* query = reinterpret_cast<const float*>(&slots->data[slot * slot_bytes_]);
  if (precision_ != Precision::kFloat32) {
    DecodeVector(&slots->data[slot * slot_bytes_], dim_, precision_, slots->scales[slot],
                 decoded_.data());
    query = decoded_.data();
  }
  float* row = &slots->gram[static_cast<size_t>(slot) * slots->gram_stride];
  DotBlock(query, slots->data.data(), precision_, slots->scales.data(), filled, dim_, row);
  for (int j = 0; j < filled; ++j) {
    slots->gram[static_cast<size_t>(j) * slots->gram_stride + slot] = row[j];
  }
}

int MemoryBank::AppendSlot(int class_index, const float* vector,
                           const SlotInfo& info) {
  ClassSlots& slots = classes_[class_index];
  int slot = static_cast<int>(slots.infos.size());
  EnsureGramStride(&slots, slot + 1);
  slots.data.resize(slots.data.size() + slot_bytes_);
  slots.scales.push_back(1.0f);
  slots.infos.push_back(info);
  StoreVector(&slots, slot, vector);
  UpdateGramRow(&slots, slot);
  return slot;
}

int MemoryBank::AppendStoredSlot(int class_index, const void* stored, float scale,
                                 const SlotInfo& info) {
  ClassSlots& slots = classes_[class_index];
  int slot = static_cast<int>(slots.infos.size());
  EnsureGramStride(&slots, slot + 1);
  slots.data.resize(slots.data.size() + slot_bytes_);
  std::memcpy(&slots.data[slot * slot_bytes_], stored, slot_bytes_);
  slots.scales.push_back(scale);
  slots.infos.push_back(info);
  UpdateGramRow(&slots, slot);
  return slot;
}

void MemoryBank::ReplaceSlot(int class_index, int slot, const float* vector,
                             const SlotInfo& info) {
  ClassSlots& slots = classes_[class_index];
  slots.infos[slot] = info;
  StoreVector(&slots, slot, vector);
  UpdateGramRow(&slots, slot);
}

void MemoryBank::RemoveSlots(int class_index, SlotSource source) {
  const std::vector<SlotInfo>& infos = classes_[class_index].infos;
  std::vector<bool> remove(infos.size());
  for (size_t i = 0; i < infos.size(); ++i) remove[i] = infos[i].source == source;
  RemoveMarkedSlots(class_index, remove);
}

void MemoryBank::RemoveMarkedSlots(int class_index, const std::vector<bool>& remove) {
  ClassSlots& slots = classes_[class_index];
  int filled = static_cast<int>(slots.infos.size());
  size_t stride = slots.gram_stride;

  // Old indices of the slots that stay, in order: entry n moves to index n.
  std::vector<int> kept_slots;
  kept_slots.reserve(filled);
  for (int i = 0; i < filled; ++i) {
    if (!remove[i]) kept_slots.push_back(i);
  }
  if (static_cast<int>(kept_slots.size()) == filled) return;

  // Compact vectors, metadata and the Gram matrix in place. Every kept
  // index is >= its new index, so moving forward never overwrites an entry
  // that is still to be read.
  for (size_t n = 0; n < kept_slots.size(); ++n) {
    size_t old = kept_slots[n];
    if (old != n) {
      std::memmove(&slots.data[n * slot_bytes_], &slots.data[old * slot_bytes_], slot_bytes_);
      slots.scales[n] = slots.scales[old];
      slots.infos[n] = slots.infos[old];
    }
    for (size_t m = 0; m < kept_slots.size(); ++m) {
      slots.gram[n * stride + m] = slots.gram[old * stride + kept_slots[m]];
    }
  }
  slots.data.resize(kept_slots.size() * slot_bytes_);
  slots.scales.resize(kept_slots.size());
  slots.infos.resize(kept_slots.size());
}

void MemoryBank::RemoveSlotsEverywhere(SlotSource source) {
  for (int c = 0; c < num_classes(); ++c) RemoveSlots(c, source);
}

void MemoryBank::PrepareQuery(const float* query, BankQuery* out) const {
  out->values = query;
  if (precision_ != Precision::kInt8) return;
  out->levels.resize(dim_);
  out->level_scale = QuantizeQueryInt16(query, dim_, out->levels.data());
}

void MemoryBank::Similarities(int class_index, const BankQuery& query, float* out) const {
  const ClassSlots& slots = classes_[class_index];
  if (precision_ == Precision::kInt8) {
    DotBlockInt8(query.levels.data(), query.level_scale,
                 reinterpret_cast<const int8_t*>(slots.data.data()), slots.scales.data(),
                 slots.infos.size(), dim_, out);
    return;
  }
  DotBlock(query.values, slots.data.data(), precision_, slots.scales.data(),
           slots.infos.size(), dim_, out);
}

void MemoryBank::AllSimilarities(const BankQuery& query, float* out) const {
  for (int c = 0; c < num_classes(); ++c) {
    Similarities(c, query, out);
    out += classes_[c].infos.size();
  }
}

size_t MemoryBank::total_slot_count() const {
  size_t total = 0;
  for (const ClassSlots& slots : classes_) total += slots.infos.size();
  return total;
}

// The Gram matrix is symmetric, so only the diagonal and the part right of
// it are read: wᵀGw = sum_i w_i (w_i G_ii + 2 sum_{j>i} G_ij w_j). That halves
// the bytes read, which matters because the matrices are about a tenth the
// size of the float32 vectors (a fifth at int8).
double MemoryBank::WeightedNormSquared(int class_index, const float* weights) const {
  const ClassSlots& slots = classes_[class_index];
  return SymmetricQuadraticForm(slots.gram.data(), slots.gram_stride, weights,
                                slots.infos.size());
}

float MemoryBank::gram(int class_index, int i, int j) const {
  const ClassSlots& slots = classes_[class_index];
  return slots.gram[static_cast<size_t>(i) * slots.gram_stride + j];
}

void MemoryBank::DecodeSlot(int class_index, int slot, float* out) const {
  const ClassSlots& slots = classes_[class_index];
  DecodeVector(&slots.data[slot * slot_bytes_], dim_, precision_,
               slots.scales[slot], out);
}

const void* MemoryBank::stored_slot(int class_index, int slot) const {
  return &classes_[class_index].data[slot * slot_bytes_];
}

float MemoryBank::slot_scale(int class_index, int slot) const {
  return classes_[class_index].scales[slot];
}

size_t MemoryBank::MemoryBytes() const {
  size_t bytes = 0;
  for (const ClassSlots& slots : classes_) {
    size_t filled = slots.infos.size();
    bytes += filled * slot_bytes_;
    if (precision_ == Precision::kInt8) bytes += filled * sizeof(float);
    bytes += filled * sizeof(SlotInfo);
    bytes += filled * filled * sizeof(float);
  }
  return bytes;
}

}  // namespace dualmem
