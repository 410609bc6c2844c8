#pragma once
/// \file schedule.hpp
/// Learning-rate schedules as pure functions of the step, so a checkpoint only needs the step.

#include <torch/torch.h>

#include <cmath>
#include <string>

namespace mobilenet {

/// Options for LrSchedule. total_steps = epochs x steps per epoch.
/// Example: `LrScheduleOptions("cosine", 1e-3, 10000).warmup_steps(500)`.
struct LrScheduleOptions {
  LrScheduleOptions(std::string kind, double base_lr, int64_t total_steps)
      : kind_(std::move(kind)), base_lr_(base_lr), total_steps_(total_steps) {}
  /// "cosine" (linear warm-up, then cosine to min_lr), "onecycle" (PyTorch's OneCycleLR with
  /// cosine annealing: from base_lr/div_factor up to base_lr at pct_start, then down to
  /// base_lr/(div_factor*final_div_factor)), or "constant".
  TORCH_ARG(std::string, kind);
  /// Peak learning rate.
  TORCH_ARG(double, base_lr);
  TORCH_ARG(int64_t, total_steps);
  /// cosine: linear warm-up from 0 over this many steps; default 0.
  TORCH_ARG(int64_t, warmup_steps) = 0;
  /// cosine: floor; default 0.
  TORCH_ARG(double, min_lr) = 0.0;
  /// onecycle: fraction of steps spent rising; default 0.3.
  TORCH_ARG(double, pct_start) = 0.3;
  /// onecycle: default 25.
  TORCH_ARG(double, div_factor) = 25.0;
  /// onecycle: default 1e4.
  TORCH_ARG(double, final_div_factor) = 1e4;
};

/// lr(step) for step in [0, total_steps).
class LrSchedule {
 public:
  explicit LrSchedule(LrScheduleOptions options) : o_(std::move(options)) {
    TORCH_CHECK(o_.kind() == "cosine" || o_.kind() == "onecycle" || o_.kind() == "constant",
                "LrSchedule: kind must be cosine, onecycle or constant, got '", o_.kind(), "'");
    TORCH_CHECK(o_.base_lr() > 0, "LrSchedule: base_lr must be > 0, got ", o_.base_lr());
    TORCH_CHECK(o_.total_steps() > 0, "LrSchedule: total_steps must be > 0, got ",
                o_.total_steps());
    TORCH_CHECK(o_.warmup_steps() >= 0 && o_.warmup_steps() <= o_.total_steps(),
                "LrSchedule: warmup_steps must be in [0, total_steps], got ", o_.warmup_steps());
  }

  double lr(int64_t step) const {
    const double kPi = std::acos(-1.0);
    if (o_.kind() == "constant") return o_.base_lr();
    if (o_.kind() == "cosine") {
      if (step < o_.warmup_steps()) {
        return o_.base_lr() * static_cast<double>(step + 1) / o_.warmup_steps();
      }
      const double span = std::max<int64_t>(1, o_.total_steps() - o_.warmup_steps());
      const double t = std::min(1.0, (step - o_.warmup_steps()) / span);
      return o_.min_lr() + 0.5 * (o_.base_lr() - o_.min_lr()) * (1 + std::cos(kPi * t));
    }
    // One-cycle, phase boundaries as torch.optim.lr_scheduler.OneCycleLR (three_phase=False).
    const double initial = o_.base_lr() / o_.div_factor();
    const double final_lr = initial / o_.final_div_factor();
    const double up_end = o_.pct_start() * o_.total_steps() - 1;
    const double down_end = o_.total_steps() - 1;
    auto cos_anneal = [&](double start, double end, double pct) {
      return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1);
    };
    const double s = static_cast<double>(step);
    if (s <= up_end) return cos_anneal(initial, o_.base_lr(), up_end > 0 ? s / up_end : 1.0);
    return cos_anneal(o_.base_lr(), final_lr,
                      std::min(1.0, (s - up_end) / std::max(1.0, down_end - up_end)));
  }

  /// Sets lr(step) on every parameter group of `optimizer`.
  void apply(torch::optim::Optimizer& optimizer, int64_t step) const {
    const double value = lr(step);
    for (auto& group : optimizer.param_groups()) group.options().set_lr(value);
  }

  const LrScheduleOptions& options() const { return o_; }

 private:
  LrScheduleOptions o_;
};

}  // namespace mobilenet
