// Data-parallel scaling on this machine: MobileNetV2 trained with 1 process and with 2
// processes (Gloo over loopback) at the same global batch, with and without overlapping the
// gradient all-reduce with backward; PyTorch's DistributedDataParallel on the same
// configuration (bench_ddp.py), interleaved round by round through the harness (bench_util.hpp).
// A last row builds the model with SyncBatchNorm2d (norm_layer); PyTorch 1.13's SyncBatchNorm
// needs CUDA, so that row has no Python counterpart.
//
//   bench_distributed [--steps 10] [--batch 32] [--image 96] [--width 0.5] [--rounds 3]
//                     [--allow-load]
//
// The program re-executes itself as the ranks (mobilenet::launch_local).
#include <mobilenet/distributed/ddp.hpp>
#include <mobilenet/distributed/launch.hpp>
#include <mobilenet/distributed/sync_batch_norm.hpp>
#include <mobilenet/models/mobilenet_v2.hpp>

#include <CLI/CLI.hpp>

#include "../bench_util.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <chrono>

namespace {

struct Config {
  int64_t steps = 8;      // timed steps
  int64_t warmup = 2;     // untimed first steps
  int64_t batch = 32;     // global batch, split across ranks
  int64_t image = 96;     // input side
  double width = 0.5;     // MobileNetV2 width multiplier
  int64_t classes = 80;   // COCO's label count
  double bucket_mb = 1;   // DDP bucket cap, both stacks: < the 3 MiB of gradients, to overlap
};

struct RankResult {
  double step_s = 0;         // median wall time of one optimizer step
  double sync_s = 0;         // mean time inside synchronize() per step
  int64_t buckets = 0;       // gradient buckets per step
  int64_t bytes = 0;         // gradient bytes per step
  int64_t in_backward = 0;   // buckets started during backward, per step
  double reduce_s = 0;       // synchronize() alone, ranks aligned by a barrier
};

void add_options(CLI::App& app, Config& c) {
  app.add_option("--steps", c.steps, "timed steps");
  app.add_option("--warmup", c.warmup, "untimed steps first");
  app.add_option("--batch", c.batch, "global batch (split across ranks)");
  app.add_option("--image", c.image, "image side");
  app.add_option("--width", c.width, "MobileNetV2 width multiplier");
  app.add_option("--classes", c.classes, "classes");
  app.add_option("--bucket-mb", c.bucket_mb, "gradient bucket cap in MiB");
}

std::vector<std::string> config_args(const Config& c) {
  return {"--steps", std::to_string(c.steps), "--warmup", std::to_string(c.warmup),
          "--batch", std::to_string(c.batch), "--image", std::to_string(c.image),
          "--width", std::to_string(c.width), "--classes", std::to_string(c.classes),
          "--bucket-mb", std::to_string(c.bucket_mb)};
}

// One rank: synthetic data, SGD, timing. Rank 0 writes its numbers to `out`.
void run_rank(const Config& c, bool overlap, bool sync_bn, const std::string& out) {
  auto comm = mobilenet::init_distributed();
  torch::manual_seed(0);
  mobilenet::MobileNetV2 model(
      mobilenet::MobileNetV2Options().width_mult(c.width).num_classes(c.classes).norm_layer(
          sync_bn ? mobilenet::sync_batch_norm_layer(comm) : nullptr));
  mobilenet::DistributedDataParallel ddp(
      model, comm, mobilenet::DistributedDataParallelOptions().bucket_mb(c.bucket_mb).overlap(overlap));
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const int64_t local = c.batch / comm->world_size();
  torch::manual_seed(static_cast<uint64_t>(comm->rank()));
  auto x = torch::randn({local, 3, c.image, c.image});
  auto y = (torch::rand({local, c.classes}) > 0.9).to(torch::kFloat);
  std::vector<double> times;
  for (int64_t step = 0; step < c.warmup + c.steps; ++step) {
    if (step == c.warmup) {
      ddp.reset_stats();
    }
    const auto start = std::chrono::steady_clock::now();
    opt.zero_grad();
    torch::binary_cross_entropy_with_logits(model->forward(x), y).backward();
    ddp.synchronize();
    opt.step();
    if (step >= c.warmup) {
      times.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  const auto s = ddp.stats();
  // The all-reduce alone: ranks start together after a barrier, gradients already computed,
  // so neither backward nor one rank waiting for a slower one is counted.
  std::vector<double> pure;
  for (int i = 0; i < 5; ++i) {
    comm->barrier();
    const auto start = std::chrono::steady_clock::now();
    ddp.synchronize();
    pure.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(pure.begin(), pure.end());
  if (comm->is_main()) {
    // Median: this machine is shared, and a few steps get descheduled.
    std::sort(times.begin(), times.end());
    std::ofstream(out) << times[times.size() / 2] << " "
                       << s.synchronize_seconds / static_cast<double>(s.steps) << " " << s.buckets
                       << " " << s.bytes_per_step << " "
                       << s.buckets_started_in_backward / std::max<int64_t>(1, s.steps) << " "
                       << pure[pure.size() / 2] << "\n";
  }
}

RankResult launch(const Config& c, int64_t nproc, int64_t threads, bool overlap, bool sync_bn,
                  const std::filesystem::path& dir) {
  const auto out = (dir / ("result-" + std::to_string(nproc) + "-" + std::to_string(threads) +
                           "-" + std::to_string(overlap) + "-" + std::to_string(sync_bn) + ".txt"))
                       .string();
  auto args = config_args(c);
  args.insert(args.begin(), {"--rank-program", "--overlap", overlap ? "1" : "0", "--sync-bn",
                             sync_bn ? "1" : "0", "--out", out});
  mobilenet::launch_local(mobilenet::LaunchOptions(nproc).threads_per_rank(threads), args);
  RankResult r;
  std::ifstream in(out);
  TORCH_CHECK(in >> r.step_s >> r.sync_s >> r.buckets >> r.bytes >> r.in_backward >> r.reduce_s,
              "bench_distributed: rank 0 wrote no result to ", out);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  bool rank_program = false;
  int overlap = 1;
  int sync_bn = 0;
  std::string out;
  bench::HarnessOptions harness_options;
  CLI::App app("MobileNetV2 data-parallel scaling: 1 vs 2 local processes, C++ vs PyTorch");
  add_options(app, c);
  app.add_flag("--rank-program", rank_program, "internal: run as one rank");
  app.add_option("--overlap", overlap, "internal: overlap all-reduce with backward");
  app.add_option("--sync-bn", sync_bn, "internal: build the model with SyncBatchNorm2d");
  app.add_option("--out", out, "internal: result file of rank 0");
  bench::add_harness_flags(app, harness_options);
  CLI11_PARSE(app, argc, argv);
  try {
    if (rank_program) {
      torch::set_num_threads(static_cast<int>(std::stoi(std::getenv("OMP_NUM_THREADS"))));
      run_rank(c, overlap != 0, sync_bn != 0, out);
      return 0;
    }
    TORCH_CHECK(c.batch % 2 == 0, "--batch must be even (split over 2 ranks)");
    std::ostringstream config;
    config << "MobileNetV2 width " << c.width << ", " << c.image << "x" << c.image
           << ", global batch " << c.batch << ", " << c.steps << " steps (+" << c.warmup
           << " warm-up) per measurement, median step; Gloo on loopback; bucket " << c.bucket_mb
           << " MiB; SGD momentum 0.9";
    bench::Harness harness("bench_distributed", harness_options);
    if (!harness.start({{"threads", "per row: processes x intra-op threads, the same on both "
                                    "sides (each rank sets torch's threads)"},
                        {"config", config.str()}})) {
      return 2;
    }
    const auto dir = std::filesystem::temp_directory_path() /
                     ("mobilenet-bench-dist-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ostringstream script;
    script << MOBILENET_BENCH_DIR << "/bench_ddp.py";
    bench::PythonChild python(
        script.str(),
        {"--batch", std::to_string(c.batch), "--steps", std::to_string(c.steps), "--warmup",
         std::to_string(c.warmup), "--image", std::to_string(c.image), "--width",
         std::to_string(c.width), "--classes", std::to_string(c.classes), "--bucket_mb",
         std::to_string(c.bucket_mb)},
        1);
    harness.check_child(python, 1);
    std::printf("\n");
    struct Row {
      std::string name;
      int64_t nproc, threads;
      bool overlap, with_python;  // PyTorch's DDP always overlaps: no row without
      bool sync_bn = false;       // PyTorch 1.13's SyncBatchNorm needs CUDA: no row either
    };
    const std::vector<Row> rows{{"1 process x 1 thread", 1, 1, false, true},
                                {"1 process x 2 threads", 1, 2, false, true},
                                {"2 processes x 1 thread, overlap", 2, 1, true, true},
                                {"2 processes x 1 thread, no overlap", 2, 1, false, false},
                                {"2 x 1 thread, overlap, SyncBatchNorm", 2, 1, true, false, true}};
    std::vector<bench::Series> series;
    for (const auto& row : rows) {
      series.emplace_back(row.name, "img/s", true, row.nproc == 2 ? ">= 1.0x" : "");
    }
    std::vector<std::vector<RankResult>> results(rows.size());
    for (int r = 0; r < harness_options.rounds; ++r) {
      harness.round_started(r);
      for (size_t k = 0; k < rows.size(); ++k) {
        const auto& row = rows[k];
        // A: C++ ranks.
        results[k].push_back(launch(c, row.nproc, row.threads, row.overlap, row.sync_bn, dir));
        series[k].cpp.push_back(static_cast<double>(c.batch) / results[k].back().step_s);
        // B: PyTorch ranks, same processes x threads.
        if (row.with_python) {
          series[k].py.push_back(python.round("run " + std::to_string(row.nproc) + " " +
                                              std::to_string(row.threads))["images_per_s"]);
        }
      }
    }
    std::filesystem::remove_all(dir);
    std::printf("results (medians of %d rounds, images per second)\n", harness_options.rounds);
    for (const auto& s : series) {
      if (!s.py.empty()) {
        harness.report(s);
      } else {
        std::printf("  %-34s C++ %9.2f %-5s (best %9.2f)  (no PyTorch equivalent: DDP always "
                    "overlaps / SyncBatchNorm needs CUDA)%s\n", s.name.c_str(), bench::median(s.cpp), s.unit.c_str(),
                    s.best(s.cpp), harness.mark().c_str());
      }
    }
    std::printf("per round\n");
    for (const auto& s : series) harness.report_rounds(s);
    auto median_of = [&](size_t k, double RankResult::*field) {
      std::vector<double> v;
      for (const auto& x : results[k]) v.push_back(x.*field);
      return bench::median(v);
    };
    const double one = median_of(0, &RankResult::step_s), two = median_of(2, &RankResult::step_s),
                 two_plain = median_of(3, &RankResult::step_s);
    const auto& last = results[2].back();
    std::cout << std::fixed << std::setprecision(1)
              << "\nscaling efficiency, 2 processes vs 1 (1 thread each): "
              << 100.0 * one / (2.0 * two) << " % with overlap, "
              << 100.0 * one / (2.0 * two_plain) << " % without" << harness.mark() << "\n"
              << "gradients per step: " << std::setprecision(2)
              << static_cast<double>(last.bytes) / (1024.0 * 1024.0) << " MiB in " << last.buckets
              << " bucket(s) of <= " << c.bucket_mb << " MiB; " << last.in_backward
              << " started during backward with overlap\n"
              << "all-reduce cost per step: " << std::setprecision(1)
              << 1e3 * median_of(2, &RankResult::reduce_s)
              << " ms alone (ranks aligned); time inside synchronize() per training step: "
              << 1e3 * median_of(3, &RankResult::sync_s) << " ms without overlap, "
              << 1e3 * median_of(2, &RankResult::sync_s)
              << " ms with overlap (includes waiting for the slower rank)" << harness.mark()
              << "\n"
              << "SyncBatchNorm2d (2 all-reduces per norm layer and step): step "
              << 1e3 * median_of(4, &RankResult::step_s) << " ms vs " << 1e3 * two
              << " ms with BatchNorm2d ("
              << 100.0 * (median_of(4, &RankResult::step_s) / two - 1.0) << " %)"
              << harness.mark() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_distributed: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
