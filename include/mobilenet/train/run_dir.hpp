#pragma once
/// \file train/run_dir.hpp
/// A run's folder and the files the Trainer keeps in it: last.pt (every epoch, with the
/// optimizer), best.pt (the chosen weights and their thresholds), metrics.csv, per_class.csv
/// and plots.gp. prepare() refuses to train over an earlier run unless told to continue or
/// overwrite it: a typo in --out must not destroy a week of training.

#include <mobilenet/train/collectives.hpp>

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace mobilenet {

/// Example: `RunDir dir("runs/coco"); dir.prepare(world, /*resume=*/false, /*overwrite=*/false);`
class RunDir {
 public:
  explicit RunDir(std::string folder) : folder_(std::move(folder)) {
    TORCH_CHECK(!folder_.empty(), "RunDir: the run folder must be set");
  }

  const std::string& folder() const { return folder_; }
  /// `name` inside the folder.
  std::string path(const std::string& name) const {
    return (std::filesystem::path(folder_) / name).string();
  }
  std::string last() const { return path("last.pt"); }
  std::string best() const { return path("best.pt"); }
  std::string metrics() const { return path("metrics.csv"); }
  std::string per_class() const { return path("per_class.csv"); }
  std::string plots() const { return path("plots.gp"); }

  /// True when the folder holds a run (last.pt, best.pt or metrics.csv).
  bool holds_run() const {
    namespace fs = std::filesystem;
    return fs::exists(last()) || fs::exists(best()) || fs::exists(metrics());
  }

  /// Rank 0 creates the folder; with `overwrite` it removes the earlier run's files, and
  /// without `resume` or `overwrite` a folder that holds a run is refused. Every rank throws
  /// together (the refusal is agreed through `world`).
  void prepare(Collectives& world, bool resume, bool overwrite) const {
    TORCH_CHECK(!(resume && overwrite), "RunDir: resume and overwrite exclude each other");
    double refuse = 0;
    if (world.is_main()) {
      std::error_code ec;
      std::filesystem::create_directories(folder_, ec);
      TORCH_CHECK(!ec, "cannot create output folder '", folder_, "': ", ec.message());
      if (!resume && !overwrite && holds_run()) refuse = 1;
      if (overwrite) {
        for (const auto& file : {last(), best(), metrics(), per_class()}) std::filesystem::remove(file, ec);
      }
    }
    TORCH_CHECK(world.all_reduce(refuse) == 0, "output folder '", folder_,
                "' already holds a run (last.pt / best.pt / metrics.csv): continue it with "
                "--resume, or start afresh with --overwrite");
  }

 private:
  std::string folder_;
};

}  // namespace mobilenet
