#pragma once
/// \file onnx.hpp
/// ONNX export of our classifiers, from C++: the eval-form model (BatchNorm folded into the
/// convolutions, ReLU6 as Clip(0, 6)) with a dynamic batch dimension, and in its metadata
/// everything a deployer needs: class names, per-class thresholds, the eval transform.
/// Component `onnx`: link mobilenet::onnx, whose small writer library holds ONNX's protobuf
/// classes with a private protobuf, so it works beside any LibTorch (Debian's, or a PyPI
/// wheel that bundles its own protobuf). See docs/deploy.md for loading the file with
/// onnxruntime.
/// \code
///   mobilenet::export_onnx_from_checkpoint("runs/coco/best.pt", "model.onnx");
///   mobilenet::export_onnx(model, "model.onnx",
///                          mobilenet::ExportOptions().spec(spec).probabilities(true));
/// \endcode

#include <mobilenet/io/atomic_file.hpp>
#include <mobilenet/export/detail/onnx_graph.hpp>
#include <mobilenet/models/factory.hpp>
#include <mobilenet/models/fuse.hpp>
#include <mobilenet/train/checkpoint.hpp>
#include <mobilenet/version.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace mobilenet {

/// Options for export_onnx. Example: `ExportOptions().spec(spec).thresholds(t).dynamic_size(true)`.
struct ExportOptions {
  /// ONNX opset of the default domain, from 11 (Clip with bounds as inputs) to 21. Default 17
  /// (onnxruntime 1.13 and later, Debian's onnx 1.12 checker).
  TORCH_ARG(int64_t, opset) = 17;
  /// What the model is: its class names, input size and eval transform go into the metadata,
  /// and its arch and class count must match the model. Default none: the class names are the
  /// indices, the transform is the default ModelSpec's (squish, ImageNet normalization).
  TORCH_ARG(std::optional<ModelSpec>, spec) = std::nullopt;
  /// Per-class decision thresholds, one per class, each in [0, 1]. Default empty: 0.5 each.
  TORCH_ARG(std::vector<float>, thresholds) = {};
  /// Input height and width. 0 (default): the spec's image_size, 224 without a spec.
  TORCH_ARG(int64_t, height) = 0;
  TORCH_ARG(int64_t, width) = 0;
  /// Declare the height and width as named dimensions ("height", "width") instead of fixed
  /// numbers, so the file accepts any size (the model pools globally). Default false.
  TORCH_ARG(bool, dynamic_size) = false;
  /// Also output "probabilities" = sigmoid("logits"). Default false.
  TORCH_ARG(bool, probabilities) = false;
  /// Store the weights as float16 (half the file); Cast nodes restore float32 at load, so
  /// inputs, outputs and arithmetic stay float32. Default false.
  TORCH_ARG(bool, float16_weights) = false;
  /// Input normalization written to the metadata when the spec normalizes (torchvision's
  /// ImageNet statistics, as data/transforms.hpp's kImageNetMean / kImageNetStd).
  using Rgb = std::array<float, 3>;
  TORCH_ARG(Rgb, mean) = {{0.485f, 0.456f, 0.406f}};
  TORCH_ARG(Rgb, std) = {{0.229f, 0.224f, 0.225f}};
};

namespace detail {

inline std::string onnx_arch_of(const Classifier& model) {
  if (std::dynamic_pointer_cast<MobileNetV2Impl>(model.ptr())) return "mobilenet_v2";
  if (std::dynamic_pointer_cast<MobileNetV1Impl>(model.ptr())) return "mobilenet_v1";
  return model.ptr()->name();
}

/// features and classifier as Classifier registers them (Classifier's accessors are not const).
inline torch::nn::Sequential onnx_child(const Classifier& model, const std::string& name) {
  for (const auto& child : model.ptr()->named_children()) {
    if (child.key() == name) {
      auto seq = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(child.value());
      TORCH_CHECK(seq, "export_onnx: the model's '", name, "' is a ", child.value()->name(),
                  ", not a Sequential");
      return torch::nn::Sequential(seq);
    }
  }
  TORCH_CHECK(false, "export_onnx: the model has no '", name, "' module");
}

/// The file's metadata_props: name -> text (lists as JSON).
inline std::vector<std::pair<std::string, std::string>> onnx_metadata(
    const ExportOptions& o, const std::string& arch, int64_t classes, int64_t height,
    int64_t width, const std::vector<float>& thresholds) {
  // Without a spec, the default one's transform at the exported input size.
  const ModelSpec spec =
      o.spec().value_or(ModelSpec().arch(arch).num_classes(classes).image_size(std::max(height, width)));
  std::vector<std::string> names = spec.class_names();
  if (names.empty()) {
    for (int64_t k = 0; k < classes; ++k) names.push_back(std::to_string(k));
  }
  std::string names_json = "[";
  for (size_t k = 0; k < names.size(); ++k) names_json += (k ? ", " : "") + json_string(names[k]);
  names_json += "]";
  const bool normalize = spec.normalize();
  const std::array<float, 3> mean = normalize ? o.mean() : std::array<float, 3>{{0, 0, 0}};
  const std::array<float, 3> stdev = normalize ? o.std() : std::array<float, 3>{{1, 1, 1}};
  const int64_t size = spec.image_size();
  std::string resize;
  if (spec.eval_resize() == "squish") {
    resize = "the whole image resized to " + std::to_string(size) + "x" + std::to_string(size) +
             " (aspect ratio not kept)";
  } else {
    TORCH_CHECK(spec.eval_resize() == "center", "export_onnx: spec.eval_resize must be 'squish' or 'center', got '",
                spec.eval_resize(), "'");
    // data/transforms.hpp's eval_transform: shorter side to int(size * 256 / 224), central crop.
    resize = "shorter side resized to " + std::to_string(int64_t(double(size) * 256.0 / 224.0)) +
             " (aspect ratio kept), then the central " + std::to_string(size) + "x" +
             std::to_string(size) + " crop";
  }
  return {
      {"model_name", arch},
      {"model", o.spec() ? spec.describe() : arch + " (" + std::to_string(classes) + " classes)"},
      {"library", "mobilenet"},
      {"library_version", version_string()},
      {"num_classes", std::to_string(classes)},
      {"class_names", names_json},
      {"thresholds", json_numbers(thresholds)},
      {"input", "images"},
      {"outputs", o.probabilities() ? "[\"logits\", \"probabilities\"]" : "[\"logits\"]"},
      {"input_size", o.dynamic_size() ? "any (height and width are named dimensions)"
                                      : json_numbers(std::vector<int64_t>{height, width})},
      {"image_size", std::to_string(size)},
      {"resize_mode", spec.eval_resize()},
      {"resize", resize},
      {"interpolation", "bilinear, antialiased (PIL's Image.resize with BILINEAR)"},
      {"channel_order", "RGB"},
      {"layout", "NCHW"},
      {"normalize", normalize ? "true" : "false"},
      {"mean", json_numbers(std::vector<float>(mean.begin(), mean.end()))},
      {"std", json_numbers(std::vector<float>(stdev.begin(), stdev.end()))},
      {"preprocess", "x = (pixel / 255 - mean) / std per channel, pixel in 0..255"},
      {"decision", "class k is present when sigmoid(logits[k]) >= thresholds[k]"},
  };
}

}  // namespace detail

/// Writes `model` (any make_model result: MobileNetV2 at any width, output stride or
/// dilation, MobileNetV1) as an ONNX file at `path`, in its eval form: BatchNorm folded
/// (prepare_for_inference's folding), Dropout gone, ReLU6 as Clip(0, 6). Input "images" is
/// float32 N x 3 x H x W with N a named dimension "batch"; output "logits" is N x classes
/// (and "probabilities" with options.probabilities()). The file is written atomically: on any error no file, partial or
/// temporary, is left at `path` (an existing one stays as it was).
/// Errors (c10::Error): a module the export does not know names its path in the model
/// ("features.18"); a path that cannot be written gives the system's reason.
/// Example: `export_onnx(model, "model.onnx", ExportOptions().spec(spec).thresholds(t));`
inline void export_onnx(const Classifier& model, const std::string& path, const ExportOptions& options = {}) {
  TORCH_CHECK(model.defined(), "export_onnx: the model is undefined");
  TORCH_CHECK(options.opset() >= 11 && options.opset() <= detail::kOnnxMaxOpset,
              "export_onnx: opset must be in [11, ", detail::kOnnxMaxOpset, "], got ", options.opset());
  const std::string arch = detail::onnx_arch_of(model);
  std::vector<InferenceNode> steps;
  try {
    steps = detail::compile_classifier(detail::onnx_child(model, "features"),
                                       detail::onnx_child(model, "classifier"));
  } catch (const c10::Error& e) {
    // The folding's messages name prepare_for_inference; say which call the user made.
    std::string why = e.what_without_backtrace();
    const std::string prefix = "prepare_for_inference: ";
    if (why.compare(0, prefix.size(), prefix) == 0) why.erase(0, prefix.size());
    TORCH_CHECK(false, "export_onnx: ", why);
  }
  TORCH_CHECK(!steps.empty() && steps.back().kind == InferenceNode::Kind::kLinear,
              "export_onnx: the classifier must end with a Linear layer");
  const int64_t classes = steps.back().weight.size(0);
  if (options.spec()) {
    TORCH_CHECK(options.spec()->arch() == arch, "export_onnx: ExportOptions::spec is a ",
                options.spec()->arch(), ", the model a ", arch);
    TORCH_CHECK(options.spec()->num_classes() == classes, "export_onnx: ExportOptions::spec has ",
                options.spec()->num_classes(), " classes, the model ", classes);
    TORCH_CHECK(options.spec()->class_names().empty() ||
                    int64_t(options.spec()->class_names().size()) == classes,
                "export_onnx: ExportOptions::spec has ", options.spec()->class_names().size(),
                " class names for ", classes, " classes");
  }
  std::vector<float> thresholds = options.thresholds();
  if (thresholds.empty()) thresholds.assign(size_t(classes), 0.5f);
  TORCH_CHECK(int64_t(thresholds.size()) == classes, "export_onnx: ", thresholds.size(),
              " thresholds for ", classes, " classes");
  for (float t : thresholds) {
    TORCH_CHECK(t >= 0 && t <= 1, "export_onnx: thresholds must be in [0, 1], got ", t);
  }
  const int64_t fallback = options.spec() ? options.spec()->image_size() : 224;
  const int64_t height = options.height() > 0 ? options.height() : fallback;
  const int64_t width = options.width() > 0 ? options.width() : fallback;
  TORCH_CHECK(options.height() >= 0 && options.width() >= 0 && height >= 1 && width >= 1,
              "export_onnx: height and width must be positive, got ", options.height(), " x ", options.width());

  detail::OnnxModel onnx;
  onnx.ir_version = detail::onnx_ir_version_for(options.opset());
  onnx.opset = options.opset();
  onnx.producer_name = "mobilenet";
  onnx.producer_version = version_string();
  onnx.doc_string = arch + " multi-label classifier exported by mobilenet::export_onnx";
  onnx.graph_name = arch;
  onnx.metadata = detail::onnx_metadata(options, arch, classes, height, width, thresholds);
  const std::string h = options.dynamic_size() ? "height" : std::to_string(height);
  const std::string w = options.dynamic_size() ? "width" : std::to_string(width);
  onnx.inputs.push_back({"images", {"batch", "3", h, w}});
  detail::OnnxGraphBuilder builder(&onnx, options.float16_weights());
  const std::string last = builder.add_steps(steps, "images");
  // The last node's output is renamed "logits" (no Identity node).
  TORCH_CHECK(onnx.nodes.back().outputs.at(0) == last, "export_onnx: internal error, last value ", last);
  onnx.nodes.back().outputs[0] = "logits";
  onnx.outputs.push_back({"logits", {"batch", std::to_string(classes)}});
  if (options.probabilities()) {
    builder.node("Sigmoid", {"logits"}, {"probabilities"});
    onnx.outputs.push_back({"probabilities", {"batch", std::to_string(classes)}});
  }
  std::string bytes;
  try {
    bytes = detail::onnx_model_bytes(onnx);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "export_onnx: ", e.what());
  }
  write_file_atomically(path, bytes);
}

/// Exports a checkpoint's model (as coco_train writes best.pt) with its spec and its tuned
/// per-class thresholds; options.spec() and options.thresholds(), when given, take precedence.
/// Example: `export_onnx_from_checkpoint("runs/coco/best.pt", "model.onnx");`
inline void export_onnx_from_checkpoint(const std::string& checkpoint, const std::string& path,
                                        ExportOptions options = {}) {
  const ModelSpec spec = read_model_spec(checkpoint);
  Classifier model = make_model(spec);
  const TrainingState state = load_checkpoint(checkpoint, model.module(), spec, nullptr, /*restore_rng=*/false);
  model.module().eval();
  if (!options.spec()) options.spec(spec);
  if (options.thresholds().empty() && int64_t(state.thresholds.size()) == spec.num_classes()) {
    options.thresholds(state.thresholds);
  }
  export_onnx(model, path, options);
}

}  // namespace mobilenet
