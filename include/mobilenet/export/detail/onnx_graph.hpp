#pragma once
/// \file export/detail/onnx_graph.hpp
/// Builds the ONNX graph of a folded model (models/fuse.hpp's InferenceNode list) as plain
/// values (onnx_model.hpp), and the metadata strings that go beside it.

#include <mobilenet/export/detail/onnx_model.hpp>
#include <mobilenet/models/fuse.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace mobilenet::detail {

// raw_data is little-endian by ONNX's definition; copying our tensors' bytes is only right
// on a little-endian machine.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "export_onnx writes tensor bytes as they lie in memory: little-endian hosts only");

/// The ONNX IR version that a file of `opset` needs (onnx.helper's VERSION_TABLE): the lowest
/// one, so that older runtimes load the file.
inline int64_t onnx_ir_version_for(int64_t opset) {
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

/// `text` as a JSON string literal (quotes, backslashes and control characters escaped).
inline std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

/// A JSON array of numbers, each with enough digits to read back the same float.
template <typename T>
std::string json_numbers(const std::vector<T>& values) {
  std::ostringstream s;
  s.precision(9);  // max_digits10 of float
  s << "[";
  for (size_t i = 0; i < values.size(); ++i) s << (i ? ", " : "") << values[i];
  s << "]";
  return s.str();
}

/// Appends nodes and initializers to one OnnxModel; value names are made unique here.
class OnnxGraphBuilder {
 public:
  OnnxGraphBuilder(OnnxModel* model, bool float16_weights) : model_(model), float16_(float16_weights) {}

  /// A constant float32 value named `name`. With float16 weights the file stores it as
  /// float16 and a Cast restores float32, so the arithmetic stays float32.
  std::string constant(const std::string& name, const torch::Tensor& value, bool allow_float16 = true) {
    const torch::Tensor t = value.detach().to(torch::kCPU, torch::kFloat).contiguous();
    const bool half = float16_ && allow_float16;
    OnnxTensor init;
    init.name = half ? name + ".float16" : name;
    init.dims = t.sizes().vec();
    const torch::Tensor stored = half ? t.to(torch::kHalf).contiguous() : t;
    init.type = half ? OnnxType::kFloat16 : OnnxType::kFloat;
    init.raw.assign(static_cast<const char*>(stored.data_ptr()), stored.nbytes());
    model_->initializers.push_back(std::move(init));
    if (half) node("Cast", {name + ".float16"}, {name}).attributes.push_back(int_attribute("to", int64_t(OnnxType::kFloat)));
    return name;
  }

  /// Adds an `op` node; returns it for attributes (valid until the next node).
  OnnxNode& node(const std::string& op, const std::vector<std::string>& inputs,
                 const std::vector<std::string>& outputs) {
    OnnxNode n;
    n.op_type = op;
    n.name = op + "_" + std::to_string(counts_[op]++);
    n.inputs = inputs;
    n.outputs = outputs;
    model_->nodes.push_back(std::move(n));
    return model_->nodes.back();
  }

  /// A fresh value name "<stem>_<k>".
  std::string value(const std::string& stem) { return stem + "_" + std::to_string(counts_["value:" + stem]++); }

  static OnnxAttribute int_attribute(const std::string& name, int64_t v) {
    OnnxAttribute a;
    a.name = name;
    a.i = v;
    return a;
  }
  static OnnxAttribute ints_attribute(const std::string& name, const std::vector<int64_t>& v) {
    OnnxAttribute a;
    a.name = name;
    a.is_list = true;
    a.ints = v;
    return a;
  }

  /// The nodes of `steps` applied to value `x`; returns the output's name.
  std::string add_steps(const std::vector<InferenceNode>& steps, std::string x) {
    for (const auto& step : steps) x = add_step(step, x);
    return x;
  }

 private:
  std::string add_step(const InferenceNode& step, const std::string& x) {
    using Kind = InferenceNode::Kind;
    switch (step.kind) {
      case Kind::kConv: {
        const std::string stem = "conv" + std::to_string(convs_++);
        const std::string w = constant(stem + ".weight", step.weight);
        const std::string b = constant(stem + ".bias", step.bias);
        const std::string y = value(stem);
        const auto k = step.weight.sizes();
        node("Conv", {x, w, b}, {y}).attributes = {
            ints_attribute("kernel_shape", {k[2], k[3]}),
            ints_attribute("strides", step.stride),
            ints_attribute("dilations", step.dilation),
            // ONNX pads are [begin_h, begin_w, end_h, end_w]; PyTorch pads both ends alike.
            ints_attribute("pads", {step.padding[0], step.padding[1], step.padding[0], step.padding[1]}),
            int_attribute("group", step.groups)};
        return activation(step.act, y);
      }
      case Kind::kResidual: {
        const std::string branch = add_steps(step.body, x);
        const std::string y = value("residual");
        node("Add", {branch, x}, {y});
        return y;
      }
      case Kind::kPoolFlatten: {
        const std::string pooled = value("pool");
        node("GlobalAveragePool", {x}, {pooled});
        const std::string y = value("flatten");
        node("Flatten", {pooled}, {y}).attributes.push_back(int_attribute("axis", 1));
        return y;
      }
      case Kind::kLinear: {
        const std::string stem = "linear" + std::to_string(linears_++);
        const std::string w = constant(stem + ".weight", step.weight);
        const std::string b = constant(stem + ".bias", step.bias);
        const std::string y = value(stem);
        // Gemm computes x * W^T + b with transB = 1: PyTorch's Linear.
        node("Gemm", {x, w, b}, {y}).attributes.push_back(int_attribute("transB", 1));
        return activation(step.act, y);
      }
    }
    TORCH_CHECK(false, "export_onnx: unknown inference step");
  }

  std::string activation(InferenceNode::Act act, const std::string& x) {
    if (act == InferenceNode::Act::kNone) return x;
    const std::string y = value("act");
    if (act == InferenceNode::Act::kReLU) {
      node("Relu", {x}, {y});
    } else {
      // Clip takes its bounds as inputs since opset 11; one pair of scalars serves every node.
      if (clip_min_.empty()) {
        clip_min_ = constant("relu6.min", torch::tensor(0.f).reshape({}), false);
        clip_max_ = constant("relu6.max", torch::tensor(6.f).reshape({}), false);
      }
      node("Clip", {x, clip_min_, clip_max_}, {y});
    }
    return y;
  }

  OnnxModel* model_;
  bool float16_;
  std::map<std::string, int64_t> counts_;
  int64_t convs_ = 0, linears_ = 0;
  std::string clip_min_, clip_max_;
};

}  // namespace mobilenet::detail
