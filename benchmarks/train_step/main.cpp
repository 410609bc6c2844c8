// Training throughput (forward + backward + AdamW step) and inference latency of MobileNetV2 at
// output stride 32 versus torchvision's mobilenet_v2 on the same machine, interleaved round by
// round through the harness (bench_util.hpp). Both channels-last, same thread count, batch and
// resolution.
//
//   bench_train_step [--threads 2] [--batch 32] [--size 224] [--steps 3] [--rounds 3]
//                    [--device cpu|cuda] [--amp] [--train-only]
//                    [--allow-load] [--max-load X] [--profile FILE] [--no-allocator-tuning]
//
// On CUDA with --amp both sides train in fp16 under autocast with a GradScaler (torch.amp's
// on the Python side), channels-last; scripts/device_check.sh runs it that way.
//
// Latency compares mobilenet::prepare_for_inference (BN folded, in-place activations,
// InferenceMode) with torchvision eager in torch.inference_mode and with TorchScript
// (torch.jit.freeze + optimize_for_inference), at batch 1 and batch 32.
#include <mobilenet/mobilenet.hpp>
#include <mobilenet/io/allocator.hpp>
#include <mobilenet/models/prepare.hpp>

#include <CLI/CLI.hpp>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "../bench_util.hpp"
#include "../physical_limit.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

int run_benchmark(int argc, char** argv) {
  CLI::App app{"Train-step and latency benchmark: mobilenet (C++) vs torchvision (Python)"};
  int64_t batch = 32, size = 224, threads = 2, steps = 3, runs = 30, big_batch = 32,
          big_runs = 3;
  bool amp = false, no_tuning = false, defer_loss = true, train_only = false;
  std::string device_name = "cpu", profile;
  bench::HarnessOptions harness_options;
  app.add_option("--batch", batch, "training batch")->capture_default_str();
  app.add_option("--size", size, "image size")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (both sides)")->capture_default_str();
  app.add_option("--steps", steps, "timed training steps per round")->capture_default_str();
  app.add_option("--runs", runs, "timed batch-1 forwards per round")->capture_default_str();
  app.add_option("--big-batch", big_batch, "second latency batch")->capture_default_str();
  app.add_option("--big-runs", big_runs, "timed forwards at --big-batch per round")
      ->capture_default_str();
  app.add_flag("--amp", amp, "autocast (fp16 + GradScaler on CUDA, bf16 on CPU)");
  app.add_option("--device", device_name, "cpu or cuda")->capture_default_str();
  app.add_flag("--train-only", train_only, "measure the training step only (no latency rows)");
  app.add_option("--profile", profile,
                 "write one training step's autograd profile (Chrome trace JSON) and exit");
  app.add_flag("--no-allocator-tuning", no_tuning,
               "keep glibc malloc's default thresholds on both sides (io/allocator.hpp)");
  int64_t cpp_steps = 0;
  app.add_option("--cpp-only", cpp_steps,
                 "time this many C++ training steps (wall and CPU seconds per step) and exit: "
                 "for A/B tests of library changes, no Python, no load check");
  app.add_option("--defer-loss", defer_loss, "TrainStepOptions::defer_loss (no .item() per step)")
      ->capture_default_str();
  bench::add_harness_flags(app, harness_options);
  CLI11_PARSE(app, argc, argv);

  bench::heap_allocator() = !no_tuning;  // both sides (bench_util.hpp)
  if (!no_tuning) mobilenet::keep_activations_on_heap();
  torch::set_num_threads(static_cast<int>(threads));
  const torch::Device device(device_name);
  bench::Harness harness("bench_train_step", harness_options);
  if (profile.empty() && cpp_steps == 0 &&
      !harness.start({{"threads", std::to_string(threads) + " intra-op (both sides)"},
                      {"training", "batch " + std::to_string(batch) + ", " +
                                       std::to_string(size) + "x" + std::to_string(size) +
                                       ", channels-last, AdamW, " + std::to_string(steps) +
                                       " steps per round, " + device_name +
                                       (amp ? ", amp" : "")},
                      {"latency", train_only ? std::string("not measured (--train-only)")
                                             : "batch 1 (" + std::to_string(runs) + " runs) and batch " +
                                                   std::to_string(big_batch) + " (" +
                                                   std::to_string(big_runs) + " runs) per round"}})) {
    return 2;
  }

  torch::manual_seed(0);
  mobilenet::MobileNetV2 model(mobilenet::MobileNetV2Options().num_classes(80).output_stride(32));
  model->to(device);
  mobilenet::to_channels_last(*model);
  auto opt = mobilenet::make_optimizer(*model, mobilenet::OptimizerOptions("adamw", 1e-3)
                                                   .weight_decay(1e-2)
                                                   .decay_all(true));
  mobilenet::GradScaler scaler(mobilenet::GradScalerOptions().enabled(amp && device.is_cuda()));
  auto x = torch::randn({batch, 3, size, size}, torch::TensorOptions().device(device))
               .contiguous(at::MemoryFormat::ChannelsLast);
  auto y = (torch::rand({batch, 80}, torch::TensorOptions().device(device)) > 0.9).to(torch::kFloat);
  auto loss = [](const torch::Tensor& l, const torch::Tensor& t) {
    return torch::binary_cross_entropy_with_logits(l, t);
  };
  const auto options = mobilenet::TrainStepOptions(device).amp(amp).defer_loss(defer_loss);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  model->train();
  for (int i = 0; i < 2; ++i) mobilenet::train_step(model, *opt, scaler, loss, x, y, options);
  sync();
  if (cpp_steps > 0) {
    std::vector<double> wall, cpu;
    for (int64_t i = 0; i < cpp_steps; ++i) {
      const double t = bench::now(), c = bench::cpu_now();
      mobilenet::train_step(model, *opt, scaler, loss, x, y, options);
      sync();
      wall.push_back(bench::now() - t);
      cpu.push_back(bench::cpu_now() - c);
    }
    std::printf("C++ step: median %.3f s wall, %.3f s CPU (min %.3f / %.3f), load %.2f\n",
                bench::median(wall), bench::median(cpu), *std::min_element(wall.begin(), wall.end()),
                *std::min_element(cpu.begin(), cpu.end()), bench::load_average_1min());
    // Batch-1 forward, CPU milliseconds (median of `runs`): eager and prepared.
    auto x1 = x.narrow(0, 0, 1).clone();
    model->eval();
    auto cpu_ms = [&](auto&& fn) { return bench::median_ms(fn, 3, runs, bench::cpu_now); };
    double eager = 0;
    {
      c10::InferenceMode guard;
      eager = cpu_ms([&] { model->forward(x1); });
    }
    for (auto format : {mobilenet::InferenceMemoryFormat::kChannelsLast,
                        mobilenet::InferenceMemoryFormat::kContiguous}) {
      for (bool backends : {false, true}) {
        auto prepared = mobilenet::prepare_for_inference(
            *model, mobilenet::InferenceOptions().example_input(x1).memory_format(format)
                        .backend(backends ? std::nullopt
                                          : std::optional(mobilenet::InferenceNode::Backend::kATen)));
        std::printf("C++ batch-1 CPU ms: eager %.2f, prepared %s%s %.2f (%lld of %lld convs "
                    "MKL-DNN, %lld GEMM)\n", eager,
                    format == mobilenet::InferenceMemoryFormat::kChannelsLast ? "NHWC" : "NCHW",
                    backends ? " +backends" : "", cpu_ms([&] { prepared.forward(x1); }),
                    (long long)prepared.num_mkldnn_convolutions(),
                    (long long)prepared.num_convolutions(),
                    (long long)prepared.num_gemm_convolutions());
      }
    }
    return 0;
  }
  if (!profile.empty()) {
    {
      torch::autograd::profiler::RecordProfile guard(profile);
      mobilenet::train_step(model, *opt, scaler, loss, x, y, options);
    }
    std::printf("wrote %s\n", profile.c_str());
    return 0;
  }

  const std::string script = std::string(MOBILENET_BENCH_DIR) + "/python_baseline.py";
  // A training step is about 3 forwards (forward, gradient of the input, of the weights).
  const double gflop_per_image =
      bench::forward_gflop_per_image(model->features, model->classifier, size);
  if (device.is_cpu()) bench::print_physical_reference(static_cast<int>(threads), gflop_per_image);

  std::fprintf(stderr, "[bench_train_step] starting the Python side (torch.compile compiles its training step first: minutes on 2 cores)\n");
  bench::PythonChild python(script,
                            {std::to_string(batch), std::to_string(size), std::to_string(steps),
                             std::to_string(runs), amp ? "1" : "0", device_name},
                            static_cast<int>(threads));
  harness.check_child(python, static_cast<int>(threads));
  std::printf("\n");

  bench::Series train{"training step vs eager", "img/s", true, ">= 1.1x"};
  bench::Series train_compiled{"training step vs torch.compile", "img/s", true, ">= 1.0x"};
  const bool has_compile = python.info().count("torch_compile") && python.info().at("torch_compile") == "yes";
  if (!has_compile) std::printf("torch.compile: not available in this Python (not compared)\n");
  // Both Python sides of a round, eager then compiled.
  auto python_train = [&] {
    train.py.push_back(python.round("train")["train_img_per_s"]);
    if (has_compile) train_compiled.py.push_back(python.round("train_compile")["train_img_per_s"]);
  };
  bench::Series one{"batch-1 vs eager", "ms", false, "<= 0.8x"};
  bench::Series one_frozen{"batch-1 vs TorchScript", "ms", false, ""};
  bench::Series one_eager{"batch-1 eager vs eager", "ms", false, ""};
  bench::Series big{"batch-" + std::to_string(big_batch) + " vs eager", "ms", false, ""};
  bench::Series big_frozen{"batch-" + std::to_string(big_batch) + " vs TorchScript", "ms", false,
                           ""};
  auto input = [&](int64_t n) {
    return torch::randn({n, 3, size, size}, torch::TensorOptions().device(device))
        .contiguous(at::MemoryFormat::ChannelsLast);
  };
  const auto x1 = input(1), xb = input(big_batch);
  for (int r = 0; r < harness_options.rounds; ++r) {
    harness.round_started(r);
    // A: C++.
    model->train();
    double t = bench::now();
    for (int64_t i = 0; i < steps; ++i) {
      mobilenet::train_step(model, *opt, scaler, loss, x, y, options);
    }
    sync();
    train.cpp.push_back(double(batch * steps) / (bench::now() - t));
    if (has_compile) train_compiled.cpp.push_back(train.cpp.back());
    if (train_only) {
      python_train();
      continue;
    }
    // The prepared model is rebuilt every round from the weights just trained (as a program
    // would after training); its preparation is not timed.
    auto prepared = mobilenet::prepare_for_inference(
        *model, mobilenet::InferenceOptions().example_input(x1));
    auto prepared_big = mobilenet::prepare_for_inference(
        *model, mobilenet::InferenceOptions().example_input(xb));
    model->eval();
    {
      c10::InferenceMode guard;
      one_eager.cpp.push_back(bench::median_ms([&] { model->forward(x1); sync(); }, 3, runs));
    }
    const double p1 = bench::median_ms([&] { prepared.forward(x1); sync(); }, 3, runs);
    one.cpp.push_back(p1);
    one_frozen.cpp.push_back(p1);
    const double pb = bench::median_ms([&] { prepared_big.forward(xb); sync(); }, 1, big_runs);
    big.cpp.push_back(pb);
    big_frozen.cpp.push_back(pb);
    // B: Python.
    python_train();
    auto l1 = python.round("latency 1 " + std::to_string(runs));
    one.py.push_back(l1["eager_ms"]);
    one_eager.py.push_back(l1["eager_ms"]);
    one_frozen.py.push_back(l1["frozen_ms"]);
    auto lb = python.round("latency " + std::to_string(big_batch) + " " + std::to_string(big_runs));
    big.py.push_back(lb["eager_ms"]);
    big_frozen.py.push_back(lb["frozen_ms"]);
  }

  std::printf("results (medians of %d rounds; C++ latency = prepare_for_inference)\n",
              harness_options.rounds);
  std::vector<const bench::Series*> trains{&train};
  if (has_compile) trains.push_back(&train_compiled);
  for (const auto* s : trains) harness.report(*s);
  std::printf("achieved GFLOP/s in training (3 x %.3f GFLOP per image): C++ %.0f, eager %.0f",
              gflop_per_image, 3 * gflop_per_image * bench::median(train.cpp),
              3 * gflop_per_image * bench::median(train.py));
  if (has_compile) std::printf(", torch.compile %.0f", 3 * gflop_per_image * bench::median(train_compiled.py));
  std::printf("\n");
  if (!train_only) {
    for (const auto* s : {&one, &one_frozen, &one_eager, &big, &big_frozen}) harness.report(*s);
  }
  std::printf("per round\n");
  for (const auto* s : trains) harness.report_rounds(*s);
  if (!train_only) {
    for (const auto* s : {&one, &one_frozen, &big}) harness.report_rounds(*s);
  }
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded("bench_train_step", [&] { return run_benchmark(argc, argv); });
}
