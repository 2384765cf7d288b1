// Embind glue for the dualmem core. It only marshals: JavaScript writes
// inputs into buffers owned by the C++ handle (typed-array views over the
// WASM heap, so no per-element copies cross the boundary), calls a method,
// and reads outputs through views as well. No exception crosses the
// boundary: every fallible method returns the numeric StatusCode (0 is ok)
// and keeps the message for `errorMessage()`. The JavaScript layer turns a
// non-zero code into a DualmemError.
//
// Views returned by the `*View` methods stay valid only until the next call
// that may allocate (the heap can grow and detach them), so JavaScript takes
// a view right before it reads or writes.

#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "augment.h"
#include "dmn.h"
#include "preprocess.h"
#include "snapshot.h"
#include "status.h"
#include "tokenizer.h"

namespace dualmem {
namespace {

using emscripten::typed_memory_view;
using emscripten::val;

// Shared status bookkeeping for every handle.
class StatusHolder {
 public:
  int Record(Status status) {
    last_ = std::move(status);
    return static_cast<int>(last_.code);
  }
  std::string errorMessage() const { return last_.message; }
  std::string errorName() const { return StatusCodeName(last_.code); }

 private:
  Status last_;
};

// JavaScript numbers are doubles, so seeds travel as integers below 2^53.
Status SeedFromNumber(double seed, uint64_t* out) {
  if (!(seed >= 0.0 && seed < 9007199254740992.0 && seed == std::floor(seed))) {
    return InvalidArgument("seed is " + std::to_string(seed) +
                           ", expected an integer in [0, 2^53)");
  }
  *out = static_cast<uint64_t>(seed);
  return Status::Ok();
}

class DmnHandle : public StatusHolder {
 public:
  int init(int dim, float logit_scale, float beta, int capacity, float selection_ratio,
           float weight_text, float weight_dynamic, float weight_static, int precision) {
    if (precision < 0 || precision > 2) {
      return Record(InvalidArgument("precision is " + std::to_string(precision) +
                                    ", expected 0 (float32), 1 (float16) or 2 (int8)"));
    }
    DmnConfig config;
    config.logit_scale = logit_scale;
    config.beta = beta;
    config.capacity = capacity;
    config.selection_ratio = selection_ratio;
    config.weight_text = weight_text;
    config.weight_dynamic = weight_dynamic;
    config.weight_static = weight_static;
    config.precision = static_cast<Precision>(precision);
    std::unique_ptr<DualMemoryNetwork> network;
    Status status = DualMemoryNetwork::Create(dim, config, &network);
    if (status.ok()) network_ = std::move(network);
    return Record(std::move(status));
  }

  // Resizes the input buffer to `count` floats and returns a view of it.
  val inputView(int count) {
    input_.resize(count < 0 ? 0 : static_cast<size_t>(count));
    return val(typed_memory_view(input_.size(), input_.data()));
  }

  int setWeights(float text, float dynamic, float static_weight) {
    if (!network_) return NotReady();
    return Record(network_->SetWeights(text, dynamic, static_weight));
  }
  int addClass() {
    if (!network_) return NotReady();
    return Record(network_->AddClass(input_.data(), input_.size()));
  }
  int removeClass(int class_index) {
    if (!network_) return NotReady();
    return Record(network_->RemoveClass(class_index));
  }
  int setClassEmbedding(int class_index) {
    if (!network_) return NotReady();
    return Record(network_->SetClassEmbedding(class_index, input_.data(), input_.size()));
  }
  int addShot(int class_index, int num_views) {
    if (!network_) return NotReady();
    return Record(network_->AddShot(class_index, input_.data(), input_.size(), num_views));
  }
  int addCorrection(int class_index, int num_views) {
    if (!network_) return NotReady();
    return Record(network_->AddCorrection(class_index, input_.data(), input_.size(), num_views));
  }
  int clearShots(int class_index) {
    if (!network_) return NotReady();
    return Record(network_->ClearShots(class_index));
  }
  int step(int num_views, double timestamp_ms, bool update_memory) {
    if (!network_) return NotReady();
    return Record(network_->Step(input_.data(), input_.size(), num_views, timestamp_ms,
                                 update_memory, &output_));
  }
  int restoreDynamic(int class_index, double entropy, double timestamp_ms) {
    if (!network_) return NotReady();
    return Record(network_->RestoreDynamic(class_index, input_.data(), input_.size(), entropy,
                                           timestamp_ms));
  }
  void resetDynamic() {
    if (network_) network_->ResetDynamic();
  }
  // Retention; droppedCount reads the number of slots the last call removed.
  int dropDynamicOlderThan(double cutoff_ms) {
    if (!network_) return NotReady();
    return Record(network_->DropDynamicOlderThan(cutoff_ms, &dropped_));
  }
  int dropHighestEntropyDynamic(int count) {
    if (!network_) return NotReady();
    return Record(network_->DropHighestEntropyDynamic(count, &dropped_));
  }
  int droppedCount() const { return dropped_; }

  // Snapshots (snapshot.h). Class names go in one by one before
  // saveSnapshot; the bytes pass through one buffer: saveSnapshot fills it,
  // loadSnapshot reads what JavaScript wrote into snapshotBufferView. An
  // empty fingerprint skips the fingerprint check on load.
  void clearSnapshotNames() { names_.clear(); }
  void addSnapshotName(const std::string& name) { names_.push_back(name); }
  int saveSnapshot(const std::string& fingerprint_hex) {
    if (!network_) return NotReady();
    ModelFingerprint fingerprint;
    Status status = ParseFingerprintHex(fingerprint_hex, &fingerprint);
    if (!status.ok()) return Record(std::move(status));
    return Record(SaveSnapshot(*network_, fingerprint, names_, &snapshot_));
  }
  val snapshotView() const { return val(typed_memory_view(snapshot_.size(), snapshot_.data())); }
  val snapshotBufferView(double byte_count) {
    snapshot_.resize(byte_count < 0 ? 0 : static_cast<size_t>(byte_count));
    return snapshotView();
  }
  // Replaces the network only when the whole snapshot loads.
  int loadSnapshot(const std::string& expected_fingerprint_hex) {
    ModelFingerprint expected;
    bool check = !expected_fingerprint_hex.empty();
    if (check) {
      Status status = ParseFingerprintHex(expected_fingerprint_hex, &expected);
      if (!status.ok()) return Record(std::move(status));
    }
    LoadedSnapshot loaded;
    Status status = LoadSnapshot(snapshot_.data(), snapshot_.size(), check ? &expected : nullptr,
                                 &loaded);
    error_offset_ = loaded.error_offset == SIZE_MAX ? -1.0 : static_cast<double>(loaded.error_offset);
    error_field_ = loaded.error_field;
    if (status.ok()) {
      network_ = std::move(loaded.network);
      names_ = std::move(loaded.class_names);
      fingerprint_hex_ = FingerprintHex(loaded.fingerprint);
    }
    return Record(std::move(status));
  }
  std::string snapshotName(int class_index) const {
    if (class_index < 0 || static_cast<size_t>(class_index) >= names_.size()) return "";
    return names_[class_index];
  }
  int snapshotNameCount() const { return static_cast<int>(names_.size()); }
  std::string snapshotFingerprint() const { return fingerprint_hex_; }
  double snapshotErrorOffset() const { return error_offset_; }
  std::string snapshotErrorField() const { return error_field_; }

  // Few-shot training (adapter.h). The loss curve stays readable through
  // lossCurveView until the next successful train call.
  int train(int epochs, float learning_rate, float weight_decay, float label_smoothing,
            double seed, int batch_size, float per_class_rate_scale) {
    if (!network_) return NotReady();
    TrainConfig config;
    config.epochs = epochs;
    config.learning_rate = learning_rate;
    config.weight_decay = weight_decay;
    config.label_smoothing = label_smoothing;
    config.batch_size = batch_size;
    config.per_class_rate_scale = per_class_rate_scale;
    Status status = SeedFromNumber(seed, &config.seed);
    if (!status.ok()) return Record(std::move(status));
    TrainResult result;
    status = network_->Train(config, &result);
    if (status.ok()) loss_curve_ = std::move(result.loss_per_epoch);
    return Record(std::move(status));
  }
  val lossCurveView() const { return View(loss_curve_); }
  void resetAdapter() {
    if (network_) network_->ResetAdapter();
  }
  bool trained() const { return network_ && network_->trained(); }

  // Benchmark baseline, not part of classifying: dots the query in the
  // input buffer (dim floats, used as given, not rescaled) with every stored
  // slot through MemoryBank::AllSimilarities and keeps the results.
  int streamingPass() {
    if (!network_) return NotReady();
    const MemoryBank& bank = network_->bank();
    if (input_.size() != static_cast<size_t>(bank.dim())) {
      return Record(InvalidArgument("streamingPass: query has " + std::to_string(input_.size()) +
                                    " values, expected dim = " + std::to_string(bank.dim())));
    }
    bank.PrepareQuery(input_.data(), &pass_query_);
    pass_similarities_.resize(bank.total_slot_count());
    bank.AllSimilarities(pass_query_, pass_similarities_.data());
    return Record(Status::Ok());
  }

  int dim() const { return network_ ? network_->dim() : 0; }
  int precision() const {
    return network_ ? static_cast<int>(network_->config().precision) : -1;
  }
  int numClasses() const { return network_ ? network_->num_classes() : 0; }
  int dynamicCount(int class_index) const {
    return network_ ? network_->DynamicCount(class_index) : 0;
  }
  int shotCount(int class_index) const {
    return network_ ? network_->ShotCount(class_index) : 0;
  }
  double memoryBytes() const {
    return network_ ? static_cast<double>(network_->MemoryBytes()) : 0.0;
  }

  val textView() const { return View(output_.text); }
  val confidentView() const { return View(output_.confident); }
  val staticView() const { return View(output_.static_probs); }
  val dynamicView() const { return View(output_.dynamic); }
  val fusedView() const { return View(output_.fused); }
  bool hasStatic() const { return output_.has_static; }
  int label() const { return output_.label; }
  int pseudoLabel() const { return output_.pseudo_label; }
  float entropy() const { return output_.entropy; }
  bool inserted() const { return output_.inserted; }
  int replacedSlot() const { return output_.replaced_slot; }

 private:
  static val View(const std::vector<float>& values) {
    return val(typed_memory_view(values.size(), values.data()));
  }
  int NotReady() {
    return Record(MakeStatus(StatusCode::kInternal,
                             "DMN handle used before a successful init()"));
  }

  std::unique_ptr<DualMemoryNetwork> network_;
  std::vector<float> input_;
  StepOutput output_;
  std::vector<float> loss_curve_;
  std::vector<uint8_t> snapshot_;
  std::vector<std::string> names_;  // for saveSnapshot, or from the last load
  std::string fingerprint_hex_;     // of the last loaded snapshot
  double error_offset_ = -1.0;      // of the last failed load, -1 if none
  std::string error_field_;
  int dropped_ = 0;                 // slots removed by the last retention call
  BankQuery pass_query_;            // streamingPass scratch
  std::vector<float> pass_similarities_;
};

class TokenizerHandle : public StatusHolder {
 public:
  int load(const std::string& tokenizer_json) {
    std::unique_ptr<Tokenizer> tokenizer;
    Status status = Tokenizer::FromJson(tokenizer_json, &tokenizer);
    if (status.ok()) tokenizer_ = std::move(tokenizer);
    return Record(std::move(status));
  }
  int encode(const std::string& text) {
    if (!tokenizer_) return NotReady();
    attention_mask_.clear();
    return Record(tokenizer_->Encode(text, &ids_));
  }
  int encodeForModel(const std::string& text, int context_length) {
    if (!tokenizer_) return NotReady();
    return Record(tokenizer_->EncodeForModel(text, context_length, &ids_, &attention_mask_));
  }
  val idsView() const { return val(typed_memory_view(ids_.size(), ids_.data())); }
  val attentionMaskView() const {
    return val(typed_memory_view(attention_mask_.size(), attention_mask_.data()));
  }

 private:
  int NotReady() {
    return Record(MakeStatus(StatusCode::kInternal,
                             "tokenizer handle used before a successful load()"));
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<int32_t> ids_;
  std::vector<int32_t> attention_mask_;
};

class PreprocessorHandle : public StatusHolder {
 public:
  int configure(const std::string& preprocessor_json) {
    PreprocessConfig config;
    Status status = ParsePreprocessConfig(preprocessor_json, &config);
    if (status.ok()) config_ = config;
    return Record(std::move(status));
  }
  val pixelView(double byte_count) {
    pixels_.resize(byte_count < 0 ? 0 : static_cast<size_t>(byte_count));
    return val(typed_memory_view(pixels_.size(), pixels_.data()));
  }
  int run(int width, int height, int channels) {
    output_.resize(PreprocessOutputSize(config_));
    return Record(PreprocessImage(pixels_.data(), pixels_.size(), width, height,
                                  static_cast<PixelFormat>(channels), config_,
                                  output_.data(), output_.size()));
  }
  // Sets the crop and flip ranges of runViews (augment.h).
  int configureViews(float min_scale, float max_scale, float min_ratio, float max_ratio,
                     float flip_probability) {
    AugmentConfig augment;
    augment.min_scale = min_scale;
    augment.max_scale = max_scale;
    augment.min_ratio = min_ratio;
    augment.max_ratio = max_ratio;
    augment.flip_probability = flip_probability;
    Status status = ValidateAugmentConfig(augment);
    if (status.ok()) augment_ = augment;
    return Record(std::move(status));
  }
  // Writes num_views views (view 0 plain, the rest seeded crops and flips)
  // back to back into the output buffer.
  int runViews(int width, int height, int channels, int num_views, double seed) {
    uint64_t seed_bits = 0;
    Status status = SeedFromNumber(seed, &seed_bits);
    if (!status.ok()) return Record(std::move(status));
    size_t views = num_views >= 1 && num_views <= kMaxViews ? static_cast<size_t>(num_views) : 0;
    output_.resize(PreprocessOutputSize(config_) * views);
    return Record(MakeViews(&preprocessor_, pixels_.data(), pixels_.size(), width, height,
                            static_cast<PixelFormat>(channels), config_, augment_, seed_bits,
                            num_views, output_.data(), output_.size()));
  }
  val outputView() const { return val(typed_memory_view(output_.size(), output_.data())); }
  int cropWidth() const { return config_.crop_width; }
  int cropHeight() const { return config_.crop_height; }

 private:
  PreprocessConfig config_;
  AugmentConfig augment_;
  Preprocessor preprocessor_;  // runViews only; run uses PreprocessImage
  std::vector<uint8_t> pixels_;
  std::vector<float> output_;
};

// Embind cannot bind a member function inherited from an unregistered base
// class, so each handle's status accessors go through these templates.
template <typename Handle>
std::string ErrorMessageOf(const Handle& handle) {
  return handle.errorMessage();
}
template <typename Handle>
std::string ErrorNameOf(const Handle& handle) {
  return handle.errorName();
}

bool BuiltWithSimd() {
#ifdef __wasm_simd128__
  return true;
#else
  return false;
#endif
}

}  // namespace
}  // namespace dualmem

EMSCRIPTEN_BINDINGS(dualmem) {
  using namespace dualmem;
  using emscripten::class_;

  emscripten::function("builtWithSimd", &BuiltWithSimd);

  class_<DmnHandle>("DmnHandle")
      .constructor<>()
      .function("init", &DmnHandle::init)
      .function("inputView", &DmnHandle::inputView)
      .function("setWeights", &DmnHandle::setWeights)
      .function("addClass", &DmnHandle::addClass)
      .function("removeClass", &DmnHandle::removeClass)
      .function("setClassEmbedding", &DmnHandle::setClassEmbedding)
      .function("addShot", &DmnHandle::addShot)
      .function("addCorrection", &DmnHandle::addCorrection)
      .function("clearShots", &DmnHandle::clearShots)
      .function("step", &DmnHandle::step)
      .function("restoreDynamic", &DmnHandle::restoreDynamic)
      .function("resetDynamic", &DmnHandle::resetDynamic)
      .function("dropDynamicOlderThan", &DmnHandle::dropDynamicOlderThan)
      .function("dropHighestEntropyDynamic", &DmnHandle::dropHighestEntropyDynamic)
      .function("droppedCount", &DmnHandle::droppedCount)
      .function("clearSnapshotNames", &DmnHandle::clearSnapshotNames)
      .function("addSnapshotName", &DmnHandle::addSnapshotName)
      .function("saveSnapshot", &DmnHandle::saveSnapshot)
      .function("snapshotView", &DmnHandle::snapshotView)
      .function("snapshotBufferView", &DmnHandle::snapshotBufferView)
      .function("loadSnapshot", &DmnHandle::loadSnapshot)
      .function("snapshotName", &DmnHandle::snapshotName)
      .function("snapshotNameCount", &DmnHandle::snapshotNameCount)
      .function("snapshotFingerprint", &DmnHandle::snapshotFingerprint)
      .function("snapshotErrorOffset", &DmnHandle::snapshotErrorOffset)
      .function("snapshotErrorField", &DmnHandle::snapshotErrorField)
      .function("streamingPass", &DmnHandle::streamingPass)
      .function("dim", &DmnHandle::dim)
      .function("precision", &DmnHandle::precision)
      .function("numClasses", &DmnHandle::numClasses)
      .function("dynamicCount", &DmnHandle::dynamicCount)
      .function("shotCount", &DmnHandle::shotCount)
      .function("memoryBytes", &DmnHandle::memoryBytes)
      .function("textView", &DmnHandle::textView)
      .function("confidentView", &DmnHandle::confidentView)
      .function("staticView", &DmnHandle::staticView)
      .function("dynamicView", &DmnHandle::dynamicView)
      .function("fusedView", &DmnHandle::fusedView)
      .function("hasStatic", &DmnHandle::hasStatic)
      .function("label", &DmnHandle::label)
      .function("pseudoLabel", &DmnHandle::pseudoLabel)
      .function("entropy", &DmnHandle::entropy)
      .function("inserted", &DmnHandle::inserted)
      .function("replacedSlot", &DmnHandle::replacedSlot)
      .function("train", &DmnHandle::train)
      .function("lossCurveView", &DmnHandle::lossCurveView)
      .function("resetAdapter", &DmnHandle::resetAdapter)
      .function("trained", &DmnHandle::trained)
      .function("errorMessage", &ErrorMessageOf<DmnHandle>)
      .function("errorName", &ErrorNameOf<DmnHandle>);

  class_<TokenizerHandle>("TokenizerHandle")
      .constructor<>()
      .function("load", &TokenizerHandle::load)
      .function("encode", &TokenizerHandle::encode)
      .function("encodeForModel", &TokenizerHandle::encodeForModel)
      .function("idsView", &TokenizerHandle::idsView)
      .function("attentionMaskView", &TokenizerHandle::attentionMaskView)
      .function("errorMessage", &ErrorMessageOf<TokenizerHandle>)
      .function("errorName", &ErrorNameOf<TokenizerHandle>);

  class_<PreprocessorHandle>("PreprocessorHandle")
      .constructor<>()
      .function("configure", &PreprocessorHandle::configure)
      .function("pixelView", &PreprocessorHandle::pixelView)
      .function("run", &PreprocessorHandle::run)
      .function("outputView", &PreprocessorHandle::outputView)
      .function("cropWidth", &PreprocessorHandle::cropWidth)
      .function("cropHeight", &PreprocessorHandle::cropHeight)
      .function("configureViews", &PreprocessorHandle::configureViews)
      .function("runViews", &PreprocessorHandle::runViews)
      .function("errorMessage", &ErrorMessageOf<PreprocessorHandle>)
      .function("errorName", &ErrorNameOf<PreprocessorHandle>);
}
