// Prints a torchsummary-style table for a MobileNet. Defaults: the seed model at 256x256.
#include <mobilenet/mobilenet.hpp>

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  // The seed model's input resolution.
  constexpr int64_t kSeedInputSize = 256;
  CLI::App app{"Summary of a MobileNet: layers, output shapes, parameters, memory"};
  std::string model_name = "v2";
  int64_t num_classes = 80;
  int64_t input_size = kSeedInputSize;
  int64_t output_stride = 16;
  double width_mult = 1.0;
  app.add_option("--model", model_name, "v2 (MobileNetV2) or v1 (MobileNetV1)")
      ->check(CLI::IsMember({"v1", "v2"}))
      ->capture_default_str();
  app.add_option("--num-classes", num_classes, "classifier outputs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--input-size", input_size, "input height and width")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--output-stride", output_stride, "32, 16 or 8 (dilation past it)")
      ->check(CLI::IsMember({8, 16, 32}))
      ->capture_default_str();
  app.add_option("--width-mult", width_mult, "channel multiplier")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const std::vector<int64_t> shape{3, input_size, input_size};
    mobilenet::ModelSummary summary;
    if (model_name == "v2") {
      mobilenet::MobileNetV2 model(mobilenet::MobileNetV2Options()
                                       .num_classes(num_classes)
                                       .output_stride(output_stride)
                                       .width_mult(width_mult));
      summary = mobilenet::summarize(*model, shape);
    } else {
      mobilenet::MobileNetV1 model(mobilenet::MobileNetV1Options()
                                       .num_classes(num_classes)
                                       .output_stride(output_stride)
                                       .width_mult(width_mult));
      summary = mobilenet::summarize(*model, shape);
    }
    std::cout << summary.to_string();
  } catch (const std::exception& e) {
    std::cerr << "summary: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
