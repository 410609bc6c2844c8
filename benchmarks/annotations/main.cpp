// Annotation loading: a synthetic file shaped like COCO's instances_train2017.json (118,287
// images, ~860,000 annotations with polygon segmentations, ~450 MB) loaded to multi-hot
// targets by mobilenet::load_coco versus Python's json.load + the same mapping, same run.
// Each side runs in its own process so peak RSS is that of the load alone.
//
//   bench_annotations [--file /tmp/synthetic_instances_train2017.json] [--rounds 3] [--allow-load]
//
// The file is generated on first use (deterministic) and kept; it is never committed.
#include <mobilenet/data/coco.hpp>

#include <CLI/CLI.hpp>

#include "../bench_util.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <fstream>
#include <vector>

namespace {

// train2017's shape.
constexpr int64_t kImages = 118287;
constexpr int64_t kAnnotations = 860001;
// COCO's category ids: 1..90 without these.
constexpr int kMissingIds[] = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83};

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// Appends v/100 with two decimals: printf is the generator's bottleneck otherwise.
void append_fixed2(std::string& out, int64_t hundredths) {
  out += std::to_string(hundredths / 100);
  out += '.';
  out += char('0' + (hundredths / 10) % 10);
  out += char('0' + hundredths % 10);
}

void generate(const std::string& path) {
  std::mt19937_64 rng(2017);
  auto uniform = [&](int64_t lo, int64_t hi) {  // inclusive
    return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
  };
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), std::fclose);
  TORCH_CHECK(f, "cannot write ", path);
  std::string buf;
  auto flush = [&](bool force) {
    if (force || buf.size() > (1 << 22)) {
      std::fwrite(buf.data(), 1, buf.size(), f.get());
      buf.clear();
    }
  };
  buf += "{\"info\":{\"description\":\"synthetic COCO train2017-shaped annotations\","
         "\"url\":\"http://cocodataset.org\",\"version\":\"1.0\",\"year\":2017,"
         "\"contributor\":\"mobilenet bench_annotations\",\"date_created\":\"2017/09/01\"},"
         "\"licenses\":[{\"url\":\"http://creativecommons.org/licenses/by/2.0/\",\"id\":1,"
         "\"name\":\"Attribution License\"}],\"images\":[";
  std::vector<int64_t> image_ids(kImages), widths(kImages), heights(kImages);
  for (int64_t i = 0; i < kImages; ++i) {
    image_ids[i] = 9 + i * 4 + uniform(0, 3);  // increasing, gaps like COCO's
    widths[i] = uniform(320, 640);
    heights[i] = uniform(240, 640);
    char line[512];
    std::snprintf(line, sizeof line,
                  "%s{\"license\":%d,\"file_name\":\"%012lld.jpg\",\"coco_url\":"
                  "\"http://images.cocodataset.org/train2017/%012lld.jpg\",\"height\":%lld,"
                  "\"width\":%lld,\"date_captured\":\"2013-11-14 11:18:45\",\"flickr_url\":"
                  "\"http://farm9.staticflickr.com/8186/8119368305_4e622c8349_z.jpg\","
                  "\"id\":%lld}",
                  i ? "," : "", int(uniform(1, 8)), (long long)image_ids[i],
                  (long long)image_ids[i], (long long)heights[i], (long long)widths[i],
                  (long long)image_ids[i]);
    buf += line;
    flush(false);
  }
  std::vector<int> category_ids;
  for (int id = 1; id <= 90; ++id)
    if (std::find(std::begin(kMissingIds), std::end(kMissingIds), id) == std::end(kMissingIds))
      category_ids.push_back(id);
  buf += "],\"annotations\":[";
  for (int64_t a = 0; a < kAnnotations; ++a) {
    // ~7.3 annotations per image on average, images drawn uniformly (some get none).
    const int64_t i = uniform(0, kImages - 1);
    const bool crowd = uniform(0, 99) == 0;  // ~1% as in train2017
    const int64_t w = widths[i] * 100, h = heights[i] * 100;
    buf += a ? ",{\"segmentation\":" : "{\"segmentation\":";
    if (crowd) {
      buf += "{\"counts\":[";
      const int64_t runs = uniform(20, 120);
      for (int64_t r = 0; r < runs; ++r) {
        if (r) buf += ',';
        buf += std::to_string(uniform(1, 400));
      }
      buf += "],\"size\":[" + std::to_string(heights[i]) + "," + std::to_string(widths[i]) + "]}";
    } else {
      buf += '[';
      const int64_t parts = uniform(0, 9) == 0 ? 2 : 1;
      for (int64_t p = 0; p < parts; ++p) {
        buf += p ? ",[" : "[";
        const int64_t points = uniform(8, 44) / parts;
        for (int64_t k = 0; k < points; ++k) {
          if (k) buf += ',';
          append_fixed2(buf, uniform(0, w));
          buf += ',';
          append_fixed2(buf, uniform(0, h));
        }
        buf += ']';
      }
      buf += ']';
    }
    buf += ",\"area\":";
    append_fixed2(buf, uniform(100, 50000000));
    buf += ",\"iscrowd\":";
    buf += crowd ? '1' : '0';
    buf += ",\"image_id\":" + std::to_string(image_ids[i]) + ",\"bbox\":[";
    for (int k = 0; k < 4; ++k) {
      if (k) buf += ',';
      append_fixed2(buf, uniform(0, 64000));
    }
    buf += "],\"category_id\":" + std::to_string(category_ids[uniform(0, 79)]) +
           ",\"id\":" + std::to_string(1000 + a * 2 + uniform(0, 1)) + "}";
    flush(false);
  }
  buf += "],\"categories\":[";
  for (size_t k = 0; k < category_ids.size(); ++k) {
    buf += (k ? ",{" : "{") + std::string("\"supercategory\":\"thing\",\"id\":") +
           std::to_string(category_ids[k]) + ",\"name\":\"category " +
           std::to_string(category_ids[k]) + "\"}";
  }
  buf += "]}";
  flush(true);
}

// Child process: load to multi-hot, print time and peak RSS.
int load_only(const std::string& path) {
  const double t = bench::now(), cpu = cpu_seconds();
  const auto ds = mobilenet::load_coco(path);
  const torch::Tensor targets = ds.targets();
  const double seconds = bench::now() - t, cpu_used = cpu_seconds() - cpu;
  std::printf("seconds %.4f\ncpu_seconds %.4f\npeak_rss_mb %.1f\nchecksum %.0f\n", seconds,
              cpu_used, peak_rss_mb(), targets.sum().item<double>());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Annotation loading benchmark: mobilenet::load_coco vs Python json.load"};
  std::string file = (std::filesystem::temp_directory_path() /
                      "mobilenet_synthetic_instances_train2017.json").string();
  std::string load;
  bench::HarnessOptions harness_options;
  app.add_option("--file", file, "synthetic annotation file (generated if missing)")
      ->capture_default_str();
  app.add_option("--load", load, "internal: load this file once and print the measurement");
  bench::add_harness_flags(app, harness_options);
  CLI11_PARSE(app, argc, argv);
  if (!load.empty()) return load_only(load);

  bench::Harness harness("bench_annotations", harness_options);
  if (!harness.start({{"threads", "1 (both sides: one process per load, so peak RSS is that of "
                                  "the load alone)"},
                      {"file", file}})) {
    return 2;
  }
  try {
    if (!std::filesystem::exists(file)) {
      std::printf("generating %s ...\n", file.c_str());
      std::fflush(stdout);
      const double t = bench::now();
      generate(file);
      std::printf("  %.1f s\n", bench::now() - t);
    }
    std::printf("file size     %.1f MB\n", double(std::filesystem::file_size(file)) / 1e6);

    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    const std::string script = std::string(MOBILENET_BENCH_DIR) + "/python_baseline.py";
    // Warm the page cache so both sides read from memory.
    {
      std::ifstream in(file, std::ios::binary);
      std::vector<char> buf(size_t(1) << 20);
      while (in.read(buf.data(), std::streamsize(buf.size())) || in.gcount() > 0) {
      }
    }
    bench::Series wall("load to multi-hot, wall", "s", false, "Python/C++ >= 8x, <= 2 s");
    bench::Series cpu("load to multi-hot, CPU", "s", false);
    bench::Series rss("peak RSS", "MB", false, "<= 1536 MB");
    double checksum_cpp = 0, checksum_py = 0;
    for (int r = 0; r < harness_options.rounds; ++r) {
      harness.round_started(r);
      // A: C++ in a fresh process.
      const std::string ours = bench::run({self, "--load", file});
      wall.cpp.push_back(bench::field(ours, "seconds"));
      cpu.cpp.push_back(bench::field(ours, "cpu_seconds"));
      rss.cpp.push_back(bench::field(ours, "peak_rss_mb"));
      checksum_cpp = bench::field(ours, "checksum");
      // B: Python in a fresh process.
      bench::PythonChild python(script, {}, 1);
      if (r == 0) harness.check_child(python, 1);
      auto py = python.round("load " + file);
      wall.py.push_back(py["seconds"]);
      cpu.py.push_back(py["cpu_seconds"]);
      rss.py.push_back(py["peak_rss_mb"]);
      checksum_py = py["checksum"];
    }
    TORCH_CHECK(checksum_cpp == checksum_py, "targets differ: C++ sum ", checksum_cpp,
                ", Python sum ", checksum_py);
    std::printf("\nresults (medians of %d rounds; the targets agree: sum %.0f)\n",
                harness_options.rounds, checksum_cpp);
    harness.report(wall);
    harness.report(cpu);
    harness.report(rss);
    const double w = bench::median(wall.cpp);
    std::printf("goals (<= 2 s, <= 1536 MB, >= 8x the speed of Python): %s%s\n",
                w <= 2.0 && bench::median(rss.cpp) <= 1536 && wall.ratio() <= 1.0 / 8 ? "met"
                                                                                     : "NOT met",
                harness.mark().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_annotations: %s\n", e.what());
    return 1;
  }
  return 0;
}
