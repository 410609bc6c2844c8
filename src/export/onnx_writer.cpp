// The onnx component's writer: OnnxModel -> ONNX protobuf bytes, with ONNX's own message
// classes (protoc over onnx.proto, its package renamed mobilenet_onnx_pb) and the system's
// protobuf linked in statically and hidden (cmake/mobilenetIsolateObject.cmake), so that a
// process may also hold another protobuf: PyPI's LibTorch exports its bundled protobuf 3.13
// from libtorch_cpu, and two protobuf runtimes that resolve each other's symbols corrupt each
// other. Only onnx_model_bytes is left global.
#include <mobilenet/export/detail/onnx_model.hpp>

#include "onnx/onnx.pb.h"  // generated at build time from onnx.proto

#include <stdexcept>

namespace pb = mobilenet_onnx_pb;

namespace mobilenet::detail {
namespace {

void set_value(pb::ValueInfoProto* info, const OnnxValue& value) {
  info->set_name(value.name);
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(pb::TensorProto::FLOAT);
  auto* shape = tensor->mutable_shape();
  for (const auto& d : value.dims) {
    auto* dim = shape->add_dim();
    if (!d.empty() && d[0] >= '0' && d[0] <= '9') {
      dim->set_dim_value(std::stoll(d));
    } else {
      dim->set_dim_param(d);
    }
  }
}

}  // namespace

std::string onnx_model_bytes(const OnnxModel& model) {
  pb::ModelProto proto;
  proto.set_ir_version(model.ir_version);
  proto.set_producer_name(model.producer_name);
  proto.set_producer_version(model.producer_version);
  proto.set_doc_string(model.doc_string);
  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(model.opset);
  for (const auto& [key, value] : model.metadata) {
    auto* prop = proto.add_metadata_props();
    prop->set_key(key);
    prop->set_value(value);
  }
  auto* graph = proto.mutable_graph();
  graph->set_name(model.graph_name);
  for (const auto& v : model.inputs) set_value(graph->add_input(), v);
  for (const auto& v : model.outputs) set_value(graph->add_output(), v);
  for (const auto& t : model.initializers) {
    auto* init = graph->add_initializer();
    init->set_name(t.name);
    init->set_data_type(int32_t(t.type));
    for (int64_t d : t.dims) init->add_dims(d);
    init->set_raw_data(t.raw);
  }
  for (const auto& n : model.nodes) {
    auto* node = graph->add_node();
    node->set_op_type(n.op_type);
    node->set_name(n.name);
    for (const auto& i : n.inputs) node->add_input(i);
    for (const auto& o : n.outputs) node->add_output(o);
    for (const auto& a : n.attributes) {
      auto* attr = node->add_attribute();
      attr->set_name(a.name);
      if (a.is_list) {
        attr->set_type(pb::AttributeProto::INTS);
        for (int64_t x : a.ints) attr->add_ints(x);
      } else {
        attr->set_type(pb::AttributeProto::INT);
        attr->set_i(a.i);
      }
    }
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) {
    throw std::runtime_error("protobuf could not serialize the model (" +
                             std::to_string(proto.ByteSizeLong()) +
                             " bytes; protobuf's limit is 2 GiB)");
  }
  return bytes;
}

}  // namespace mobilenet::detail
