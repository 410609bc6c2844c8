// Training throughput (forward + backward + AdamW step) and batch-1 latency of our seed
// architecture at output stride 32 versus torchvision's mobilenet_v2 on the same machine,
// in the same run. Both channels-last, same thread count, same batch and resolution.
#include <mobilenet/mobilenet.hpp>

#include <CLI/CLI.hpp>

#include "../bench_util.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

int main(int argc, char** argv) {
  CLI::App app{"Train-step benchmark: mobilenet (C++) vs torchvision (Python)"};
  int64_t batch = 32, size = 224, threads = 2, steps = 10, runs = 30;
  bool amp = false;
  std::string device_name = "cpu";
  app.add_option("--batch", batch, "training batch")->capture_default_str();
  app.add_option("--size", size, "image size")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads")->capture_default_str();
  app.add_option("--steps", steps, "timed training steps")->capture_default_str();
  app.add_option("--runs", runs, "timed batch-1 forwards")->capture_default_str();
  app.add_flag("--amp", amp, "autocast (fp16 + GradScaler on CUDA, bf16 on CPU)");
  app.add_option("--device", device_name, "cpu or cuda")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);
  const torch::Device device(device_name);
  mobilenet::MobileNetV2 model(mobilenet::MobileNetV2Options().num_classes(80).output_stride(32));
  model->to(device);
  mobilenet::to_channels_last(*model);
  auto opt = mobilenet::make_optimizer(*model, mobilenet::OptimizerOptions("adamw", 1e-3).decay_all(true));
  mobilenet::GradScaler scaler(mobilenet::GradScalerOptions().enabled(amp && device.is_cuda()));
  auto x = torch::randn({batch, 3, size, size}, torch::TensorOptions().device(device))
               .contiguous(at::MemoryFormat::ChannelsLast);
  auto y = (torch::rand({batch, 80}, torch::TensorOptions().device(device)) > 0.9).to(torch::kFloat);
  auto loss = [](const torch::Tensor& l, const torch::Tensor& t) {
    return torch::binary_cross_entropy_with_logits(l, t);
  };
  const auto options = mobilenet::TrainStepOptions(device).amp(amp);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  model->train();
  for (int i = 0; i < 2; ++i) mobilenet::train_step(model, *opt, scaler, loss, x, y, options);
  sync();
  double t = bench::now();
  for (int64_t i = 0; i < steps; ++i) mobilenet::train_step(model, *opt, scaler, loss, x, y, options);
  sync();
  const double ours_train = double(batch * steps) / (bench::now() - t);

  model->eval();
  std::vector<double> times;
  {
    torch::NoGradGuard g;
    auto one = x.narrow(0, 0, 1).clone();
    for (int i = 0; i < 3; ++i) model(one);
    for (int64_t i = 0; i < runs; ++i) {
      t = bench::now();
      model(one);
      sync();
      times.push_back(bench::now() - t);
    }
  }
  std::sort(times.begin(), times.end());
  const double ours_latency = 1000 * times[times.size() / 2];

  const std::string py = bench::run(std::string(MOBILENET_PYTHON) + " " + MOBILENET_BENCH_DIR +
                             "/python_baseline.py " + std::to_string(batch) + " " +
                             std::to_string(size) + " " + std::to_string(threads) + " " +
                             std::to_string(steps) + " " + std::to_string(runs) + " " +
                             (amp ? "1 " : "0 ") + device_name);
  const double py_train = bench::field(py, "train_img_per_s");
  const double py_latency = bench::field(py, "latency_ms");
  std::printf("train_step: batch %lld, %lldx%lld, %lld threads, %s%s, channels-last\n",
              (long long)batch, (long long)size, (long long)size, (long long)threads,
              device_name.c_str(), amp ? ", amp" : "");
  std::printf("  training   C++ %8.2f img/s   Python %8.2f img/s   ratio %.2fx (goal >= 1.1x)\n",
              ours_train, py_train, ours_train / py_train);
  std::printf("  batch-1    C++ %8.2f ms      Python %8.2f ms      ratio %.2fx (goal <= 0.8x)\n",
              ours_latency, py_latency, ours_latency / py_latency);
  return 0;
}
