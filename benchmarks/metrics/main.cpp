// mAP and micro/macro F1 on 5,000 x 80 and 118,287 x 80 score matrices (COCO val / train
// sizes), ours (metrics.hpp, one thread) against scikit-learn, interleaved round by round
// through the harness (bench_util.hpp).
//
// Usage: bench_metrics [--quick] [--rounds 3] [--allow-load]   (--quick: only 5,000 x 80)
#include <mobilenet/metrics/metrics.hpp>

#include <Eigen/Core>

#include "../bench_util.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kClasses = 80;  // COCO
constexpr uint32_t kSeed = 2024;

/// COCO-like outputs: rare positives (0.5%-10% per class) and sigmoid scores of a mediocre
/// model, continuous (few ties), as float32.
std::pair<RowMatrix, RowMatrix> make_data(int64_t n) {
  std::mt19937 rng(kSeed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> noise(0, 1.5);
  std::vector<double> rate(kClasses);
  for (auto& r : rate) r = 0.005 + 0.095 * u(rng) * u(rng);
  RowMatrix scores(n, kClasses), targets(n, kClasses);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < kClasses; ++c) {
      const bool y = u(rng) < rate[static_cast<size_t>(c)];
      targets(i, c) = y ? 1.f : 0.f;
      scores(i, c) = static_cast<float>(1 / (1 + std::exp(-(noise(rng) + (y ? 1.0 : -3.0)))));
    }
  }
  return {std::move(scores), std::move(targets)};
}

template <class Fn>
double best_ms(int repeats, Fn&& fn) {
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}

struct Ours {
  double add_ms, map_ms, f1_ms, tune_ms, map, micro_f1, macro_f1;
};

Ours run_ours(const RowMatrix& scores, const RowMatrix& targets) {
  const int repeats = scores.rows() <= 10000 ? 20 : 3;
  Ours o{};
  mobilenet::MetricsAccumulator acc(kClasses);
  o.add_ms = best_ms(repeats, [&] {
    acc.reset();
    acc.add(scores.data(), targets.data(), scores.rows());
  });
  o.map_ms = best_ms(repeats, [&] { o.map = acc.average_precision().mean; });
  o.f1_ms = best_ms(repeats, [&] {
    const auto m = acc.at_threshold(0.5f);
    o.micro_f1 = m.micro_f1;
    o.macro_f1 = m.macro_f1;
  });
  o.tune_ms = best_ms(repeats, [&] { (void)acc.tune_thresholds(); });
  return o;
}

}  // namespace

int run_benchmark(int argc, char** argv) {
  bench::HarnessOptions harness_options;
  const auto rest = bench::parse_harness_flags(argc, argv, harness_options);
  bool quick = false;
  for (const std::string& a : rest) {
    if (a == "--help" || a == "-h") {
      std::cout << "bench_metrics [--quick] [--rounds N] [--allow-load] [--max-load X]\n"
                   "  mAP and F1 on 5,000 and 118,287 x 80 (--quick: 5,000 only) vs scikit-learn\n";
      return 0;
    }
    if (a != "--quick") throw std::invalid_argument("bench_metrics: unknown flag " + a + " (see --help)");
    quick = true;
  }
  std::vector<int64_t> sizes = {5000};
  if (!quick) sizes.push_back(118287);

  bench::Harness harness("bench_metrics", harness_options);
  if (!harness.start({{"threads", "1 (both sides)"},
                      {"sizes", quick ? "5,000 x 80" : "5,000 x 80 and 118,287 x 80"},
                      {"timing", "best of repeats within a round (20 or 3 C++, 3 or 1 "
                                 "scikit-learn), medians over rounds"}})) {
    return 2;
  }

  const auto dir = std::filesystem::temp_directory_path() /
                   ("mobilenet_bench_metrics_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::map<int64_t, std::pair<RowMatrix, RowMatrix>> data;
  for (int64_t n : sizes) {
    data[n] = make_data(n);
    const auto& [scores, targets] = data[n];
    const std::string tag = std::to_string(n) + "_" + std::to_string(kClasses);
    std::ofstream(dir / ("scores_" + tag + ".f32"), std::ios::binary)
        .write(reinterpret_cast<const char*>(scores.data()),
               static_cast<std::streamsize>(scores.size() * sizeof(float)));
    std::vector<uint8_t> y(static_cast<size_t>(targets.size()));
    for (size_t i = 0; i < y.size(); ++i) y[i] = targets.data()[i] >= 0.5f;
    std::ofstream(dir / ("targets_" + tag + ".u8"), std::ios::binary)
        .write(reinterpret_cast<const char*>(y.data()), static_cast<std::streamsize>(y.size()));
  }

  int status = 0;
  {
    bench::PythonChild python(MOBILENET_BENCH_SCRIPT, {dir.string()}, 1);
    harness.check_child(python, 1);
    std::printf("\n");
    struct PerSize {
      bench::Series map, f1;
      std::vector<double> add, tune;
      double diff = 0;
    };
    std::map<int64_t, PerSize> per;
    for (int64_t n : sizes) {
      const std::string label = std::to_string(n) + " x " + std::to_string(kClasses);
      per.emplace(n, PerSize{bench::Series("mAP " + label, "ms", false),
                             bench::Series("F1 " + label, "ms", false), {}, {}, 0});
    }
    for (int r = 0; r < harness_options.rounds; ++r) {
      harness.round_started(r);
      for (int64_t n : sizes) {
        auto& p = per.at(n);
        const Ours o = run_ours(data[n].first, data[n].second);  // A: C++
        auto s = python.round("run " + std::to_string(n) + " " + std::to_string(kClasses));  // B
        p.map.cpp.push_back(o.map_ms);
        p.map.py.push_back(s["map_ms"]);
        p.f1.cpp.push_back(o.f1_ms);
        p.f1.py.push_back(s["f1_ms"]);
        p.add.push_back(o.add_ms);
        p.tune.push_back(o.tune_ms);
        // The speed must not come from different numbers.
        p.diff = std::max({p.diff, std::abs(o.map - s["map"]), std::abs(o.micro_f1 - s["micro_f1"]),
                           std::abs(o.macro_f1 - s["macro_f1"])});
      }
    }
    std::printf("results (medians over %d rounds; C++/Python < 1 means C++ is faster)\n",
                harness_options.rounds);
    for (int64_t n : sizes) {
      const auto& p = per.at(n);
      harness.report(p.map);
      harness.report(p.f1);
      std::printf("  %-34s add %.3f ms, tune thresholds %.3f ms (C++ only), max |metric diff| "
                  "vs scikit-learn %.1e%s\n",
                  "", bench::median(p.add), bench::median(p.tune), p.diff, harness.mark().c_str());
      if (p.diff > 1e-9) status = 1;
    }
  }
  std::filesystem::remove_all(dir);
  std::printf("add: copying the batch into the accumulator (once per evaluation, not in the "
              "ratios).\n");
  return status;
}

int main(int argc, char** argv) {
  return bench::guarded("bench_metrics", [&] { return run_benchmark(argc, argv); });
}
