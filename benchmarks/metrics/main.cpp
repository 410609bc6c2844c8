// mAP and micro/macro F1 on 5,000 x 80 and 118,287 x 80 score matrices (COCO val / train
// sizes), ours (metrics.hpp, one thread) against scikit-learn in the same run.
//
// Usage: bench_metrics [--quick]   (--quick: only 5,000 x 80)
#include <mobilenet/metrics/metrics.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
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

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  std::vector<int64_t> sizes = {5000};
  if (!quick) sizes.push_back(118287);

  const auto dir = std::filesystem::temp_directory_path() / "mobilenet_bench_metrics";
  std::filesystem::create_directories(dir);
  std::map<int64_t, Ours> ours;
  std::string args;
  for (int64_t n : sizes) {
    auto [scores, targets] = make_data(n);
    const std::string tag = std::to_string(n) + "_" + std::to_string(kClasses);
    std::ofstream(dir / ("scores_" + tag + ".f32"), std::ios::binary)
        .write(reinterpret_cast<const char*>(scores.data()),
               static_cast<std::streamsize>(scores.size() * sizeof(float)));
    std::vector<uint8_t> y(static_cast<size_t>(targets.size()));
    for (size_t i = 0; i < y.size(); ++i) y[i] = targets.data()[i] >= 0.5f;
    std::ofstream(dir / ("targets_" + tag + ".u8"), std::ios::binary)
        .write(reinterpret_cast<const char*>(y.data()), static_cast<std::streamsize>(y.size()));
    ours[n] = run_ours(scores, targets);
    args += " " + std::to_string(n) + " " + std::to_string(kClasses);
  }

  // scikit-learn on the same matrices.
  const std::string cmd = std::string(MOBILENET_PYTHON) + " " + MOBILENET_BENCH_SCRIPT + " " +
                          dir.string() + args;
  std::map<int64_t, std::vector<double>> sk;  // map_ms, f1_ms, map, micro, macro
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, pipe)) {
      std::istringstream ls(line);
      std::string tag;
      int64_t n = 0, c = 0;
      std::vector<double> v(5);
      if (ls >> tag >> n >> c >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] && tag == "sklearn") sk[n] = v;
    }
    pclose(pipe);
  }
  std::filesystem::remove_all(dir);

  std::printf("metrics benchmark, %lld classes, one thread, best of repeats (ms)\n",
              static_cast<long long>(kClasses));
  std::printf("%-10s %9s %9s %9s %10s | %11s %11s | %9s %9s | %s\n", "samples", "add", "mAP",
              "F1", "tune thr", "sklearn mAP", "sklearn F1", "mAP x", "F1 x", "|mAP diff|");
  int status = 0;
  for (int64_t n : sizes) {
    const auto& o = ours[n];
    if (!sk.count(n)) {
      std::printf("%-10lld %9.3f %9.3f %9.3f %10.3f | scikit-learn run failed: %s\n",
                  static_cast<long long>(n), o.add_ms, o.map_ms, o.f1_ms, o.tune_ms, cmd.c_str());
      status = 1;
      continue;
    }
    const auto& s = sk[n];
    const double diff = std::max({std::abs(o.map - s[2]), std::abs(o.micro_f1 - s[3]),
                                  std::abs(o.macro_f1 - s[4])});
    std::printf("%-10lld %9.3f %9.3f %9.3f %10.3f | %11.3f %11.3f | %8.1fx %8.1fx | %.1e\n",
                static_cast<long long>(n), o.add_ms, o.map_ms, o.f1_ms, o.tune_ms, s[0], s[1],
                s[0] / o.map_ms, s[1] / o.f1_ms, diff);
    if (diff > 1e-9) status = 1;  // the speed must not come from different numbers
  }
  std::printf("mAP x / F1 x: scikit-learn time / ours. add: copying the batch into the "
              "accumulator (once per evaluation, not included in the ratios).\n");
  return status;
}
