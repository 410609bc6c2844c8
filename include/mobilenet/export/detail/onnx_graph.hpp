#pragma once
/// \file export/detail/onnx_graph.hpp
/// Builds an ONNX GraphProto from a folded model (models/fuse.hpp's InferenceNode list)
/// with ONNX's own protobuf classes, and the metadata strings that go beside it.

#include <mobilenet/models/fuse.hpp>

#include <onnx/onnx_pb.h>
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

/// Appends nodes and initializers to one GraphProto; value names are made unique here.
class OnnxGraphBuilder {
 public:
  OnnxGraphBuilder(onnx::GraphProto* graph, bool float16_weights)
      : graph_(graph), float16_(float16_weights) {}

  /// A constant float32 value named `name`. With float16 weights the file stores it as
  /// float16 and a Cast restores float32, so the arithmetic stays float32.
  std::string constant(const std::string& name, const torch::Tensor& value, bool allow_float16 = true) {
    const torch::Tensor t = value.detach().to(torch::kCPU, torch::kFloat).contiguous();
    const bool half = float16_ && allow_float16;
    auto* init = graph_->add_initializer();
    init->set_name(half ? name + ".float16" : name);
    for (int64_t d : t.sizes()) init->add_dims(d);
    if (half) {
      const torch::Tensor h = t.to(torch::kHalf).contiguous();
      init->set_data_type(onnx::TensorProto::FLOAT16);
      init->set_raw_data(h.data_ptr(), size_t(h.numel()) * sizeof(uint16_t));
      node("Cast", {init->name()}, {name})->add_attribute()->CopyFrom(int_attribute("to", onnx::TensorProto::FLOAT));
    } else {
      init->set_data_type(onnx::TensorProto::FLOAT);
      init->set_raw_data(t.data_ptr(), size_t(t.numel()) * sizeof(float));
    }
    return name;
  }

  /// Adds an `op` node; returns it for attributes.
  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs) {
    auto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + std::to_string(counts_[op]++));
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return n;
  }

  /// A fresh value name "<stem>_<k>".
  std::string value(const std::string& stem) { return stem + "_" + std::to_string(counts_["value:" + stem]++); }

  static onnx::AttributeProto int_attribute(const std::string& name, int64_t v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(v);
    return a;
  }
  static onnx::AttributeProto ints_attribute(const std::string& name, const std::vector<int64_t>& v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a.add_ints(x);
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
        auto* n = node("Conv", {x, w, b}, {y});
        const auto k = step.weight.sizes();
        *n->add_attribute() = ints_attribute("kernel_shape", {k[2], k[3]});
        *n->add_attribute() = ints_attribute("strides", step.stride);
        *n->add_attribute() = ints_attribute("dilations", step.dilation);
        // ONNX pads are [begin_h, begin_w, end_h, end_w]; PyTorch pads both ends alike.
        *n->add_attribute() = ints_attribute(
            "pads", {step.padding[0], step.padding[1], step.padding[0], step.padding[1]});
        *n->add_attribute() = int_attribute("group", step.groups);
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
        *node("Flatten", {pooled}, {y})->add_attribute() = int_attribute("axis", 1);
        return y;
      }
      case Kind::kLinear: {
        const std::string stem = "linear" + std::to_string(linears_++);
        const std::string w = constant(stem + ".weight", step.weight);
        const std::string b = constant(stem + ".bias", step.bias);
        const std::string y = value(stem);
        // Gemm computes x * W^T + b with transB = 1: PyTorch's Linear.
        *node("Gemm", {x, w, b}, {y})->add_attribute() = int_attribute("transB", 1);
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

  onnx::GraphProto* graph_;
  bool float16_;
  std::map<std::string, int64_t> counts_;
  int64_t convs_ = 0, linears_ = 0;
  std::string clip_min_, clip_max_;
};

/// Sets `info` to a float32 tensor of `dims`; a name instead of a number declares a
/// dimension whose size the runtime takes from the data ("batch").
inline void set_float_tensor_type(onnx::ValueInfoProto* info, const std::string& name,
                                  const std::vector<std::string>& dims) {
  info->set_name(name);
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tensor->mutable_shape();
  for (const auto& d : dims) {
    auto* dim = shape->add_dim();
    if (!d.empty() && (d[0] >= '0' && d[0] <= '9')) {
      dim->set_dim_value(std::stoll(d));
    } else {
      dim->set_dim_param(d);
    }
  }
}

}  // namespace mobilenet::detail
