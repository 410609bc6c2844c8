// Image pipeline throughput: decode + RandomResizedCrop(256) + flip + normalise on 640x480
// quality-90 JPEGs, one core and two threads, versus PIL + torchvision transforms (one
// process, then a torch DataLoader with 2 worker processes) on the same files, same run.
#include <mobilenet/data/loader.hpp>

#include <CLI/CLI.hpp>

#include "../bench_util.hpp"

#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  CLI::App app{"Image pipeline benchmark: mobilenet (C++) vs PIL + torchvision (Python)"};
  int64_t images = 200, size = 256, repeats = 3;
  std::string dir = "bench_images_data";
  app.add_option("--images", images, "number of 640x480 JPEGs")->capture_default_str();
  app.add_option("--size", size, "random-resized-crop output size")->capture_default_str();
  app.add_option("--repeats", repeats, "passes over the images per measurement")
      ->capture_default_str();
  app.add_option("--dir", dir, "where the JPEGs are written (kept between runs)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string script = std::string(MOBILENET_BENCH_DIR) + "/python_baseline.py";
  auto path = [&](int64_t i) {
    char name[32];
    std::snprintf(name, sizeof(name), "/%05lld.jpg", static_cast<long long>(i));
    return dir + name;
  };
  if (!std::filesystem::exists(path(images - 1))) {
    std::printf("writing %lld JPEGs to %s ...\n", static_cast<long long>(images), dir.c_str());
    bench::run(std::string(MOBILENET_PYTHON) + " " + script + " generate " + dir + " " +
        std::to_string(images));
  }
  std::vector<mobilenet::Sample> samples;
  for (int64_t i = 0; i < images; ++i) samples.push_back({path(i), {0.f}, i});

  auto transform = mobilenet::Transform().random_resized_crop(size).horizontal_flip().normalize();
  // One core: the transform in this thread, writing into a reused buffer.
  std::vector<float> out(size_t(size * size * 3));
  for (int64_t i = 0; i < std::min<int64_t>(images, 20); ++i)
    transform.apply_into(samples[i].path, 0, out.data());
  double t = bench::now(), c = bench::cpu_now();
  for (int64_t r = 0; r < repeats; ++r)
    for (int64_t i = 0; i < images; ++i)
      transform.apply_into(samples[i].path, mobilenet::sample_seed(0, r, i), out.data());
  const double ours_core = double(images * repeats) / (bench::cpu_now() - c);
  const double ours_core_wall = double(images * repeats) / (bench::now() - t);

  // Two worker threads through the DataLoader (batches of 32, collated, channels-last).
  mobilenet::DataLoader loader(samples, transform,
                               mobilenet::LoaderOptions(32).workers(2).pin_memory(false));
  for (auto& b : loader.epoch(0)) (void)b;
  t = bench::now();
  for (int64_t r = 0; r < repeats; ++r)
    for (auto& b : loader.epoch(r + 1)) (void)b;
  const double ours_two = double(images * repeats) / (bench::now() - t);

  const std::string py = bench::run(std::string(MOBILENET_PYTHON) + " " + script + " run " + dir +
                             " " + std::to_string(images) + " " + std::to_string(size) + " " +
                             std::to_string(repeats));
  const double py_core = bench::field(py, "per_core_img_per_s");
  const double py_core_wall = bench::field(py, "per_core_wall_img_per_s");
  const double py_two = bench::field(py, "workers2_img_per_s");
  std::printf("images: decode + RandomResizedCrop(%lld) + flip + normalize, 640x480 q90 JPEG\n",
              static_cast<long long>(size));
  std::printf("  1 core     C++ %8.1f img/s   Python %8.1f img/s   ratio %.2fx (goal >= 3x)"
              "  [per CPU second]\n", ours_core, py_core, ours_core / py_core);
  std::printf("  1 thread   C++ %8.1f img/s   Python %8.1f img/s   ratio %.2fx  [wall clock]\n",
              ours_core_wall, py_core_wall, ours_core_wall / py_core_wall);
  std::printf("  2 workers  C++ %8.1f img/s   Python %8.1f img/s   ratio %.2fx  [wall clock, "
              "2 threads vs DataLoader(num_workers=2)]\n", ours_two, py_two, ours_two / py_two);
  return 0;
}
