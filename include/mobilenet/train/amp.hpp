#pragma once
/// \file amp.hpp
/// Mixed precision: an autocast guard (fp16 on CUDA, bf16 on CPU) and a gradient scaler
/// that behaves like PyTorch's torch.cuda.amp.GradScaler.

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <optional>

namespace mobilenet {

namespace detail {
// LibTorch 2.4 replaced the per-device autocast functions by device-type arguments.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
inline bool autocast_enabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
inline void set_autocast_enabled(c10::DeviceType d, bool on) {
  at::autocast::set_autocast_enabled(d, on);
}
inline c10::ScalarType autocast_dtype(c10::DeviceType d) {
  return at::autocast::get_autocast_dtype(d);
}
inline void set_autocast_dtype(c10::DeviceType d, c10::ScalarType t) {
  at::autocast::set_autocast_dtype(d, t);
}
#else
inline bool autocast_enabled(c10::DeviceType d) {
  return d == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
inline void set_autocast_enabled(c10::DeviceType d, bool on) {
  d == c10::DeviceType::CUDA ? at::autocast::set_enabled(on) : at::autocast::set_cpu_enabled(on);
}
inline c10::ScalarType autocast_dtype(c10::DeviceType d) {
  return d == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                    : at::autocast::get_autocast_cpu_dtype();
}
inline void set_autocast_dtype(c10::DeviceType d, c10::ScalarType t) {
  d == c10::DeviceType::CUDA ? at::autocast::set_autocast_gpu_dtype(t)
                             : at::autocast::set_autocast_cpu_dtype(t);
}
#endif
}  // namespace detail

/// The lower-precision type autocast uses by default on a device: fp16 on CUDA (tensor cores,
/// needs a GradScaler), bf16 on CPU (fp32's range, no scaler needed).
inline c10::ScalarType default_autocast_dtype(const torch::Device& device) {
  return device.is_cuda() ? torch::kHalf : torch::kBFloat16;
}

/// Enables autocast for `device` in this thread for the guard's lifetime (a no-op when
/// `enabled` is false), restoring the previous state after. Losses should still be computed
/// on float32 logits (ours cast internally).
/// Example: `{ AutocastGuard amp(device, use_amp); logits = model(x); }`
class AutocastGuard {
 public:
  AutocastGuard(const torch::Device& device, bool enabled,
                std::optional<c10::ScalarType> dtype = std::nullopt)
      : type_(device.type()), enabled_(enabled) {
    if (!enabled_) return;
    previous_enabled_ = detail::autocast_enabled(type_);
    previous_dtype_ = detail::autocast_dtype(type_);
    detail::set_autocast_dtype(type_, dtype.value_or(default_autocast_dtype(device)));
    detail::set_autocast_enabled(type_, true);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    // Casts are cached while autocast is on; drop them when the outermost guard leaves.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    detail::set_autocast_enabled(type_, previous_enabled_);
    detail::set_autocast_dtype(type_, previous_dtype_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType type_;
  bool enabled_;
  bool previous_enabled_ = false;
  c10::ScalarType previous_dtype_ = torch::kFloat;
};

/// Options for GradScaler; defaults are PyTorch's.
/// Example: `GradScalerOptions().init_scale(1024).growth_interval(100)`.
struct GradScalerOptions {
  /// Default 2^16 (held as float32, like PyTorch's).
  TORCH_ARG(double, init_scale) = 65536.0;
  /// Scale multiplier after growth_interval finite steps; default 2.
  TORCH_ARG(double, growth_factor) = 2.0;
  /// Scale multiplier after a step with inf/NaN gradients; default 0.5.
  TORCH_ARG(double, backoff_factor) = 0.5;
  /// Default 2000.
  TORCH_ARG(int64_t, growth_interval) = 2000;
  /// false makes every method a pass-through (fp32 or bf16 training). Default true.
  TORCH_ARG(bool, enabled) = true;
};

/// Dynamic loss scaling for fp16 training:
///   scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update();
/// step() unscales the gradients (unless unscale() was called first, e.g. to clip) and skips
/// the optimizer step when any gradient is inf/NaN; update() then backs the scale off, or
/// grows it after growth_interval clean steps. Built from plain tensor ops so it runs on
/// CPU too; on CUDA it uses PyTorch's fused kernels.
class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {})
      : options_(options), scale_(static_cast<float>(options.init_scale())) {
    TORCH_CHECK(options.init_scale() > 0, "GradScaler: init_scale must be > 0, got ",
                options.init_scale());
    TORCH_CHECK(options.growth_factor() > 1, "GradScaler: growth_factor must be > 1, got ",
                options.growth_factor());
    TORCH_CHECK(options.backoff_factor() > 0 && options.backoff_factor() < 1,
                "GradScaler: backoff_factor must be in (0, 1), got ", options.backoff_factor());
    TORCH_CHECK(options.growth_interval() > 0, "GradScaler: growth_interval must be > 0, got ",
                options.growth_interval());
  }

  bool enabled() const { return options_.enabled(); }
  double scale_value() const { return options_.enabled() ? scale_ : 1.0; }
  int64_t growth_tracker() const { return growth_tracker_; }
  /// Whether the last step() was skipped for inf/NaN gradients.
  bool step_skipped() const { return skipped_; }

  /// loss * scale.
  torch::Tensor scale(const torch::Tensor& loss) const {
    return options_.enabled() ? loss * scale_ : loss;
  }

  /// Divides the gradients of `optimizer`'s parameters by the scale, recording whether any
  /// is inf/NaN. At most once per step.
  void unscale(torch::optim::Optimizer& optimizer) {
    if (!options_.enabled() || unscaled_) return;
    unscaled_ = true;
    std::vector<torch::Tensor> grads;
    for (auto& group : optimizer.param_groups()) {
      for (auto& p : group.params()) {
        if (p.grad().defined()) grads.push_back(p.grad());
      }
    }
    found_inf_ = false;
    if (grads.empty()) return;
    torch::NoGradGuard no_grad;
    const auto device = grads.front().device();
    auto inv_scale = torch::full({1}, 1.0 / scale_, torch::dtype(torch::kFloat).device(device));
    auto found = torch::zeros({1}, torch::dtype(torch::kFloat).device(device));
    if (device.is_cuda()) {
      at::_amp_foreach_non_finite_check_and_unscale_(grads, found, inv_scale);
    } else {
      for (auto& g : grads) {
        found.add_(torch::isfinite(g).logical_not().any().to(torch::kFloat));
        g.mul_(inv_scale.to(g.scalar_type()));
      }
    }
    found_inf_ = found.item<float>() > 0;
  }

  /// Unscales if needed, then runs optimizer.step() unless a gradient was inf/NaN.
  void step(torch::optim::Optimizer& optimizer) {
    if (!options_.enabled()) {
      optimizer.step();
      skipped_ = false;
      return;
    }
    unscale(optimizer);
    skipped_ = found_inf_;
    if (!skipped_) optimizer.step();
  }

  /// Adjusts the scale after a step; call once per iteration after step().
  void update() {
    if (!options_.enabled()) return;
    // PyTorch keeps the scale in a float32 tensor and never grows it to inf: round the same
    // way, so the scale (and every scaled loss) equals torch.amp.GradScaler's step for step.
    if (found_inf_) {
      scale_ = static_cast<float>(scale_ * options_.backoff_factor());
      growth_tracker_ = 0;
    } else if (++growth_tracker_ == options_.growth_interval()) {
      const float grown = static_cast<float>(scale_ * options_.growth_factor());
      if (std::isfinite(grown)) scale_ = grown;
      growth_tracker_ = 0;
    }
    unscaled_ = false;
    found_inf_ = false;
  }

  /// For checkpoints: {scale, growth_tracker}.
  std::vector<double> state() const { return {scale_, static_cast<double>(growth_tracker_)}; }
  void load_state(const std::vector<double>& state) {
    TORCH_CHECK(state.size() == 2, "GradScaler: state must have 2 entries, got ", state.size());
    scale_ = state[0];
    growth_tracker_ = static_cast<int64_t>(state[1]);
  }

 private:
  GradScalerOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;
  bool unscaled_ = false;
  bool found_inf_ = false;
  bool skipped_ = false;
};

}  // namespace mobilenet
