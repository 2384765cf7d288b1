// Per-class storage of memory slots (unit vectors in float32, float16 or
// int8) with their metadata and the Gram matrix of each class's stored
// vectors. The Gram matrix lets a readout compute its prototype norm
// ||sum_j w_j v_j|| = sqrt(wᵀGw) from the similarities alone, so a step reads
// every stored vector once.
//
// The bank trusts its caller (DualMemoryNetwork): class and slot indices must
// be in range and vectors must have dim() finite values. It does no I/O and
// reports no errors.
#ifndef DUALMEM_MEMORY_BANK_H_
#define DUALMEM_MEMORY_BANK_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace dualmem {

// Origin of a slot's vector.
enum class SlotSource : uint8_t {
  kText = 0,        // the class's averaged prompt embedding
  kShot = 1,        // a view of a labelled example image
  kDynamic = 2,     // a test image stored under its pseudo-label
  kCorrection = 3,  // a test image stored under a label the user gave
};

// Metadata kept beside each stored vector.
struct SlotInfo {
  SlotSource source = SlotSource::kDynamic;
  uint16_t view = 0;         // view index within its image; 0 is the original
  double entropy = 0.0;      // entropy (nats) of the prediction when stored
  uint64_t sequence = 0;     // arrival order, assigned by the caller
  double timestamp_ms = 0.0; // caller's clock, milliseconds since the epoch
};

// A query prepared once per step for Similarities: int8 banks need it as
// int16 levels, which should not be recomputed for every class.
struct BankQuery {
  const float* values = nullptr;  // borrowed, dim floats
  std::vector<int16_t> levels;    // int8 banks only
  float level_scale = 0.0f;
};

class MemoryBank {
 public:
  MemoryBank(int dim, Precision precision);

  int dim() const { return dim_; }
  Precision precision() const { return precision_; }
  int num_classes() const { return static_cast<int>(classes_.size()); }
  int slot_count(int class_index) const;
  const SlotInfo& slot_info(int class_index, int slot) const;

  // Appends an empty class at the end.
  void AddClass();
  // Removes a class; later classes shift down by one.
  void RemoveClass(int class_index);
  // Allocates room for `num_slots` slots so appends up to that count do not
  // allocate.
  void Reserve(int class_index, int num_slots);

  // Stores `vector` as a new last slot and adds its Gram row. Returns the
  // slot index.
  int AppendSlot(int class_index, const float* vector, const SlotInfo& info);
  // Appends a slot given in stored form (as `stored_slot` and `slot_scale`
  // return it), copied bit for bit, and adds its Gram row. Returns the slot
  // index.
  int AppendStoredSlot(int class_index, const void* stored, float scale,
                       const SlotInfo& info);
  // Overwrites a slot in place and recomputes its Gram row and column.
  void ReplaceSlot(int class_index, int slot, const float* vector,
                   const SlotInfo& info);
  // Removes every slot whose source is `source`, keeping the order of the
  // others, and compacts the Gram matrix to match.
  void RemoveSlots(int class_index, SlotSource source);
  // Removes all slots of every class whose source is `source`.
  void RemoveSlotsEverywhere(SlotSource source);
  // Removes the slots i with remove[i] true (slot_count entries), keeping
  // the order of the others.
  void RemoveMarkedSlots(int class_index, const std::vector<bool>& remove);

  // Prepares `query` (dim floats, borrowed until the last use of `out`).
  void PrepareQuery(const float* query, BankQuery* out) const;
  // Writes query · v_j for every slot j of the class (slot_count values),
  // reading the stored form directly.
  void Similarities(int class_index, const BankQuery& query, float* out) const;
  // Writes query · v_j for every slot of every class, class 0 first and each
  // class in slot order (total_slot_count() values), with the kernels that
  // Similarities uses and nothing else. Benchmarks time it as the least a
  // step can cost: one read of every stored vector.
  void AllSimilarities(const BankQuery& query, float* out) const;
  // Sum of slot_count over all classes.
  size_t total_slot_count() const;
  // Returns wᵀGw, the squared norm of sum_j weights[j] v_j, for slot_count
  // weights; zero weights skip their row.
  double WeightedNormSquared(int class_index, const float* weights) const;
  // Gram entry v_i · v_j of the stored (dequantized) vectors.
  float gram(int class_index, int i, int j) const;
  // Writes the dequantized vector of a slot (dim floats).
  void DecodeSlot(int class_index, int slot, float* out) const;
  // Stored form of a slot: dim elements of precision(), valid until the
  // class changes.
  const void* stored_slot(int class_index, int slot) const;
  // Int8 scale of a slot (stored ~= vector / scale); 1 for other precisions.
  float slot_scale(int class_index, int slot) const;

  // Bytes of stored vectors, int8 scales, slot metadata and Gram matrices
  // (filled slots only; reserved room is not counted).
  size_t MemoryBytes() const;

 private:
  struct ClassSlots {
    std::vector<uint8_t> data;  // slot_count * dim elements of precision_
    std::vector<float> scales;  // one per slot; 1 unless precision_ is int8
    std::vector<SlotInfo> infos;
    std::vector<float> gram;    // gram_stride x gram_stride, row-major
    int gram_stride = 0;
  };

  void EnsureGramStride(ClassSlots* slots, int num_slots);
  void StoreVector(ClassSlots* slots, int slot, const float* vector);
  void UpdateGramRow(ClassSlots* slots, int slot);

  int dim_;
  Precision precision_;
  size_t slot_bytes_;
  std::vector<ClassSlots> classes_;
  std::vector<float> decoded_;  // one decoded vector, reused by Gram updates
  std::vector<int16_t> widened_;  // one int8 vector as int16, for int8 Gram updates
};

}  // namespace dualmem

#endif  // DUALMEM_MEMORY_BANK_H_
