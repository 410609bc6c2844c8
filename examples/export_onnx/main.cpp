// Exports a coco_train checkpoint as an ONNX file: the folded eval graph, with the class
// names, the tuned per-class thresholds and the eval transform in its metadata
// (docs/deploy.md shows how onnxruntime loads it).
#include <mobilenet/export/onnx.hpp>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"Export a coco_train checkpoint as ONNX"};
  std::string checkpoint, out;
  mobilenet::ExportOptions options;
  int64_t opset = options.opset(), height = 0, width = 0;
  bool probabilities = false, float16 = false, dynamic_size = false;
  app.add_option("checkpoint", checkpoint, "best.pt or last.pt written by coco_train")->required();
  app.add_option("output", out, "the .onnx file to write")->required();
  app.add_option("--opset", opset, "ONNX opset of the default domain")->capture_default_str();
  app.add_option("--height", height, "input height (default: the checkpoint's image size)")
      ->check(CLI::PositiveNumber);
  app.add_option("--width", width, "input width (default: the checkpoint's image size)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--dynamic-size", dynamic_size, "accept any height and width (named dimensions)");
  app.add_flag("--probabilities", probabilities, "also output sigmoid(logits) as 'probabilities'");
  app.add_flag("--float16", float16, "store the weights as float16 (half the file; float32 arithmetic)");
  CLI11_PARSE(app, argc, argv);
  try {
    options.opset(opset).height(height).width(width).dynamic_size(dynamic_size)
        .probabilities(probabilities).float16_weights(float16);
    mobilenet::export_onnx_from_checkpoint(checkpoint, out, options);
    std::cout << "wrote " << out << " (" << std::filesystem::file_size(out) << " bytes, opset " << opset
              << ")\n";
  } catch (const c10::Error& e) {
    std::cerr << "export_onnx: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "export_onnx: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
