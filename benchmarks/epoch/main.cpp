// A whole training epoch, data loading included: mobilenet::Trainer with coco_train's default
// recipe (MobileNetV2 at output stride 32 = torchvision's, whole image resized to SIZE^2 + flip
// + normalize, BCE, AdamW, NCHW: the Trainer's default) on a COCO-format set of 640x480 q90 JPEGs, against
// torchvision's mobilenet_v2 fed by torch DataLoader(num_workers=W) with the same recipe.
// Interleaved round by round through the harness (bench_util.hpp). The epoch is timed from its
// start to the last optimizer step on both sides (loader start-up included, evaluation not).
// Then the C++ side alone tries other splits of the cores between loader threads and intra-op
// threads, which is how coco_train's defaults were chosen.
//
//   bench_epoch [--images 128] [--size 224] [--batch 32] [--threads 2] [--workers 2]
//               [--splits 1:2,2:2,2:1] [--device cpu|cuda] [--amp] [--channels-last]
//               [--rounds 3] [--allow-load] [--max-load X]
//
// On CUDA both sides copy pinned batches without blocking (the C++ loader pins by default;
// Python's DataLoader gets pin_memory=True), and the end of the epoch is taken after a device
// synchronize. --amp: fp16 autocast + GradScaler on both sides. --splits "" skips the splits.
#include <mobilenet/data.hpp>
#include <mobilenet/mobilenet.hpp>

#include <CLI/CLI.hpp>

#include "../bench_util.hpp"

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Setup {
  std::vector<mobilenet::Sample> samples;
  std::vector<std::string> names;
  int64_t size = 224, batch = 32;
  torch::Device device = torch::kCPU;
  bool amp = false, channels_last = false;
};

// One epoch through the library's Trainer; returns images per second of the training epoch.
double cpp_epoch(const Setup& s, int64_t workers, int64_t threads, int64_t round) {
  torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(static_cast<uint64_t>(round));
  const auto spec = mobilenet::ModelSpec().num_classes(int64_t(s.names.size())).output_stride(32)
                        .image_size(s.size).class_names(s.names);
  mobilenet::Classifier model = mobilenet::make_model(spec);
  auto opt = mobilenet::make_optimizer(model.module(), mobilenet::OptimizerOptions("adamw", 1e-3));
  mobilenet::DataLoader train(s.samples, mobilenet::train_transform(s.size),
                              mobilenet::LoaderOptions(s.batch).workers(workers).seed(uint64_t(round))
                                  .drop_last(true));
  // Evaluation is not part of the measurement: one tiny in-memory batch.
  auto val = mobilenet::batch_source(std::vector<mobilenet::BatchView>{
      {torch::zeros({2, 3, 32, 32}), torch::ones({2, int64_t(s.names.size())})}});
  const std::string out = (std::filesystem::temp_directory_path() / "mobilenet_bench_epoch").string();
  double start = 0, end = 0;
  int64_t images = 0, steps = 0;
  const int64_t steps_per_epoch = int64_t(s.samples.size()) / s.batch;  // drop_last
  mobilenet::Trainer trainer(
      model, spec, std::move(opt),
      [](const torch::Tensor& x, const torch::Tensor& y) { return mobilenet::bce_with_logits_loss(x, y); },
      mobilenet::TrainerOptions(out).overwrite(true).evaluate_untrained(false).progress(false)
          .log(nullptr).out(nullptr).device(s.device).amp(s.amp).channels_last(s.channels_last)
          .on_epoch_start([&](int64_t) { start = bench::now(); })
          .on_step([&](const mobilenet::StepEvent&) {
            // The GPU may still run the last step: wait for it (once, like the Python side).
            if (++steps == steps_per_epoch && s.device.is_cuda()) torch::cuda::synchronize();
            end = bench::now();
            images += s.batch;
          }));
  auto source = mobilenet::batch_source(train);
  trainer.fit(*source, *val);
  std::filesystem::remove_all(out);
  return double(images) / (end - start);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Whole-epoch benchmark: mobilenet Trainer + DataLoader vs torchvision + DataLoader"};
  int64_t images = 128, size = 224, batch = 32, threads = 2, workers = 2, classes = 10;
  std::string dir = "bench_epoch_data", splits_arg = "1:2,2:2,2:1", device_name = "cpu";
  bool amp = false, channels_last = false;
  bench::HarnessOptions harness_options;
  app.add_option("--images", images, "640x480 JPEGs in the training set")->capture_default_str();
  app.add_option("--size", size, "training resolution")->capture_default_str();
  app.add_option("--batch", batch, "batch size")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads, both sides")->capture_default_str();
  app.add_option("--workers", workers, "loader threads (C++) / DataLoader workers (Python)")
      ->capture_default_str();
  app.add_option("--splits", splits_arg, "C++ only: workers:threads pairs to try afterwards")
      ->capture_default_str();
  app.add_option("--dir", dir, "where the data set is written (kept between runs)")->capture_default_str();
  app.add_option("--device", device_name, "cpu or cuda (both sides)")->capture_default_str();
  app.add_flag("--amp", amp, "autocast (fp16 + GradScaler on CUDA, bf16 on CPU), both sides");
  app.add_flag("--channels-last", channels_last, "channels-last model and batches, both sides");
  bench::add_harness_flags(app, harness_options);
  CLI11_PARSE(app, argc, argv);

  bench::Harness harness("bench_epoch", harness_options);
  if (!harness.start({{"threads", std::to_string(threads) + " intra-op (both sides)"},
                      {"loader", std::to_string(workers) + " threads (C++) vs DataLoader(num_workers=" +
                                     std::to_string(workers) + ")"},
                      {"data", std::to_string(images) + " x 640x480 q90 JPEG, " + std::to_string(classes) +
                                   " classes, batch " + std::to_string(batch) + ", " +
                                   std::to_string(size) + "x" + std::to_string(size) +
                                   " squish + flip + normalize, " +
                                   (channels_last ? "channels-last" : "NCHW") + ", AdamW, BCE"},
                      {"device", device_name + (amp ? ", amp" : "") +
                                     (device_name == "cuda" ? ", pinned batches, non-blocking copies" : "")}})) {
    return 2;
  }
  const std::string script = std::string(MOBILENET_BENCH_DIR) + "/python_baseline.py";
  if (!std::filesystem::exists(dir + "/instances.json")) {
    std::printf("writing %lld JPEGs to %s ...\n", static_cast<long long>(images), dir.c_str());
    bench::run_python(script, {"generate", dir, std::to_string(images), std::to_string(classes)});
  }
  Setup s;
  s.size = size;
  s.batch = batch;
  s.device = torch::Device(device_name);
  s.amp = amp;
  s.channels_last = channels_last;
  const auto coco = mobilenet::load_coco(dir + "/instances.json");
  s.samples = coco.samples(dir + "/images");
  s.names = coco.class_names();

  bench::PythonChild python(script,
                            {"serve", dir, std::to_string(size), std::to_string(batch), device_name,
                             amp ? "1" : "0", channels_last ? "1" : "0"},
                            static_cast<int>(threads));
  harness.check_child(python, static_cast<int>(threads));
  // On a GPU the loader is the limit, so the goal there is the one of issue 13.
  bench::Series epoch{"training epoch", "img/s", true, s.device.is_cuda() ? ">= 2x" : ">= 1.3x"};
  for (int r = 0; r < harness_options.rounds; ++r) {
    harness.round_started(r);
    epoch.cpp.push_back(cpp_epoch(s, workers, threads, r));
    epoch.py.push_back(python.round("epoch " + std::to_string(workers))["epoch_img_per_s"]);
  }
  std::printf("results (medians of %d rounds)\n", harness_options.rounds);
  harness.report(epoch);
  harness.report_rounds(epoch);

  if (splits_arg.empty()) return 0;
  std::printf("\nC++ core split (loader threads : intra-op threads), median img/s of %d rounds%s\n",
              harness_options.rounds, harness.mark().c_str());
  std::stringstream ss(splits_arg);
  for (std::string split; std::getline(ss, split, ',');) {
    const int64_t w = std::stoll(split.substr(0, split.find(':')));
    const int64_t t = std::stoll(split.substr(split.find(':') + 1));
    std::vector<double> v;
    for (int r = 0; r < harness_options.rounds; ++r) v.push_back(cpp_epoch(s, w, t, r));
    std::printf("  %lld:%lld  %.2f img/s\n", static_cast<long long>(w), static_cast<long long>(t),
                bench::median(v));
  }
  return 0;
}
