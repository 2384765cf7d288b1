// Dual Memory Networks (Zhang et al., "Dual Memory Networks: A Versatile
// Adaptation Approach for Vision-Language Models", CVPR 2024), training-free
// variant: CLIP zero-shot text logits fused with readouts of a static memory
// (labelled shots) and a dynamic memory (confident test images).
//
// All embeddings are scaled to unit length on entry. Errors return
// InvalidArgument or NotFound with a message naming the field and leave the
// network unchanged. Pointers are borrowed for the duration of a call.
#ifndef DUALMEM_DMN_H_
#define DUALMEM_DMN_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "adapter.h"
#include "kernels.h"
#include "memory_bank.h"
#include "status.h"

namespace dualmem {

// Library defaults, the same as DMN_DEFAULTS in web/src/core.js. β, the
// selection ratio and the weights were chosen on validation data only, never
// on evaluation sets (models/ACCURACY.md).
struct DmnConfig {
  float logit_scale = 100.0f;    // CLIP's logit scale
  float beta = 3.0f;             // β in the readout weight exp(-β(1 - q·k)); DMN (CVPR 2024) uses 5.5
  int capacity = 50;             // dynamic slots per class
  float selection_ratio = 0.5f;  // share of views kept as confident, lowest entropy first
  float weight_text = 1.0f, weight_dynamic = 1.0f, weight_static = 4.0f;
  Precision precision = Precision::kFloat32;  // element type of stored slots
};

// Probabilities of one step. Each vector has num_classes() values; pass the
// same object to every step to reuse its storage.
struct StepOutput {
  std::vector<float> text, confident, static_probs, dynamic, fused;
  bool has_static = false;  // false when no class has shots (static_probs is 0)
  int label = -1;           // argmax of fused
  int pseudo_label = -1;    // argmax of confident, the class the update used
  float entropy = 0;        // entropy (nats) of confident
  bool inserted = false;    // the memory update appended or replaced a slot
  int replaced_slot = -1;   // dynamic slot index overwritten, -1 if appended
  // Smallest gap between a chosen and a rejected value among this step's
  // discrete choices (confident-view cutoff, pseudo-label, replacement,
  // label). A gap below 1e-6 means the choice was a tie that rounding decides.
  double decision_margin = 0;
};

class DualMemoryNetwork {
 public:
  // Validates `config` and creates an empty network of `dim`-dimensional
  // embeddings.
  static Status Create(int dim, const DmnConfig& config,
                       std::unique_ptr<DualMemoryNetwork>* out);

  int dim() const { return dim_; }
  int num_classes() const { return static_cast<int>(shot_counts_.size()); }
  const DmnConfig& config() const { return config_; }

  // Sets the fusion weights: each finite and >= 0, not all zero.
  Status SetWeights(float text, float dynamic, float static_weight);
  // Appends a class with its (averaged) text embedding of `dim` floats.
  Status AddClass(const float* text_embedding, size_t length);
  // Removes a class and its memories; later classes shift down by one.
  Status RemoveClass(int class_index);
  // Replaces a class's text embedding; its memories stay.
  Status SetClassEmbedding(int class_index, const float* embedding, size_t length);
  // Adds a labelled image as `num_views` embeddings (length == num_views *
  // dim); views[0] is the original image, the rest augmented views.
  Status AddShot(int class_index, const float* views, size_t length, int num_views);
  // Classifies one image given as `num_views` embeddings, views[0] the
  // original. With update_memory false the dynamic memory is left as it is.
  // Fails if there are no classes or the weights in use are all zero.
  Status Step(const float* views, size_t length, int num_views,
              double timestamp_ms, bool update_memory, StepOutput* out);
  // Stores a saved test image (dim floats) as a dynamic slot of a class, for
  // example when a session is reloaded. `entropy` is the value it had when
  // first stored. Fails with kLimitExceeded when the class is full.
  Status RestoreDynamic(int class_index, const float* view, size_t length, double entropy,
                        double timestamp_ms);
  // Adds a test image that a user labelled, as `num_views` embeddings like
  // AddShot. It counts and reads out as a shot; only its source differs
  // (SlotSource::kCorrection), so storage can tell the two apart.
  Status AddCorrection(int class_index, const float* views, size_t length, int num_views);
  // Empties every class's dynamic slots.
  void ResetDynamic();
  // Removes all shots of a class, corrections included.
  Status ClearShots(int class_index);

  // Retention of dynamic slots; shots and corrections are never touched.
  // Removes every dynamic slot stored before `cutoff_ms` (ms since the
  // epoch) and sets `*removed` to their number. Fails with
  // kInvalidArgument for a non-finite cutoff.
  Status DropDynamicOlderThan(double cutoff_ms, int* removed);
  // Removes the `count` dynamic slots of highest entropy over all classes,
  // the older one first on ties. When fewer exist, all of them go.
  // `*removed` gets the number removed. Fails with kInvalidArgument for a
  // negative count.
  Status DropHighestEntropyDynamic(int count, int* removed);

  // Exact restore, for snapshots (snapshot.h). Unlike AddClass and AddShot
  // these store their input bit for bit instead of rescaling it, so a
  // restored network steps exactly like the saved one. Input must be
  // finite and of unit length within a tolerance per precision.
  //
  // Appends a class whose text slot gets `sequence`, reserving room for
  // `num_slots` further slots.
  Status RestoreClass(const float* unit_embedding, size_t length, uint64_t sequence,
                      int num_slots);
  // Appends a shot, correction or dynamic slot in stored form: dim elements
  // of config().precision and its int8 scale (exactly 1 otherwise). The
  // views of one shot come in order 0, 1, ... with one sequence number.
  Status RestoreSlot(int class_index, const void* stored, float scale, const SlotInfo& info);
  // Sets the sequence number of the next stored item; it must exceed every
  // sequence number in the network.
  Status SetNextSequence(uint64_t next_sequence);
  uint64_t next_sequence() const { return next_sequence_; }
  // Unit text embedding of a class (dim floats); null for an unknown class.
  const float* class_embedding(int class_index) const;

  // Trains the few-shot adapter (adapter.h) on the shots and corrections,
  // from zero offsets, replacing any earlier one. Step then adapts every
  // view's query, the text head and the static readout, while the dynamic
  // readout stays unadapted. A change to the classes, text embeddings, shots or
  // corrections makes the adapter stale, and the next Step drops it. On
  // error (see Adapter::Train) the network is unchanged.
  Status Train(const TrainConfig& config, TrainResult* out);
  // Drops the trained adapter, back to the training-free readout.
  void ResetAdapter() { adapter_.reset(); }
  // True while a trained adapter is in use and not stale.
  bool trained() const;

  int DynamicCount(int class_index) const;  // -1 for an unknown class
  int ShotCount(int class_index) const;     // images, not views; -1 if unknown
  // Bytes of stored vectors, metadata and Gram matrices, plus the float32
  // text embeddings used by the zero-shot head.
  size_t MemoryBytes() const;
  const MemoryBank& bank() const { return bank_; }

 private:
  DualMemoryNetwork(int dim, const DmnConfig& config);
  Status CheckClassIndex(const char* operation, int class_index) const;
  Status NormalizeInto(const char* field, const float* values, float* out) const;
  void GrowScratch(int class_index);
  Status AddLabelledViews(const char* operation, SlotSource source, int class_index,
                          const float* views, size_t length, int num_views);
  Status CheckStoredVector(const char* field, const void* stored, float scale) const;
  AdapterMemory StaticMemory() const;
  bool AdapterIsCurrent() const;
  void ComputeText(int num_views, StepOutput* out);
  void UpdateMemory(int class_index, double timestamp_ms, StepOutput* out);
  void ReadMemories(StepOutput* out);
  void Fuse(StepOutput* out);

  int dim_;
  DmnConfig config_;
  std::vector<float> text_;       // num_classes x dim, unit rows
  MemoryBank bank_;               // slot 0 of each class is its text embedding
  std::vector<int> shot_counts_;  // shot and correction images per class
  int total_shots_ = 0;
  uint64_t next_sequence_ = 0;

  // Scratch reused by Step so that a step allocates nothing once sizes settle.
  std::vector<float> views_, logits_, similarities_, weights_static_, weights_dynamic_;
  std::vector<float> static_scores_, dynamic_scores_;
  std::vector<double> view_probs_, confident_, static_probs_, dynamic_probs_, fused_;
  std::vector<double> view_entropy_;
  std::vector<int> view_order_;
  double confident_entropy_ = 0.0;
  BankQuery bank_query_;
  std::unique_ptr<Adapter> adapter_;  // null until Train
  std::vector<float> adapted_views_;  // Step scratch: adapted view queries
};

// Averages `num_prompts` prompt embeddings of `dim` floats (length ==
// num_prompts * dim) into one class embedding: each prompt is scaled to unit
// length, the mean is taken and scaled to unit length again.
Status AverageClassEmbedding(const float* prompt_embeddings, size_t length,
                             int num_prompts, int dim, std::vector<float>* out);

}  // namespace dualmem

#endif  // DUALMEM_DMN_H_
