// Runs a coco_train checkpoint on image files or folders and prints, for each image, the
// classes whose probability reaches that class's tuned threshold.
#include <mobilenet/data/image.hpp>
#include <mobilenet/mobilenet.hpp>
#include <mobilenet/data/transforms.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <thread>

namespace fs = std::filesystem;

namespace {

// Images predicted per forward pass.
constexpr int64_t kBatch = 16;

bool is_image(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Predict labels with a coco_train checkpoint"};
  std::string checkpoint;
  std::vector<std::string> inputs;
  bool json = false;
  double threshold = -1;
  int64_t threads = 0;
  app.add_option("--checkpoint", checkpoint, "best.pt or last.pt written by coco_train")->required();
  app.add_option("inputs", inputs, "image files and/or folders (searched recursively)")->required();
  app.add_flag("--json", json, "one JSON object per image instead of text");
  app.add_option("--threshold", threshold,
                 "one threshold for all classes (default: the checkpoint's tuned per-class ones)");
  app.add_option("--threads", threads, "intra-op threads (default: all cores)");
  CLI11_PARSE(app, argc, argv);

  try {
    torch::set_num_threads(threads > 0 ? static_cast<int>(threads)
                                       : static_cast<int>(std::thread::hardware_concurrency()));
    const auto spec = mobilenet::read_model_spec(checkpoint);
    TORCH_CHECK(spec.arch == "mobilenet_v2", "'", checkpoint, "' holds a ", spec.arch,
                ", which predict cannot build");
    mobilenet::MobileNetV2 model(mobilenet::MobileNetV2Options()
                                     .num_classes(spec.num_classes)
                                     .width_mult(spec.width_mult)
                                     .output_stride(spec.output_stride));
    auto state = mobilenet::load_checkpoint(checkpoint, *model, spec, nullptr, false);
    model->eval();
    std::vector<float> thresholds = state.thresholds;
    if (threshold >= 0 || thresholds.size() != size_t(spec.num_classes)) {
      thresholds.assign(size_t(spec.num_classes), threshold >= 0 ? float(threshold) : 0.5f);
    }
    const auto transform = mobilenet::eval_transform(spec.image_size, spec.normalize);

    std::vector<std::string> files;
    for (const auto& in : inputs) {
      TORCH_CHECK(fs::exists(in), "no such file or folder: '", in, "'");
      if (fs::is_directory(in)) {
        for (const auto& e : fs::recursive_directory_iterator(in)) {
          if (e.is_regular_file() && is_image(e.path())) files.push_back(e.path().string());
        }
      } else {
        files.push_back(in);
      }
    }
    std::sort(files.begin(), files.end());
    int64_t failed = 0;
    torch::NoGradGuard no_grad;
    for (size_t start = 0; start < files.size(); start += kBatch) {
      std::vector<torch::Tensor> images;
      std::vector<std::string> names;
      for (size_t i = start; i < std::min(files.size(), start + kBatch); ++i) {
        try {
          images.push_back(transform(files[i], 0));
          names.push_back(files[i]);
        } catch (const std::exception& e) {
          ++failed;
          std::cerr << "predict: skipping " << e.what() << "\n";
        }
      }
      if (images.empty()) continue;
      auto probs = torch::sigmoid(model(torch::stack(images))).contiguous();
      auto p = probs.accessor<float, 2>();
      for (size_t i = 0; i < names.size(); ++i) {
        std::vector<int64_t> hits;
        for (int64_t k = 0; k < spec.num_classes; ++k) {
          if (p[int64_t(i)][k] >= thresholds[size_t(k)]) hits.push_back(k);
        }
        std::sort(hits.begin(), hits.end(),
                  [&](int64_t a, int64_t b) { return p[int64_t(i)][a] > p[int64_t(i)][b]; });
        auto name_of = [&](int64_t k) {
          return k < int64_t(spec.class_names.size()) ? spec.class_names[size_t(k)]
                                                      : std::to_string(k);
        };
        if (json) {
          std::cout << "{\"file\": \"" << json_escape(names[i]) << "\", \"labels\": [";
          for (size_t h = 0; h < hits.size(); ++h) {
            std::cout << (h ? ", " : "") << "{\"class\": \"" << json_escape(name_of(hits[h]))
                      << "\", \"index\": " << hits[h] << ", \"probability\": "
                      << p[int64_t(i)][hits[h]] << ", \"threshold\": " << thresholds[size_t(hits[h])]
                      << "}";
          }
          std::cout << "]}\n";
        } else {
          std::cout << names[i] << ":";
          if (hits.empty()) std::cout << " (no label)";
          for (auto k : hits) {
            std::cout << " " << name_of(k) << " " << std::fixed << std::setprecision(3)
                      << p[int64_t(i)][k];
          }
          std::cout << "\n";
        }
      }
    }
    if (failed > 0) std::cerr << "predict: " << failed << " file(s) could not be read\n";
    return files.empty() || failed == int64_t(files.size()) ? 1 : 0;
  } catch (const c10::Error& e) {
    std::cerr << "predict: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "predict: " << e.what() << "\n";
    return 1;
  }
}
