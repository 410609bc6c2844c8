// Image pipeline throughput on 640x480 quality-90 JPEGs against Python's strongest image
// paths on the same files, interleaved round by round through the harness (bench_util.hpp):
//   rrc256     decode + RandomResizedCrop(256) + flip + normalize
//   square224  the multi-label default: the whole image resized to 224x224 + flip + normalize
//   square256  the same at 256x256
// Python sides (python_baseline.py): Pillow + torchvision transforms and torchvision.io
// (the stack's Python); pillow-simd + draft mode and simplejpeg (the venv that
// install_sides.sh makes; skipped with a message when it is absent). All on one core (per
// CPU second, and by wall clock); for rrc256 also two worker threads (our DataLoader)
// against torch's DataLoader with 2 worker processes (Pillow).
// The decode floor: libjpeg-turbo decoding exactly what the C++ pipeline decodes (DCT scale
// and rows/columns), nothing else. Agreement: for the square modes, each side's uint8 resize
// (no flip) against the C++ one, max and mean absolute difference.
//
//   bench_images [--images 200] [--repeats 2] [--rounds 3] [--allow-load] [--modes rrc256,...]
//                [--simd-python PATH]
#include <mobilenet/data/loader.hpp>

#include <CLI/CLI.hpp>

#include "../bench_util.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <jpeglib.h>  // after <cstdio>: it uses FILE

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

// The geometry alone of a square mode (no flip, no normalisation), for the agreement and
// stage rows; nullopt for the other modes.
std::optional<mobilenet::Transform> square_geometry(const std::string& mode) {
  if (mode.rfind("square", 0) != 0) return std::nullopt;
  const int64_t s = std::stoll(mode.substr(6));
  return mobilenet::Transform().resize(s, s);
}

// What `geometry` decodes for one image (seed 0: a square geometry draws nothing), with the
// plan that resamples it. The pixels live in decode_only's per-thread buffer.
struct PlannedDecode {
  mobilenet::DecodedImage image;
  mobilenet::GeometryPlan plan;
};
PlannedDecode decode_planned(const mobilenet::Transform& geometry, const std::vector<uint8_t>& b,
                             const std::string& path) {
  PlannedDecode d{geometry.decode_only(b.data(), b.size(), path, 0), {}};
  mobilenet::SampleRng rng(0);
  d.plan = geometry.plan(d.image.original, rng);
  return d;
}

// A Python side: its command name in python_baseline.py, its label, and which child runs it.
struct Side {
  std::string name, label;
  bool simd;  // the pillow-simd venv's interpreter, else the stack's
};
const std::vector<Side> kSides{{"pil", "Pillow + torchvision", false},
                               {"tvio", "torchvision.io", false},
                               {"pil_draft", "pillow-simd + draft", true},
                               {"simplejpeg", "simplejpeg + pillow-simd", true}};

}  // namespace

int run_benchmark(int argc, char** argv) {
  CLI::App app{"Image pipeline benchmark: mobilenet (C++) vs Pillow, pillow-simd, simplejpeg, torchvision.io"};
  int64_t images = 200, repeats = 2, agree_images = 50;
  std::string dir = "bench_images_data", modes_arg = "rrc256,square224,square256";
  std::string simd_python = MOBILENET_BENCH_IMAGES_PYTHON;
  bench::HarnessOptions harness_options;
  app.add_option("--images", images, "number of 640x480 JPEGs")->capture_default_str();
  app.add_option("--repeats", repeats, "passes over the images per measurement")
      ->capture_default_str();
  app.add_option("--dir", dir, "where the JPEGs are written (kept between runs)")
      ->capture_default_str();
  app.add_option("--modes", modes_arg, "comma-separated: rrcS, squareS")->capture_default_str();
  app.add_option("--simd-python", simd_python,
                 "interpreter with pillow-simd and simplejpeg (benchmarks/images/install_sides.sh)")
      ->capture_default_str();
  app.add_option("--agree-images", agree_images, "images compared byte by byte per square mode")
      ->capture_default_str();
  bench::add_harness_flags(app, harness_options);
  CLI11_PARSE(app, argc, argv);
  std::vector<std::string> modes;
  {
    std::stringstream ss(modes_arg);
    for (std::string m; std::getline(ss, m, ',');) modes.push_back(m);
  }
  agree_images = std::min(agree_images, images);

  bench::Harness harness("bench_images", harness_options);
  if (!harness.start({{"threads", "1 (per-core rows: C++ in this thread, Python torch threads 1)"
                                  "; 2 (workers rows: 2 loader threads vs 2 worker processes)"},
                      {"images", std::to_string(images) + " x 640x480 q90 JPEG, " +
                                     std::to_string(repeats) + " passes per measurement"},
                      {"modes", modes_arg},
                      {"output", "float32 normalized, C++ HWC (channels-last), Python CHW"}})) {
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
    bench::run_python(script, {"generate", dir, std::to_string(images)});
  }
  std::vector<mobilenet::Sample> samples;
  std::vector<std::vector<uint8_t>> bytes;
  for (int64_t i = 0; i < images; ++i) {
    samples.push_back({path(i), {0.f}, i});
    bytes.push_back(mobilenet::read_file(path(i)));
  }

  const std::vector<std::string> args{"serve", dir, std::to_string(images), std::to_string(repeats)};
  bench::PythonChild python(script, args, 1);
  harness.check_child(python, 1);
  std::unique_ptr<bench::PythonChild> simd;
  if (std::filesystem::exists(simd_python)) {
    simd = std::make_unique<bench::PythonChild>(script, args, 1, simd_python);
    harness.check_child(*simd, 1);
  } else {
    std::printf("pillow-simd and simplejpeg sides: %s is absent (benchmarks/images/install_sides.sh "
                "installs them); not compared\n", simd_python.c_str());
  }
  auto child = [&](const Side& side) { return side.simd ? simd.get() : &python; };
  const auto& info = python.info();
  std::printf("libraries     Pillow %s (libjpeg-turbo %s)", info.at("pil").c_str(),
              info.at("pil_libjpeg_turbo").c_str());
  if (simd) {
    std::printf(", pillow-simd %s (libjpeg-turbo %s), simplejpeg %s", simd->info().at("pil").c_str(),
                simd->info().at("pil_libjpeg_turbo").c_str(), simd->info().at("simplejpeg").c_str());
  }
  std::printf("; C++ libjpeg-turbo %d\n\n", LIBJPEG_TURBO_VERSION_NUMBER);

  // Agreement first: deterministic geometry (square modes), flip off.
  std::printf("agreement with the C++ uint8 resize (first %lld images, no flip; max / mean |diff|)\n",
              static_cast<long long>(agree_images));
  const auto agree_file = (std::filesystem::path(dir) / "cpp_resize.u8").string();
  for (const auto& m : modes) {
    const auto geometry = square_geometry(m);
    if (!geometry) continue;
    {
      std::ofstream f(agree_file, std::ios::binary);
      for (int64_t i = 0; i < agree_images; ++i) {
        const auto d = decode_planned(*geometry, bytes[size_t(i)], path(i));
        const torch::Tensor out = mobilenet::Transform::resample(d.image, d.plan);
        f.write(reinterpret_cast<const char*>(out.data_ptr<uint8_t>()), out.numel());
      }
      if (!f) throw std::runtime_error("could not write " + agree_file);
    }
    for (const auto& side : kSides) {
      if (!child(side)) continue;
      auto a = child(side)->round("agree " + side.name + " " + m + " " + agree_file + " " +
                                  std::to_string(agree_images));
      std::printf("  %-10s %-26s max %3.0f  mean %.3f\n", m.c_str(), side.label.c_str(),
                  a.at("max_abs"), a.at("mean_abs"));
    }
  }
  std::printf("\n");

  struct ModeSeries {
    std::vector<bench::Series> sides;
    bench::Series best, floor, wall, workers;
  };
  std::vector<ModeSeries> series;
  for (const auto& m : modes) {
    ModeSeries s{{},
                 bench::Series(m + " 1 core vs best Python", "img/s", true, ">= 1.5x"),
                 bench::Series(m + " 1 core vs decode floor", "img/s", true, ">= 0.85x"),
                 bench::Series(m + " 1 thread, wall, vs Pillow", "img/s", true),
                 bench::Series(m + " 2 workers vs Pillow", "img/s", true)};
    s.floor.other = "floor";
    for (const auto& side : kSides) s.sides.emplace_back(m + " 1 core vs " + side.label, "img/s", true);
    series.push_back(std::move(s));
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
      const double cpp = double(images * repeats) / (bench::cpu_now() - c);
      s.wall.cpp.push_back(double(images * repeats) / (bench::now() - t));
      // The floor: the same decodes (same seeds, from the same bytes in memory), nothing else.
      c = bench::cpu_now();
      for (int64_t p = 0; p < repeats; ++p)
        for (int64_t i = 0; i < images; ++i) {
          const auto& b = bytes[size_t(i)];
          transform.decode_only(b.data(), b.size(), samples[i].path, mobilenet::sample_seed(r, p, i));
        }
      s.floor.cpp.push_back(cpp);
      s.floor.py.push_back(double(images * repeats) / (bench::cpu_now() - c));
      // B: every Python side on one core.
      double best = 0;
      for (size_t j = 0; j < kSides.size(); ++j) {
        if (!child(kSides[j])) continue;
        auto py = child(kSides[j])->round("core " + kSides[j].name + " " + modes[k]);
        if (py.at("per_core_img_per_s") < 0) continue;
        s.sides[j].cpp.push_back(cpp);
        s.sides[j].py.push_back(py.at("per_core_img_per_s"));
        best = std::max(best, py.at("per_core_img_per_s"));
        if (kSides[j].name == "pil") s.wall.py.push_back(py.at("per_core_wall_img_per_s"));
      }
      s.best.cpp.push_back(cpp);
      s.best.py.push_back(best);
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
    for (const auto& side : s.sides)
      if (!side.py.empty()) harness.report(side);
    harness.report(s.best);
    harness.report(s.floor);
    harness.report(s.wall);
    if (!s.workers.cpp.empty()) harness.report(s.workers);
  }
  // Where the C++ time goes beyond the decode (square modes): the uint8 resample alone, and
  // PIL's resize alone on the same decode, each the median over the images.
  std::printf("stages (square modes, ms per image, CPU time, medians over the %lld images)\n",
              static_cast<long long>(images));
  for (const auto& m : modes) {
    const auto geometry = square_geometry(m);
    if (!geometry) continue;
    std::vector<double> decode_ms, resample_ms;
    for (int64_t i = 0; i < images; ++i) {
      const auto& b = bytes[size_t(i)];
      constexpr int kReps = 5;
      double c = bench::cpu_now();
      for (int k = 0; k < kReps; ++k) geometry->decode_only(b.data(), b.size(), path(i), 0);
      decode_ms.push_back((bench::cpu_now() - c) / kReps * 1e3);
      // No torch op here that runs on the intra-op pool: its threads spin after each parallel
      // region, and this process's CPU time would count the spinning.
      const auto d = decode_planned(*geometry, b, path(i));
      c = bench::cpu_now();
      for (int k = 0; k < kReps; ++k) mobilenet::Transform::resample(d.image, d.plan);
      resample_ms.push_back((bench::cpu_now() - c) / kReps * 1e3);
    }
    std::printf("  %-10s C++ decode %.3f, C++ resample %.3f", m.c_str(), bench::median(decode_ms),
                bench::median(resample_ms));
    for (auto* c : {simd.get(), &python}) {
      if (!c) continue;
      std::printf(", %s resize %.3f", c == &python ? "Pillow" : "pillow-simd",
                  c->round("resize " + m).at("resize_ms"));
    }
    std::printf("\n");
  }
  std::printf("per round\n");
  for (const auto& s : series) {
    harness.report_rounds(s.best);
    harness.report_rounds(s.floor);
  }
  return 0;
}

int main(int argc, char** argv) {
  return bench::guarded("bench_images", [&] { return run_benchmark(argc, argv); });
}
