#include "adapter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "kernels.h"
#include "random.h"

namespace dualmem {
namespace {

// AdamW moment decay rates and denominator guard, the defaults of Loshchilov
// and Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019).
constexpr float kAdamBeta1 = 0.9f;
constexpr float kAdamBeta2 = 0.999f;
constexpr float kAdamEpsilon = 1e-8f;
constexpr double kPi = 3.14159265358979323846;

std::string FormatFloat(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);
  return buffer;
}

// Dot products: the float path uses the SIMD kernel, the double path (the
// gradient check) a plain loop.
template <typename T>
T DotOf(const T* a, const T* b, int n) {
  T sum = 0;
  for (int i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}
template <>
float DotOf<float>(const float* a, const float* b, int n) {
  return Dot(a, b, n);
}

template <typename T>
T NormOf(const T* x, int n) {
  return static_cast<T>(std::sqrt(static_cast<double>(DotOf(x, x, n))));
}

// y += alpha x.
template <typename T>
void Axpy(T alpha, const T* x, T* y, int n) {
  for (int i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// Returns the label-smoothed cross-entropy of `logits` for class `label` and
// writes its gradient, softmax minus target, scaled by `scale`.
template <typename T>
double SmoothedCrossEntropy(const T* logits, int count, int label, double smoothing,
                            double scale, T* gradient) {
  double max = logits[0];
  for (int c = 1; c < count; ++c) max = std::max(max, static_cast<double>(logits[c]));
  double sum = 0.0;
  for (int c = 0; c < count; ++c) sum += std::exp(logits[c] - max);
  double log_sum = std::log(sum);
  double loss = 0.0;
  for (int c = 0; c < count; ++c) {
    double target = smoothing / count + (c == label ? 1.0 - smoothing : 0.0);
    double log_prob = logits[c] - max - log_sum;
    loss -= target * log_prob;
    gradient[c] = static_cast<T>(scale * (std::exp(log_prob) - target));
  }
  return loss;
}

Status CheckTrainConfig(const TrainConfig& config) {
  if (config.epochs < 1 || config.epochs > kMaxTrainEpochs) {
    return InvalidArgument("Train: epochs is " + std::to_string(config.epochs) +
                           ", expected 1 to " + std::to_string(kMaxTrainEpochs));
  }
  if (!(std::isfinite(config.learning_rate) && config.learning_rate >= 0.0f)) {
    return InvalidArgument("Train: learning_rate is " + FormatFloat(config.learning_rate) +
                           ", expected a finite value >= 0 such as 1e-3");
  }
  if (!(std::isfinite(config.weight_decay) && config.weight_decay >= 0.0f)) {
    return InvalidArgument("Train: weight_decay is " + FormatFloat(config.weight_decay) +
                           ", expected a finite value >= 0 such as 0.01");
  }
  if (!(config.label_smoothing >= 0.0f && config.label_smoothing < 1.0f)) {
    return InvalidArgument("Train: label_smoothing is " + FormatFloat(config.label_smoothing) +
                           ", expected a value in [0, 1) such as 0.1");
  }
  if (!(std::isfinite(config.per_class_rate_scale) && config.per_class_rate_scale >= 0.0f)) {
    return InvalidArgument("Train: per_class_rate_scale is " +
                           FormatFloat(config.per_class_rate_scale) +
                           ", expected a finite value >= 0 such as 0.1");
  }
  if (config.batch_size < 1) {
    return InvalidArgument("Train: batch_size is " + std::to_string(config.batch_size) +
                           ", expected an integer >= 1");
  }
  return Status::Ok();
}

}  // namespace

const char* Adapter::GroupName(int group) {
  static const char* const kNames[kNumGroups] = {"query_scale", "query_shift", "keys",
                                                 "values",      "output",      "text"};
  return group >= 0 && group < kNumGroups ? kNames[group] : "unknown";
}

Adapter::Adapter(AdapterMemory memory) : memory_(std::move(memory)) {
  const size_t dim = memory_.dim, classes = memory_.num_classes;
  const size_t slots = memory_.slot_shot.size();
  size_t sizes[kNumGroups] = {dim, dim, slots * dim, slots * dim, classes * dim, classes * dim};
  group_offsets_[0] = 0;
  for (int g = 0; g < kNumGroups; ++g) group_offsets_[g + 1] = group_offsets_[g] + sizes[g];
  parameters_.assign(num_parameters(), 0.0f);

  slot_class_.resize(slots);
  for (int c = 0; c < memory_.num_classes; ++c) {
    for (int j = memory_.class_begin[c]; j < memory_.class_begin[c + 1]; ++j) {
      slot_class_[j] = c;
      if (memory_.slot_shot[j] >= 0) shot_slots_.push_back(j);
    }
  }
  Refresh();
}

std::unique_ptr<Adapter> Adapter::Untrained(AdapterMemory memory) {
  return std::unique_ptr<Adapter>(new Adapter(std::move(memory)));
}

size_t Adapter::MemoryBytes() const {
  return (memory_.text.size() + memory_.slots.size() + parameters_.size() + keys_.size() +
          values_.size() + text_.size()) * sizeof(float) +
         memory_.slot_shot.size() * (sizeof(int64_t) + sizeof(int));
}

void Adapter::Refresh() {
  const int dim = memory_.dim;
  const size_t slot_values = memory_.slots.size();
  const float* key_offsets = parameters_.data() + group_offsets_[kKeys];
  const float* value_offsets = parameters_.data() + group_offsets_[kValues];
  const float* text_offsets = parameters_.data() + group_offsets_[kText];
  keys_.resize(slot_values);
  values_.resize(slot_values);
  for (size_t i = 0; i < slot_values; ++i) {
    keys_[i] = memory_.slots[i] + key_offsets[i];
    values_[i] = memory_.slots[i] + value_offsets[i];
  }
  text_.resize(memory_.text.size());
  for (size_t i = 0; i < text_.size(); ++i) text_[i] = memory_.text[i] + text_offsets[i];
  for (int c = 0; c < memory_.num_classes; ++c) {
    float* row = text_.data() + static_cast<size_t>(c) * dim;
    // A zero row cannot come out of training with finite offsets unless an
    // offset cancels the embedding exactly; it then keeps zero logits.
    NormalizeL2(row, dim, row);
  }
}

void Adapter::AdaptQuery(const float* query, float* out) const {
  const int dim = memory_.dim;
  const float* scale = parameters_.data() + group_offsets_[kQueryScale];
  const float* shift = parameters_.data() + group_offsets_[kQueryShift];
  for (int i = 0; i < dim; ++i) out[i] = query[i] * (1.0f + scale[i]) + shift[i];
  if (!NormalizeL2(out, dim, out)) std::copy(query, query + dim, out);
}

void Adapter::StaticScores(const float* adapted_query, float* scores) {
  const int dim = memory_.dim;
  const float* output_offsets = parameters_.data() + group_offsets_[kOutput];
  std::vector<double>& prototype = prototype_;
  prototype.resize(dim);
  for (int c = 0; c < memory_.num_classes; ++c) {
    int begin = memory_.class_begin[c], count = memory_.class_begin[c + 1] - begin;
    similarities_.resize(count);
    weights_.resize(count);
    DotBlock(adapted_query, keys_.data() + static_cast<size_t>(begin) * dim, Precision::kFloat32,
             nullptr, count, dim, similarities_.data());
    ReadoutWeights(similarities_.data(), count, memory_.beta, weights_.data());

    // The prototype is summed in double, so that with zero offsets it matches
    // the Gram-matrix norm of the training-free readout to about 1e-7.
    std::fill(prototype.begin(), prototype.end(), 0.0);
    for (int j = 0; j < count; ++j) {
      const float* value = values_.data() + static_cast<size_t>(begin + j) * dim;
      double w = weights_[j];
      for (int i = 0; i < dim; ++i) prototype[i] += w * value[i];
    }
    double norm = 0.0;
    for (int i = 0; i < dim; ++i) norm += prototype[i] * prototype[i];
    norm = std::sqrt(norm);
    if (!(norm > 0.0)) {
      scores[c] = 0.0f;
      continue;
    }
    const float* offset = output_offsets + static_cast<size_t>(c) * dim;
    double dot = 0.0, length = 0.0;
    for (int i = 0; i < dim; ++i) {
      double u = prototype[i] / norm + offset[i];
      dot += adapted_query[i] * u;
      length += u * u;
    }
    scores[c] = length > 0.0 ? static_cast<float>(dot / std::sqrt(length)) : 0.0f;
  }
}

// Forward and backward pass over `count` training queries (static slots of
// shot views). Each query is read out by a memory without the views of its
// own shot, as a test image is not in the memory. Returns the mean loss and
// writes the gradient of the mean loss to `gradient`.
template <typename T>
double Adapter::Accumulate(const T* parameters, const int* query_slots, int count,
                           double label_smoothing, T* gradient) const {
  const int dim = memory_.dim, classes = memory_.num_classes;
  const size_t slot_values = memory_.slots.size();
  const T beta = static_cast<T>(memory_.beta), logit_scale = static_cast<T>(memory_.logit_scale);
  const T* scale = parameters + group_offsets_[kQueryScale];
  const T* shift = parameters + group_offsets_[kQueryShift];
  const T* output_offsets = parameters + group_offsets_[kOutput];
  const T* text_offsets = parameters + group_offsets_[kText];
  std::fill(gradient, gradient + num_parameters(), T(0));
  T* scale_grad = gradient + group_offsets_[kQueryScale];
  T* shift_grad = gradient + group_offsets_[kQueryShift];
  T* key_grad = gradient + group_offsets_[kKeys];
  T* value_grad = gradient + group_offsets_[kValues];
  T* output_grad = gradient + group_offsets_[kOutput];
  T* text_grad = gradient + group_offsets_[kText];

  // Adapted keys, values and unit text rows at these parameters.
  std::vector<T> keys(slot_values), values(slot_values), text(memory_.text.size());
  std::vector<T> text_norm(classes), unit_text_grad(memory_.text.size(), T(0));
  for (size_t i = 0; i < slot_values; ++i) {
    keys[i] = memory_.slots[i] + parameters[group_offsets_[kKeys] + i];
    values[i] = memory_.slots[i] + parameters[group_offsets_[kValues] + i];
  }
  for (size_t i = 0; i < text.size(); ++i) text[i] = memory_.text[i] + text_offsets[i];
  for (int c = 0; c < classes; ++c) {
    T* row = &text[static_cast<size_t>(c) * dim];
    text_norm[c] = NormOf(row, dim);
    for (int i = 0; i < dim; ++i) row[i] /= text_norm[c];
  }

  std::vector<T> query(dim), unit_query(dim), query_grad(dim), prototypes(memory_.text.size());
  std::vector<T> outputs(memory_.text.size()), step(dim), prototype_grad(dim);
  std::vector<T> weights(memory_.slot_shot.size()), prototype_norm(classes);
  std::vector<T> output_norm(classes), scores(classes), static_logits(classes);
  std::vector<T> text_logits(classes), static_grad(classes), text_logit_grad(classes);
  double total_loss = 0.0;

  for (int e = 0; e < count; ++e) {
    // Forward: adapted query, text logits, then the static readout per class.
    const int query_slot = query_slots[e];
    const int label = slot_class_[query_slot];
    const int64_t own_shot = memory_.slot_shot[query_slot];
    const float* raw = memory_.slots.data() + static_cast<size_t>(query_slot) * dim;
    for (int i = 0; i < dim; ++i) query[i] = raw[i] * (T(1) + scale[i]) + shift[i];
    const T query_norm = NormOf(query.data(), dim);
    for (int i = 0; i < dim; ++i) unit_query[i] = query[i] / query_norm;

    for (int c = 0; c < classes; ++c) {
      text_logits[c] = logit_scale * DotOf(unit_query.data(), &text[static_cast<size_t>(c) * dim], dim);
      T* prototype = &prototypes[static_cast<size_t>(c) * dim];
      std::fill(prototype, prototype + dim, T(0));
      for (int j = memory_.class_begin[c]; j < memory_.class_begin[c + 1]; ++j) {
        if (memory_.slot_shot[j] == own_shot) continue;
        T similarity = DotOf(unit_query.data(), &keys[static_cast<size_t>(j) * dim], dim);
        weights[j] = static_cast<T>(std::exp(static_cast<double>(beta * (similarity - T(1)))));
        Axpy(weights[j], &values[static_cast<size_t>(j) * dim], prototype, dim);
      }
      prototype_norm[c] = NormOf(prototype, dim);
      for (int i = 0; i < dim; ++i) prototype[i] /= prototype_norm[c];
      T* output = &outputs[static_cast<size_t>(c) * dim];
      const T* offset = output_offsets + static_cast<size_t>(c) * dim;
      for (int i = 0; i < dim; ++i) output[i] = prototype[i] + offset[i];
      output_norm[c] = NormOf(output, dim);
      scores[c] = DotOf(unit_query.data(), output, dim) / output_norm[c];
      static_logits[c] = logit_scale * scores[c];
    }
    total_loss += SmoothedCrossEntropy(static_logits.data(), classes, label, label_smoothing,
                                       1.0 / count, static_grad.data());
    total_loss += SmoothedCrossEntropy(text_logits.data(), classes, label, label_smoothing,
                                       1.0 / count, text_logit_grad.data());

    // Backward, class by class, into the query gradient and the offsets.
    std::fill(query_grad.begin(), query_grad.end(), T(0));
    for (int c = 0; c < classes; ++c) {
      const T* text_row = &text[static_cast<size_t>(c) * dim];
      const T text_step = logit_scale * text_logit_grad[c];
      Axpy(text_step, text_row, query_grad.data(), dim);
      Axpy(text_step, unit_query.data(), &unit_text_grad[static_cast<size_t>(c) * dim], dim);

      // score = q . u / |u|, so d/du = (q - score u / |u|) / |u|.
      const T score_step = logit_scale * static_grad[c];
      const T* output = &outputs[static_cast<size_t>(c) * dim];
      const T inverse_output_norm = T(1) / output_norm[c];
      Axpy(score_step * inverse_output_norm, output, query_grad.data(), dim);
      for (int i = 0; i < dim; ++i) {
        step[i] = score_step * inverse_output_norm *
                  (unit_query[i] - scores[c] * output[i] * inverse_output_norm);
      }
      Axpy(T(1), step.data(), output_grad + static_cast<size_t>(c) * dim, dim);

      // Through the prototype normalization, then the weighted sum.
      const T* prototype = &prototypes[static_cast<size_t>(c) * dim];
      const T along = DotOf(prototype, step.data(), dim);
      for (int i = 0; i < dim; ++i) {
        prototype_grad[i] = (step[i] - along * prototype[i]) / prototype_norm[c];
      }
      for (int j = memory_.class_begin[c]; j < memory_.class_begin[c + 1]; ++j) {
        if (memory_.slot_shot[j] == own_shot) continue;
        const size_t row = static_cast<size_t>(j) * dim;
        const T weight_grad = DotOf(&values[row], prototype_grad.data(), dim);
        Axpy(weights[j], prototype_grad.data(), value_grad + row, dim);
        const T similarity_grad = beta * weights[j] * weight_grad;
        Axpy(similarity_grad, unit_query.data(), key_grad + row, dim);
        Axpy(similarity_grad, &keys[row], query_grad.data(), dim);
      }
    }

    // Through the query normalization and the scale and shift.
    const T along = DotOf(unit_query.data(), query_grad.data(), dim);
    for (int i = 0; i < dim; ++i) {
      T grad = (query_grad[i] - along * unit_query[i]) / query_norm;
      scale_grad[i] += grad * raw[i];
      shift_grad[i] += grad;
    }
  }

  // Through the text normalization, once for all queries because it is linear.
  for (int c = 0; c < classes; ++c) {
    const size_t row = static_cast<size_t>(c) * dim;
    const T along = DotOf(&text[row], &unit_text_grad[row], dim);
    for (int i = 0; i < dim; ++i) {
      text_grad[row + i] = (unit_text_grad[row + i] - along * text[row + i]) / text_norm[c];
    }
  }
  return total_loss / count;
}

double Adapter::LossAndGradient(const std::vector<double>& parameters,
                                const std::vector<int>& query_slots, double label_smoothing,
                                std::vector<double>* gradient) const {
  gradient->assign(num_parameters(), 0.0);
  return Accumulate(parameters.data(), query_slots.data(), static_cast<int>(query_slots.size()),
                    label_smoothing, gradient->data());
}

Status Adapter::Train(AdapterMemory memory, const TrainConfig& config, TrainResult* result,
                      std::unique_ptr<Adapter>* out) {
  if (result == nullptr || out == nullptr) return InvalidArgument("Train: output is null");
  DUALMEM_RETURN_IF_ERROR(CheckTrainConfig(config));
  std::unique_ptr<Adapter> adapter(new Adapter(std::move(memory)));
  if (adapter->shot_slots_.empty()) {
    return InvalidArgument("Train: no class has shots, expected AddShot before training");
  }

  // Group the views of each shot, which the bank stores next to each other.
  std::vector<std::vector<int>> shots;
  const std::vector<int64_t>& slot_shot = adapter->memory_.slot_shot;
  for (int slot : adapter->shot_slots_) {
    if (shots.empty() || slot_shot[shots.back().front()] != slot_shot[slot]) shots.emplace_back();
    shots.back().push_back(slot);
  }

  const int num_shots = static_cast<int>(shots.size());
  const int steps_per_epoch = (num_shots + config.batch_size - 1) / config.batch_size;
  const double total_steps = static_cast<double>(steps_per_epoch) * config.epochs;
  const size_t size = adapter->num_parameters();
  std::vector<float> gradient(size), first_moment(size, 0.0f), second_moment(size, 0.0f);
  std::vector<int> order(num_shots), batch;
  for (int i = 0; i < num_shots; ++i) order[i] = i;
  SplitMix64 random(config.seed);
  TrainResult curve;
  float* parameters = adapter->parameters_.data();
  int step = 0;

  for (int epoch = 0; epoch < config.epochs; ++epoch) {
    for (int i = num_shots - 1; i > 0; --i) std::swap(order[i], order[random.NextBelow(i + 1)]);
    double epoch_loss = 0.0;
    for (int start = 0; start < num_shots; start += config.batch_size) {
      // Each shot takes part with one of its views, drawn anew every epoch.
      batch.clear();
      for (int k = start; k < std::min(num_shots, start + config.batch_size); ++k) {
        const std::vector<int>& views = shots[order[k]];
        batch.push_back(views[random.NextBelow(views.size())]);
      }
      const int count = static_cast<int>(batch.size());
      epoch_loss += count * adapter->Accumulate(parameters, batch.data(), count,
                                                config.label_smoothing, gradient.data());

      // AdamW step with bias correction and a cosine-annealed step size.
      ++step;
      const float rate = static_cast<float>(config.learning_rate * 0.5 *
                                            (1.0 + std::cos(kPi * (step - 1) / total_steps)));
      const float correction1 = 1.0f - static_cast<float>(std::pow(kAdamBeta1, step));
      const float correction2 = 1.0f - static_cast<float>(std::pow(kAdamBeta2, step));
      const size_t shared_end = adapter->group_offsets_[kKeys];
      for (size_t i = 0; i < size; ++i) {
        const float g = gradient[i];
        first_moment[i] = kAdamBeta1 * first_moment[i] + (1.0f - kAdamBeta1) * g;
        second_moment[i] = kAdamBeta2 * second_moment[i] + (1.0f - kAdamBeta2) * g * g;
        const float m = first_moment[i] / correction1;
        const float v = second_moment[i] / correction2;
        const float group_rate = i < shared_end ? rate : rate * config.per_class_rate_scale;
        parameters[i] = parameters[i] * (1.0f - group_rate * config.weight_decay) -
                        group_rate * m / (std::sqrt(v) + kAdamEpsilon);
      }
    }
    const double mean = epoch_loss / num_shots;
    if (!std::isfinite(mean)) {
      return InvalidArgument("Train: the loss of epoch " + std::to_string(epoch + 1) + " is " +
                             FormatFloat(mean) + ", expected a finite value; lower learning_rate" +
                             " (it is " + FormatFloat(config.learning_rate) + ")");
    }
    curve.loss_per_epoch.push_back(static_cast<float>(mean));
  }
  for (size_t i = 0; i < size; ++i) {
    if (!std::isfinite(parameters[i])) {
      return InvalidArgument("Train: an offset became " + FormatFloat(parameters[i]) +
                             ", expected finite values; lower learning_rate");
    }
  }

  adapter->Refresh();
  *result = std::move(curve);
  *out = std::move(adapter);
  return Status::Ok();
}

template double Adapter::Accumulate<float>(const float*, const int*, int, double, float*) const;
template double Adapter::Accumulate<double>(const double*, const int*, int, double,
                                            double*) const;

}  // namespace dualmem
