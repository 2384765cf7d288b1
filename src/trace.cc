#include "trace.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "json.h"
#include "kernels.h"

namespace dualmem {
namespace {

constexpr char kTraceFormat[] = "dmn-trace/1";
constexpr char kExpectedFormat[] = "dmn-expected/1";

Status FieldError(const std::string& path, const std::string& problem) {
  return InvalidArgument("trace: " + path + " " + problem);
}

// Finds `key` in `object` and checks its type.
Status GetMember(const JsonValue& object, const std::string& path, const char* key,
                 JsonValue::Type type, const JsonValue** out) {
  std::string field = path.empty() ? key : path + "." + key;
  const JsonValue* value = object.Find(key);
  if (value == nullptr) {
    return FieldError(field, std::string("is missing, expected ") + JsonValue::TypeName(type));
  }
  if (value->type() != type) {
    return FieldError(field, std::string("has type ") + JsonValue::TypeName(value->type()) +
                                 ", expected " + JsonValue::TypeName(type));
  }
  *out = value;
  return Status::Ok();
}

Status GetNumber(const JsonValue& object, const std::string& path, const char* key,
                 double* out) {
  const JsonValue* value = nullptr;
  DUALMEM_RETURN_IF_ERROR(GetMember(object, path, key, JsonValue::Type::kNumber, &value));
  *out = value->as_number();
  return Status::Ok();
}

Status ToInt(const JsonValue& value, const std::string& field, int* out) {
  if (!value.is_number()) {
    return FieldError(field, std::string("is ") + JsonValue::TypeName(value.type()) +
                                 ", expected an integer");
  }
  double number = value.as_number();
  if (number != std::floor(number) || std::fabs(number) > std::numeric_limits<int>::max()) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.9g", number);
    return FieldError(field, std::string("is ") + text + ", expected an integer");
  }
  *out = static_cast<int>(number);
  return Status::Ok();
}

// Reads an array of numbers as floats. `expected_length` < 0 accepts any
// non-zero length. Values must be finite as floats and not all zero.
Status ReadVector(const JsonValue& value, const std::string& field, int expected_length,
                  std::vector<float>* out) {
  if (!value.is_array()) {
    return FieldError(field, std::string("is ") + JsonValue::TypeName(value.type()) +
                                 ", expected an array of numbers");
  }
  const std::vector<JsonValue>& items = value.items();
  if (expected_length >= 0 && static_cast<int>(items.size()) != expected_length) {
    return FieldError(field, "has " + std::to_string(items.size()) + " values, expected " +
                                 std::to_string(expected_length));
  }
  if (items.empty()) return FieldError(field, "is empty, expected at least one value");
  out->resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    float number = static_cast<float>(items[i].as_number());
    if (!items[i].is_number() || !std::isfinite(number)) {
      return FieldError(field + "[" + std::to_string(i) + "]",
                        "is not a finite float32 number");
    }
    (*out)[i] = number;
  }
  if (SumOfSquares(out->data(), out->size()) == 0.0) {
    return FieldError(field, "has zero length, expected a non-zero embedding");
  }
  return Status::Ok();
}

Status ReadConfig(const JsonValue& root, DmnConfig* config) {
  const JsonValue* object = nullptr;
  DUALMEM_RETURN_IF_ERROR(GetMember(root, "", "config", JsonValue::Type::kObject, &object));
  double logit_scale = 0, beta = 0, ratio = 0, text = 0, dynamic = 0, static_weight = 0;
  DUALMEM_RETURN_IF_ERROR(GetNumber(*object, "config", "logit_scale", &logit_scale));
  DUALMEM_RETURN_IF_ERROR(GetNumber(*object, "config", "beta", &beta));
  DUALMEM_RETURN_IF_ERROR(GetNumber(*object, "config", "selection_ratio", &ratio));
  const JsonValue* capacity = nullptr;
  DUALMEM_RETURN_IF_ERROR(GetMember(*object, "config", "capacity", JsonValue::Type::kNumber, &capacity));
  DUALMEM_RETURN_IF_ERROR(ToInt(*capacity, "config.capacity", &config->capacity));
  const JsonValue* weights = nullptr;
  DUALMEM_RETURN_IF_ERROR(GetMember(*object, "config", "weights", JsonValue::Type::kObject, &weights));
  DUALMEM_RETURN_IF_ERROR(GetNumber(*weights, "config.weights", "text", &text));
  DUALMEM_RETURN_IF_ERROR(GetNumber(*weights, "config.weights", "dynamic", &dynamic));
  DUALMEM_RETURN_IF_ERROR(GetNumber(*weights, "config.weights", "static", &static_weight));
  config->logit_scale = static_cast<float>(logit_scale);
  config->beta = static_cast<float>(beta);
  config->selection_ratio = static_cast<float>(ratio);
  config->weight_text = static_cast<float>(text);
  config->weight_dynamic = static_cast<float>(dynamic);
  config->weight_static = static_cast<float>(static_weight);
  return Status::Ok();
}

// Reads `{label?, views}` where views is an array of `dim`-long rows.
Status ReadImage(const JsonValue& value, const std::string& path, int dim, int num_classes,
                 bool labelled, TraceImage* image) {
  if (!value.is_object()) {
    return FieldError(path, std::string("is ") + JsonValue::TypeName(value.type()) +
                                ", expected an object");
  }
  if (labelled) {
    const JsonValue* label = nullptr;
    DUALMEM_RETURN_IF_ERROR(GetMember(value, path, "label", JsonValue::Type::kNumber, &label));
    DUALMEM_RETURN_IF_ERROR(ToInt(*label, path + ".label", &image->label));
    if (image->label < 0 || image->label >= num_classes) {
      return FieldError(path + ".label", "is " + std::to_string(image->label) +
                                             ", expected 0 <= label < " + std::to_string(num_classes));
    }
  }
  const JsonValue* views = nullptr;
  DUALMEM_RETURN_IF_ERROR(GetMember(value, path, "views", JsonValue::Type::kArray, &views));
  if (views->items().empty()) return FieldError(path + ".views", "is empty, expected at least one view");
  image->num_views = static_cast<int>(views->items().size());
  image->views.clear();
  image->views.reserve(static_cast<size_t>(image->num_views) * dim);
  std::vector<float> row;
  for (int v = 0; v < image->num_views; ++v) {
    std::string field = path + ".views[" + std::to_string(v) + "]";
    DUALMEM_RETURN_IF_ERROR(ReadVector(views->items()[v], field, dim, &row));
    image->views.insert(image->views.end(), row.begin(), row.end());
  }
  return Status::Ok();
}

Status ReadImages(const JsonValue& root, const char* key, int dim, int num_classes,
                  bool labelled, std::vector<TraceImage>* images) {
  const JsonValue* array = nullptr;
  DUALMEM_RETURN_IF_ERROR(GetMember(root, "", key, JsonValue::Type::kArray, &array));
  images->resize(array->items().size());
  for (size_t i = 0; i < images->size(); ++i) {
    std::string path = std::string(key) + "[" + std::to_string(i) + "]";
    DUALMEM_RETURN_IF_ERROR(
        ReadImage(array->items()[i], path, dim, num_classes, labelled, &(*images)[i]));
  }
  return Status::Ok();
}

Status ReadLabels(const JsonValue& root, size_t stream_length, int num_classes,
                  std::vector<int>* labels) {
  const JsonValue* array = nullptr;
  DUALMEM_RETURN_IF_ERROR(GetMember(root, "", "labels", JsonValue::Type::kArray, &array));
  if (array->items().size() != stream_length) {
    return FieldError("labels", "has " + std::to_string(array->items().size()) +
                                    " values, expected one per stream item = " +
                                    std::to_string(stream_length));
  }
  labels->resize(stream_length);
  for (size_t i = 0; i < stream_length; ++i) {
    std::string field = "labels[" + std::to_string(i) + "]";
    DUALMEM_RETURN_IF_ERROR(ToInt(array->items()[i], field, &(*labels)[i]));
    if ((*labels)[i] < 0 || (*labels)[i] >= num_classes) {
      return FieldError(field, "is " + std::to_string((*labels)[i]) +
                                   ", expected 0 <= label < " + std::to_string(num_classes));
    }
  }
  return Status::Ok();
}

void AppendFloats(const std::vector<float>& values, std::string* text) {
  char number[32];
  text->push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text->append(", ");
    std::snprintf(number, sizeof(number), "%.9g", values[i]);
    text->append(number);
  }
  text->push_back(']');
}

}  // namespace

Status ParseDmnTrace(std::string_view json_text, DmnTrace* out) {
  JsonValue root;
  DUALMEM_RETURN_IF_ERROR(ParseJson(json_text, &root));
  if (!root.is_object()) {
    return FieldError("document", std::string("is ") + JsonValue::TypeName(root.type()) +
                                      ", expected an object");
  }
  const JsonValue* format = nullptr;
  DUALMEM_RETURN_IF_ERROR(GetMember(root, "", "format", JsonValue::Type::kString, &format));
  if (format->as_string() != kTraceFormat) {
    return FieldError("format", "is \"" + format->as_string() + "\", expected \"" +
                                    kTraceFormat + "\"");
  }

  // Parse into a local trace so that `out` is untouched on failure.
  DmnTrace trace;
  DUALMEM_RETURN_IF_ERROR(ReadConfig(root, &trace.config));

  // The first text embedding fixes the dimension for every other vector.
  const JsonValue* texts = nullptr;
  DUALMEM_RETURN_IF_ERROR(GetMember(root, "", "text_embeddings", JsonValue::Type::kArray, &texts));
  if (texts->items().empty()) return FieldError("text_embeddings", "is empty, expected one row per class");
  trace.text_embeddings.resize(texts->items().size());
  for (size_t c = 0; c < trace.text_embeddings.size(); ++c) {
    std::string field = "text_embeddings[" + std::to_string(c) + "]";
    DUALMEM_RETURN_IF_ERROR(
        ReadVector(texts->items()[c], field, c == 0 ? -1 : trace.dim, &trace.text_embeddings[c]));
    if (c == 0) trace.dim = static_cast<int>(trace.text_embeddings[0].size());
  }
  int num_classes = static_cast<int>(trace.text_embeddings.size());

  std::unique_ptr<DualMemoryNetwork> probe;
  Status config_status = DualMemoryNetwork::Create(trace.dim, trace.config, &probe);
  if (!config_status.ok()) return InvalidArgument("trace: config: " + config_status.message);

  DUALMEM_RETURN_IF_ERROR(ReadImages(root, "shots", trace.dim, num_classes, true, &trace.shots));
  DUALMEM_RETURN_IF_ERROR(ReadImages(root, "stream", trace.dim, num_classes, false, &trace.stream));
  DUALMEM_RETURN_IF_ERROR(ReadLabels(root, trace.stream.size(), num_classes, &trace.labels));
  *out = std::move(trace);
  return Status::Ok();
}

Status RunDmnTrace(const DmnTrace& trace, std::vector<TraceResult>* results) {
  if (results == nullptr) return InvalidArgument("RunDmnTrace: results is null");
  std::unique_ptr<DualMemoryNetwork> network;
  DUALMEM_RETURN_IF_ERROR(DualMemoryNetwork::Create(trace.dim, trace.config, &network));
  for (const std::vector<float>& text : trace.text_embeddings) {
    DUALMEM_RETURN_IF_ERROR(network->AddClass(text.data(), text.size()));
  }
  for (const TraceImage& shot : trace.shots) {
    DUALMEM_RETURN_IF_ERROR(
        network->AddShot(shot.label, shot.views.data(), shot.views.size(), shot.num_views));
  }

  std::vector<TraceResult> local(trace.stream.size());
  for (size_t i = 0; i < trace.stream.size(); ++i) {
    const TraceImage& item = trace.stream[i];
    TraceResult& result = local[i];
    Status status = network->Step(item.views.data(), item.views.size(), item.num_views,
                                  static_cast<double>(i), true, &result.output);
    if (!status.ok()) {
      return MakeStatus(status.code, "trace: stream[" + std::to_string(i) + "]: " + status.message);
    }
    result.memory_counts.resize(network->num_classes());
    for (int c = 0; c < network->num_classes(); ++c) {
      result.memory_counts[c] = network->DynamicCount(c);
    }
  }
  results->swap(local);
  return Status::Ok();
}

std::string FormatDmnExpected(const std::vector<TraceResult>& results) {
  std::string text = std::string("{\"format\": \"") + kExpectedFormat + "\", \"results\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const StepOutput& output = results[i].output;
    text.append(i == 0 ? "\n" : ",\n");
    text.append("{\"text\": ");
    AppendFloats(output.text, &text);
    text.append(", \"confident\": ");
    AppendFloats(output.confident, &text);
    text.append(", \"static\": ");
    if (output.has_static) {
      AppendFloats(output.static_probs, &text);
    } else {
      text.append("null");
    }
    text.append(", \"dynamic\": ");
    AppendFloats(output.dynamic, &text);
    text.append(", \"fused\": ");
    AppendFloats(output.fused, &text);
    text.append(", \"label\": " + std::to_string(output.label));
    text.append(", \"memory_counts\": [");
    for (size_t c = 0; c < results[i].memory_counts.size(); ++c) {
      if (c > 0) text.append(", ");
      text.append(std::to_string(results[i].memory_counts[c]));
    }
    text.append("]}");
  }
  text.append("\n]}\n");
  return text;
}

}  // namespace dualmem
