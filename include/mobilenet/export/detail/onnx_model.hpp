#pragma once
/// \file export/detail/onnx_model.hpp
/// An ONNX model as plain C++ values (no protobuf, no LibTorch): what export_onnx builds and
/// what the writer library (src/export/onnx_writer.cpp) turns into ONNX's protobuf bytes.
/// The split exists because LibTorch wheels carry their own protobuf: the writer holds its
/// protobuf privately, so only these plain types cross into the caller's process image.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mobilenet::detail {

/// ONNX TensorProto.DataType codes that the export uses (onnx.proto's numbering).
enum class OnnxType : int32_t { kFloat = 1, kFloat16 = 10 };

/// A node attribute: one integer or a list of integers (all the export needs).
struct OnnxAttribute {
  std::string name;
  bool is_list = false;
  int64_t i = 0;
  std::vector<int64_t> ints;
};

struct OnnxNode {
  std::string op_type, name;
  std::vector<std::string> inputs, outputs;
  std::vector<OnnxAttribute> attributes;
};

/// A constant (graph initializer): `raw` holds the values little-endian, as raw_data does.
struct OnnxTensor {
  std::string name;
  OnnxType type = OnnxType::kFloat;
  std::vector<int64_t> dims;
  std::string raw;
};

/// A float32 graph input or output; a dimension that is not a number is a named one
/// ("batch"), whose size the runtime takes from the data.
struct OnnxValue {
  std::string name;
  std::vector<std::string> dims;
};

struct OnnxModel {
  int64_t ir_version = 8, opset = 17;
  std::string producer_name, producer_version, doc_string, graph_name;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<OnnxValue> inputs, outputs;
  std::vector<OnnxNode> nodes;
  std::vector<OnnxTensor> initializers;
};

/// The newest default-domain opset the writer will stamp. Every operator the export emits
/// (Conv, Clip, Add, GlobalAveragePool, Flatten, Gemm, Relu, Sigmoid, Cast) has the same
/// meaning for float32 from its last change up to this opset.
inline constexpr int64_t kOnnxMaxOpset = 21;

/// The model as ONNX protobuf bytes (ModelProto.SerializeToString). Defined in the writer
/// library (target mobilenet::onnx); throws std::runtime_error if protobuf cannot serialize.
std::string onnx_model_bytes(const OnnxModel& model);

}  // namespace mobilenet::detail
