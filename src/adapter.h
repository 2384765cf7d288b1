// Few-shot training of Dual Memory Networks with learned projections: small
// residual offsets, trained on the labelled shots, for the query, the key and
// the value of every static-memory slot, the readout prototype of each class
// and each class's text embedding. All offsets start at zero, where the
// adapted readout equals the training-free one.
//
// With query q (unit), slots k_j, v_j, prototype offsets o_c and text t_c:
//   q' = normalize(q * (1 + a) + b)                  a, b: dim values each
//   s_j = q' . (k_j + dk_j),  w_j = exp(-beta (1 - s_j))
//   p_c = normalize(sum_j w_j (v_j + dv_j)) + o_c,   static logit = L q' . p_c / |p_c|
//   text logit = L q' . normalize(t_c + dt_c)        L: the logit scale
// Keys and values differ once trained, so the prototype is summed explicitly
// instead of from the Gram matrix of the stored vectors. Parameters: 2 dim
// (query) + 2 dim per static slot (keys, values) + 2 dim per class (output,
// text); 10 classes x 16 one-view shots at dim 512 have 185,344.
//
// Training minimizes label-smoothed cross-entropy of the static and the text
// logits (summed) over the shots, each shot classified by a memory without
// its own views, with AdamW and a cosine learning-rate schedule.
#ifndef DUALMEM_ADAPTER_H_
#define DUALMEM_ADAPTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "status.h"

namespace dualmem {

// Starting values, to be replaced by values chosen on validation data.
struct TrainConfig {
  int epochs = 20;               // passes over the shots, 1 to kMaxTrainEpochs
  float learning_rate = 1e-2f;   // peak AdamW step size, finite and >= 0
  float weight_decay = 0.01f;    // decoupled decay, pulls offsets back to zero
  float label_smoothing = 0.1f;  // share of the target spread evenly, [0, 1)
  int batch_size = 32;           // shots per AdamW step, >= 1
  uint64_t seed = 0;             // shuffling and choice of training views
  // Learning-rate factor of the key, value, output and text offsets. The
  // query offsets, shared by every class, take the full rate. Adam moves
  // each parameter by about the rate per step, however few shots inform
  // it. So at factor 1 the per-slot offsets memorize the shots before the
  // shared query offsets learn anything that carries over to new images,
  // and on the synthetic problem of adapter_test held-out accuracy drops.
  float per_class_rate_scale = 0.1f;  // finite and >= 0
};

struct TrainResult {
  std::vector<float> loss_per_epoch;  // mean loss of each epoch's shots
};

constexpr int kMaxTrainEpochs = 10000;

// The training-free memory that DualMemoryNetwork::Train copies out for an
// adapter to start from.
struct AdapterMemory {
  int dim = 0, num_classes = 0;
  float beta = 0, logit_scale = 0;
  std::vector<float> text;         // num_classes x dim, unit rows
  std::vector<float> slots;        // static slots x dim, class after class
  std::vector<int> class_begin;    // num_classes + 1 slot offsets
  std::vector<int64_t> slot_shot;  // shot id of each slot (its views share
                                   // it), -1 for a text slot
};

class Adapter {
 public:
  // Validates `config`, trains from zero offsets and writes the adapter and
  // the loss curve. Returns kInvalidArgument for a bad config, a memory
  // without shots or a loss that stops being finite (a learning rate too
  // high), and leaves `out` and `result` unchanged then.
  static Status Train(AdapterMemory memory, const TrainConfig& config, TrainResult* result,
                      std::unique_ptr<Adapter>* out);
  // An adapter with zero offsets (for tests and gradient checks).
  static std::unique_ptr<Adapter> Untrained(AdapterMemory memory);

  // Writes the adapted, unit-length query (dim floats) of a unit query.
  void AdaptQuery(const float* query, float* out) const;
  // The memory it was trained on.
  const AdapterMemory& memory() const { return memory_; }
  // Adapted text embeddings, num_classes x dim unit rows.
  const float* text() const { return text_.data(); }
  // Writes the static readout cosine of every class for an adapted query.
  // Not thread-safe: it reuses scratch buffers.
  void StaticScores(const float* adapted_query, float* scores);
  size_t MemoryBytes() const;

  // Parameter groups in the flat parameter vector, for tests.
  enum Group { kQueryScale, kQueryShift, kKeys, kValues, kOutput, kText, kNumGroups };
  static const char* GroupName(int group);
  size_t group_offset(int group) const { return group_offsets_[group]; }
  size_t num_parameters() const { return group_offsets_[kNumGroups]; }
  const std::vector<float>& parameters() const { return parameters_; }
  // Indices of the static slots that are shot views (training queries).
  const std::vector<int>& shot_slots() const { return shot_slots_; }
  // Computes the mean loss over the queries `query_slots` at `parameters`
  // and its gradient in double, for finite-difference checks.
  double LossAndGradient(const std::vector<double>& parameters,
                         const std::vector<int>& query_slots, double label_smoothing,
                         std::vector<double>* gradient) const;

 private:
  explicit Adapter(AdapterMemory memory);
  template <typename T>
  double Accumulate(const T* parameters, const int* query_slots, int count,
                    double label_smoothing, T* gradient) const;
  void Refresh();  // recomputes the adapted keys, values and text

  AdapterMemory memory_;
  size_t group_offsets_[kNumGroups + 1];
  std::vector<float> parameters_;
  std::vector<int> slot_class_, shot_slots_;
  std::vector<float> keys_, values_, text_;  // adapted, for Step
  std::vector<float> similarities_, weights_;  // StaticScores scratch
  std::vector<double> prototype_;
};

}  // namespace dualmem

#endif  // DUALMEM_ADAPTER_H_
