// Image pipeline throughput on 640x480 quality-90 JPEGs versus PIL + torchvision transforms on
// the same files, interleaved round by round through the harness (bench_util.hpp):
//   rrc256     decode + RandomResizedCrop(256) + flip + normalize
//   square224  the multi-label default: the whole image resized to 224x224 + flip + normalize
//   square256  the same at 256x256
// Each on one core (per CPU second, and by wall clock) and, for rrc256, two worker threads
// (our DataLoader) against torch's DataLoader with 2 worker processes.
//
//   bench_images [--images 200] [--repeats 2] [--rounds 3] [--allow-load] [--modes rrc256,...]
#include <mobilenet/data/loader.hpp>

#include <CLI/CLI.hpp>

#include "../bench_util.hpp"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

mobilenet::Transform make_transform(const std::string& mode) {
  if (mode.rfind("rrc", 0) == 0) {
    return mobilenet::Transform().random_resized_crop(std::stoll(mode.substr(3)))
        .horizontal_flip()
        .normalize();
  }
  if (mode.rfind("square", 0) == 0) {
    const int64_t s = std::stoll(mode.substr(6));
    // The whole image to a square, as torchvision's Resize((s, s)).
    return mobilenet::Transform().resize(s, s).horizontal_flip().normalize();
  }
  throw std::runtime_error("unknown mode '" + mode + "' (rrcS or squareS)");
}

}  // namespace

int run_benchmark(int argc, char** argv) {
  CLI::App app{"Image pipeline benchmark: mobilenet (C++) vs PIL + torchvision (Python)"};
  int64_t images = 200, repeats = 2;
  std::string dir = "bench_images_data", modes_arg = "rrc256,square224,square256";
  bench::HarnessOptions harness_options;
  app.add_option("--images", images, "number of 640x480 JPEGs")->capture_default_str();
  app.add_option("--repeats", repeats, "passes over the images per measurement")
      ->capture_default_str();
  app.add_option("--dir", dir, "where the JPEGs are written (kept between runs)")
      ->capture_default_str();
  app.add_option("--modes", modes_arg, "comma-separated: rrcS, squareS")->capture_default_str();
  bench::add_harness_flags(app, harness_options);
  CLI11_PARSE(app, argc, argv);
  std::vector<std::string> modes;
  {
    std::stringstream ss(modes_arg);
    for (std::string m; std::getline(ss, m, ',');) modes.push_back(m);
  }

  bench::Harness harness("bench_images", harness_options);
  if (!harness.start({{"threads", "1 (per-core rows: C++ in this thread, Python torch threads 1)"
                                  "; 2 (workers rows: 2 loader threads vs 2 worker processes)"},
                      {"images", std::to_string(images) + " x 640x480 q90 JPEG, " +
                                     std::to_string(repeats) + " passes per measurement"},
                      {"modes", modes_arg}})) {
    return 2;
  }

  const std::string script = std::string(MOBILENET_BENCH_DIR) + "/python_baseline.py";
  auto path = [&](int64_t i) {
    char name[32];
    std::snprintf(name, sizeof(name), "/%05lld.jpg", static_cast<long long>(i));
    return dir + name;
  };
  if (!std::filesystem::exists(path(images - 1))) {
    std::printf("writing %lld JPEGs to %s ...\n", static_cast<long long>(images), dir.c_str());
    bench::run_python(script + " generate " + dir + " " + std::to_string(images));
  }
  std::vector<mobilenet::Sample> samples;
  for (int64_t i = 0; i < images; ++i) samples.push_back({path(i), {0.f}, i});

  bench::PythonChild python(script, {"serve", dir, std::to_string(images), std::to_string(repeats)}, 1);
  harness.check_child(python, 1);
  std::printf("\n");

  struct ModeSeries {
    bench::Series core, wall, workers;
  };
  std::vector<ModeSeries> series;
  for (const auto& m : modes) {
    series.push_back({bench::Series(m + " 1 core", "img/s", true, ">= 3x"),
                      bench::Series(m + " 1 thread, wall", "img/s", true),
                      bench::Series(m + " 2 workers", "img/s", true)});
  }
  std::vector<std::unique_ptr<mobilenet::DataLoader>> loaders(modes.size());
  for (int r = 0; r < harness_options.rounds; ++r) {
    harness.round_started(r);
    for (size_t k = 0; k < modes.size(); ++k) {
      auto transform = make_transform(modes[k]);
      auto& s = series[k];
      // A: C++ on one core, the transform in this thread writing into a reused buffer.
      const auto size = transform.fixed_output_size().value();
      std::vector<float> out(size_t(size.height * size.width * 3));
      for (int64_t i = 0; i < std::min<int64_t>(images, 20); ++i)
        transform.apply_into(samples[i].path, 0, out.data());
      double t = bench::now(), c = bench::cpu_now();
      for (int64_t p = 0; p < repeats; ++p)
        for (int64_t i = 0; i < images; ++i)
          transform.apply_into(samples[i].path, mobilenet::sample_seed(r, p, i), out.data());
      s.core.cpp.push_back(double(images * repeats) / (bench::cpu_now() - c));
      s.wall.cpp.push_back(double(images * repeats) / (bench::now() - t));
      // B: Python on one core.
      auto py = python.round("core " + modes[k]);
      s.core.py.push_back(py["per_core_img_per_s"]);
      s.wall.py.push_back(py["per_core_wall_img_per_s"]);
      if (k != 0) continue;  // two workers: the first mode only, to keep the run short
      // A: two worker threads through the DataLoader (batches of 32, collated, channels-last).
      if (!loaders[k]) {
        loaders[k] = std::make_unique<mobilenet::DataLoader>(
            samples, transform, mobilenet::LoaderOptions(32).workers(2).pin_memory(false));
        for (auto& b : loaders[k]->epoch(0)) (void)b;
      }
      t = bench::now();
      for (int64_t p = 0; p < repeats; ++p)
        for (auto& b : loaders[k]->epoch(1 + r * repeats + p)) (void)b;
      s.workers.cpp.push_back(double(images * repeats) / (bench::now() - t));
      // B: torch DataLoader, 2 worker processes.
      s.workers.py.push_back(python.round("workers " + modes[k])["workers2_img_per_s"]);
    }
  }

  std::printf("results (medians of %d rounds; '1 core' = images per CPU second)\n",
              harness_options.rounds);
  for (const auto& s : series) {
    harness.report(s.core);
    harness.report(s.wall);
    if (!s.workers.cpp.empty()) harness.report(s.workers);
  }
  std::printf("per round\n");
  for (const auto& s : series) harness.report_rounds(s.core);
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded("bench_images", [&] { return run_benchmark(argc, argv); });
}
