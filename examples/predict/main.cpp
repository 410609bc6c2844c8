// Runs a coco_train checkpoint on image files or folders and prints, for each image, the
// classes whose probability reaches that class's tuned threshold.
#include <mobilenet/inference.hpp>
#include <mobilenet/io/allocator.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <thread>

namespace fs = std::filesystem;

namespace {

bool is_image(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// The inside of a JSON string, through the library's one escaper.
std::string json_text(const std::string& s) {
  return mobilenet::escape_text(s, mobilenet::EscapeStyle::json);
}

}  // namespace

int main(int argc, char** argv) {
  mobilenet::keep_activations_on_heap();  // io/allocator.hpp: batches of images reuse their pages
  CLI::App app{"Predict labels with a coco_train checkpoint"};
  std::string checkpoint, device;
  std::vector<std::string> inputs;
  bool json = false;
  double threshold = std::nan("");
  int64_t threads = 0;
  app.add_option("--checkpoint", checkpoint, "best.pt or last.pt written by coco_train")->required();
  app.add_option("inputs", inputs, "image files and/or folders (searched recursively)")->required();
  app.add_flag("--json", json, "one JSON object per image instead of text");
  app.add_option("--threshold", threshold,
                 "one threshold for all classes, in [0, 1] (default: the checkpoint's tuned per-class ones)")
      ->check(CLI::Range(0.0, 1.0))
      ->check(CLI::Validator(  // CLI::Range lets NaN through
          [](std::string& v) { return std::isnan(std::strtod(v.c_str(), nullptr)) ? "must be a number, got " + v : std::string(); },
          "NUMBER"));
  app.add_option("--threads", threads, "intra-op threads (default: all cores)")->check(CLI::PositiveNumber);
  app.add_option("--device", device, "cpu or cuda (default: cuda when available)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  CLI11_PARSE(app, argc, argv);

  try {
    torch::set_num_threads(threads > 0 ? static_cast<int>(threads)
                                       : static_cast<int>(std::thread::hardware_concurrency()));
    const torch::Device dev(device.empty() ? (torch::cuda::is_available() ? "cuda" : "cpu") : device);
    mobilenet::Predictor predictor(checkpoint, mobilenet::PredictorOptions().device(dev).threshold(threshold));

    std::vector<std::string> files;
    for (const auto& in : inputs) {
      TORCH_CHECK(fs::exists(in), "no such file or folder: '", mobilenet::escape_path(in), "'");
      if (fs::is_directory(in)) {
        for (const auto& e : fs::recursive_directory_iterator(in)) {
          if (e.is_regular_file() && is_image(e.path())) files.push_back(e.path().string());
        }
      } else {
        files.push_back(in);
      }
    }
    TORCH_CHECK(!files.empty(), "no image (.jpg, .jpeg, .png) in ", inputs.size(), " input(s), e.g. '",
                mobilenet::escape_path(inputs.front()), "'");
    std::sort(files.begin(), files.end());
    int64_t failed = 0;
    for (const auto& file : files) {
      mobilenet::Prediction p;
      try {
        p = predictor.predict(file);
      } catch (const mobilenet::ImageError& e) {
        ++failed;
        std::cerr << "predict: skipping " << e.what() << "\n";
        continue;
      }
      if (json) {
        std::cout << "{\"file\": \"" << json_text(file) << "\", \"labels\": [";
        for (size_t h = 0; h < p.labels.size(); ++h) {
          const auto& l = p.labels[h];
          std::cout << (h ? ", " : "") << "{\"class\": \"" << json_text(l.name) << "\", \"index\": "
                    << l.index << ", \"probability\": " << l.probability << ", \"threshold\": "
                    << l.threshold << "}";
        }
        std::cout << "]}\n";
      } else {
        std::cout << mobilenet::escape_path(file) << ":";
        if (p.labels.empty()) std::cout << " (no label)";
        for (const auto& l : p.labels) {
          std::cout << " " << l.name << " " << std::fixed << std::setprecision(3) << l.probability;
        }
        std::cout << "\n";
      }
    }
    if (failed > 0) std::cerr << "predict: " << failed << " of " << files.size() << " file(s) could not be read\n";
    return failed == int64_t(files.size()) ? 1 : 0;
  } catch (const c10::Error& e) {
    std::cerr << "predict: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "predict: " << e.what() << "\n";
    return 1;
  }
}
