// Inference latency of a trained classifier, as a deployer runs it: our Predictor
// (prepare_for_inference: BatchNorm folded, layout and convolution backend chosen by
// measurement) against Python's strongest paths on the same machine, interleaved round by
// round through the harness (bench_util.hpp):
//   - TorchScript: torch.jit.trace + freeze + optimize_for_inference (torchvision's model);
//   - torch.compile (inductor, freezing on);
//   - onnxruntime on the file mobilenet::export_onnx wrote from the very model timed here.
// MobileNetV2, output stride 32, 80 classes, 224x224; batch 1 and --big-batch; the same
// float32 NCHW input for every side, each side's model in its own fastest layout.
//
//   bench_inference [--threads 1] [--size 224] [--runs 30] [--big-batch 32] [--big-runs 5]
//                   [--rounds 3] [--allow-load] [--max-load X]
//
// The Python torch sides use torchvision's randomly initialized weights, the onnxruntime side
// ours: latency does not depend on the values (all are normal floats).
#include <mobilenet/export/onnx.hpp>
#include <mobilenet/inference.hpp>
#include <mobilenet/mobilenet.hpp>

#include <CLI/CLI.hpp>

#include "../bench_util.hpp"
#include "../physical_limit.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {


// The Python sides, in the order they are reported.
const std::vector<std::pair<std::string, std::string>> kSides{
    {"frozen", "TorchScript frozen"}, {"compile", "torch.compile"}, {"ort", "onnxruntime"}};

}  // namespace

int run_benchmark(int argc, char** argv) {
  CLI::App app{"Inference latency: mobilenet Predictor (C++) vs TorchScript, torch.compile, onnxruntime"};
  int64_t size = 224, threads = 1, runs = 30, big_batch = 32, big_runs = 5, classes = 80;
  bench::HarnessOptions harness_options;
  app.add_option("--size", size, "image size")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (every side)")->capture_default_str();
  app.add_option("--runs", runs, "timed batch-1 forwards per round and side")->capture_default_str();
  app.add_option("--big-batch", big_batch, "second latency batch")->capture_default_str();
  app.add_option("--big-runs", big_runs, "timed forwards at --big-batch per round and side")
      ->capture_default_str();
  bench::add_harness_flags(app, harness_options);
  CLI11_PARSE(app, argc, argv);

  torch::set_num_threads(static_cast<int>(threads));
  at::set_num_interop_threads(1);
  bench::Harness harness("bench_inference", harness_options);
  if (!harness.start({{"threads", std::to_string(threads) + " intra-op on every side (onnxruntime: intra_op_num_threads, sequential)"},
                      {"model", "MobileNetV2, output stride 32, " + std::to_string(classes) +
                                    " classes, " + std::to_string(size) + "x" + std::to_string(size)},
                      {"batches", "1 (" + std::to_string(runs) + " runs) and " +
                                      std::to_string(big_batch) + " (" + std::to_string(big_runs) +
                                      " runs) per round and side, wall-clock medians"},
                      {"input", "float32 NCHW contiguous on every side; models in their own layout "
                                "(C++: chosen by prepare_for_inference; TorchScript/compile: "
                                "channels-last; onnxruntime: its own)"},
                      {"C++ side", "Predictor::predict_batch (forward + sigmoid + thresholds)"}})) {
    return 2;
  }

  // The model a deployer has: a checkpoint. The Predictor and the ONNX file come from it.
  const auto dir = std::filesystem::temp_directory_path() /
                   ("bench_inference." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() { std::error_code ec; std::filesystem::remove_all(p, ec); }
  } cleanup{dir};
  torch::manual_seed(0);
  const auto spec = mobilenet::ModelSpec().num_classes(classes).output_stride(32).image_size(size);
  mobilenet::Classifier model = mobilenet::make_model(spec);
  const std::string checkpoint = (dir / "model.pt").string(), onnx = (dir / "model.onnx").string();
  mobilenet::save_checkpoint(checkpoint, model.module(), spec, mobilenet::TrainingState());
  mobilenet::export_onnx_from_checkpoint(checkpoint, onnx);

  const std::string script = std::string(MOBILENET_BENCH_DIR) + "/python_baseline.py";
  bench::PythonChild python(script, {std::to_string(size), std::to_string(classes), onnx},
                            static_cast<int>(threads));
  harness.check_child(python, static_cast<int>(threads));
  const auto batches = std::vector<int64_t>{1, big_batch};
  for (int64_t b : batches) {
    std::fprintf(stderr, "[bench_inference] preparing the Python sides for batch %lld (torch.compile compiles)\n",
                 (long long)b);
    python.round("prepare " + std::to_string(b));
  }
  const auto& info = python.info();
  std::printf("Python sides  onnxruntime %s, torch.compile %s, numpy %s\n",
              info.at("onnxruntime").c_str(), info.at("torch_compile").c_str(), info.at("numpy").c_str());

  const double gflop_per_image =
      bench::forward_gflop_per_image(model.features(), model.classifier(), size);
  bench::print_physical_reference(static_cast<int>(threads), gflop_per_image);

  // batch_size: the batch the user runs, which its batched model is prepared on.
  mobilenet::Predictor predictor(checkpoint, mobilenet::PredictorOptions().batch_size(big_batch));
  std::vector<std::vector<bench::Series>> series(batches.size());
  for (size_t i = 0; i < batches.size(); ++i) {
    const std::string b = "batch-" + std::to_string(batches[i]);
    for (const auto& side : kSides) series[i].emplace_back(b + " vs " + side.second, "ms", false);
    series[i].emplace_back(b + " vs best Python", "ms", false, "<= 1.0x");
  }
  std::vector<torch::Tensor> inputs;
  for (int64_t b : batches) inputs.push_back(torch::randn({b, 3, size, size}));
  std::vector<bool> present(kSides.size(), true);
  for (int r = 0; r < harness_options.rounds; ++r) {
    harness.round_started(r);
    for (size_t i = 0; i < batches.size(); ++i) {
      const int64_t n = batches[i] == 1 ? runs : big_runs;
      // A: C++.
      const double ms = bench::median_ms([&] { predictor.predict_batch(inputs[i]); }, batches[i] == 1 ? 3 : 1, n);
      // B: Python, every side.
      auto py = python.round("latency " + std::to_string(batches[i]) + " " + std::to_string(n));
      double best = 1e300;
      for (size_t s = 0; s < kSides.size(); ++s) {
        const double v = py.at(kSides[s].first + "_ms");
        if (v < 0) {
          present[s] = false;
          continue;
        }
        series[i][s].cpp.push_back(ms);
        series[i][s].py.push_back(v);
        best = std::min(best, v);
      }
      series[i].back().cpp.push_back(ms);
      series[i].back().py.push_back(best);
    }
  }
  std::printf("results (medians of %d rounds)\n", harness_options.rounds);
  for (size_t s = 0; s < kSides.size(); ++s) {
    if (!present[s]) std::printf("  %s: not available in this Python (not compared)\n", kSides[s].second.c_str());
  }
  for (const auto& per_batch : series) {
    for (const auto& s : per_batch) {
      if (!s.py.empty()) harness.report(s);
    }
  }
  std::printf("achieved GFLOP/s (medians; peak and GEMM ceiling above)\n");
  for (size_t i = 0; i < batches.size(); ++i) {
    const double gflop = gflop_per_image * double(batches[i]);
    std::printf("  batch-%-4lld C++ %.0f", (long long)batches[i],
                gflop / (bench::median(series[i].back().cpp) / 1e3));
    for (size_t s = 0; s < kSides.size(); ++s) {
      if (present[s]) {
        std::printf(", %s %.0f", kSides[s].second.c_str(), gflop / (bench::median(series[i][s].py) / 1e3));
      }
    }
    std::printf("\n");
  }
  std::printf("per round\n");
  for (const auto& per_batch : series) {
    for (const auto& s : per_batch) {
      if (!s.py.empty()) harness.report_rounds(s);
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded("bench_inference", [&] { return run_benchmark(argc, argv); });
}
