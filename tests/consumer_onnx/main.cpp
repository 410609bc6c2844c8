// A find_package(mobilenet COMPONENTS onnx) user: exports a small model and checks that the
// file starts as an ONNX ModelProto does (field 1, ir_version, as a varint: 0x08, then 8 for
// opset 17). The full checks (onnx's checker, onnxruntime) are tests/test_onnx.cpp's.
#include <mobilenet/export/onnx.hpp>
#include <mobilenet/mobilenet.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

int main() {
  const auto spec = mobilenet::ModelSpec().num_classes(3).image_size(32);
  mobilenet::Classifier model = mobilenet::make_model(spec);
  mobilenet::export_onnx(model, "consumer.onnx", mobilenet::ExportOptions().spec(spec));
  std::ifstream in("consumer.onnx", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 1000 || bytes[0] != '\x08' || bytes[1] != '\x08') {
    std::cerr << "consumer_onnx: consumer.onnx is not an ONNX model of IR version 8\n";
    return 1;
  }
  std::cout << "consumer_onnx: " << bytes.size() << " bytes\n";
  return 0;
}
