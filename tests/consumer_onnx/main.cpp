// A find_package(mobilenet COMPONENTS onnx) user: exports a small model and reads it back.
#include <mobilenet/export/onnx.hpp>
#include <mobilenet/mobilenet.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

int main() {
  const auto spec = mobilenet::ModelSpec().num_classes(3).image_size(32);
  mobilenet::Classifier model = mobilenet::make_model(spec);
  mobilenet::export_onnx(model, "consumer.onnx", mobilenet::ExportOptions().spec(spec));
  std::ifstream in("consumer.onnx", std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes.str()) || proto.graph().output(0).name() != "logits") {
    std::cerr << "consumer_onnx: consumer.onnx does not read back\n";
    return 1;
  }
  std::cout << "consumer_onnx: " << proto.graph().node_size() << " nodes\n";
  return 0;
}
