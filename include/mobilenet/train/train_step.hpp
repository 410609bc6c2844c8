#pragma once
/// \file train_step.hpp
/// One optimization step with autocast, gradient scaling and clipping, shared by the trainer
/// example, the benchmarks and the tests.

#include <mobilenet/train/amp.hpp>

#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <functional>
#include <limits>

namespace mobilenet {

/// loss(logits (float32), targets) -> scalar.
using LossFunction = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>;

/// Options for train_step.
/// Example: `TrainStepOptions(torch::kCUDA).amp(true).clip_grad_norm(5.0)`.
struct TrainStepOptions {
  explicit TrainStepOptions(torch::Device device = torch::kCPU) : device_(device) {}
  TORCH_ARG(torch::Device, device);
  /// Autocast the forward pass (fp16 on CUDA with the scaler, bf16 on CPU). Default false.
  TORCH_ARG(bool, amp) = false;
  /// Clip the global gradient norm to this (after unscaling); 0 = off. Default 0.
  TORCH_ARG(double, clip_grad_norm) = 0.0;
  /// Maps this process's "loss is finite" to the decision every process shares (data
  /// parallel: all ranks must skip together or none). Default: none (local decision).
  TORCH_ARG(std::function<bool(bool)>, finite_consensus) = nullptr;
  /// Runs after backward, before clipping and the step: DistributedDataParallel's
  /// synchronize() goes here. Default: none.
  TORCH_ARG(std::function<void()>, after_backward) = nullptr;
  /// Do not read the loss back per step (no `.item()`: on CUDA that is a device sync).
  /// StepResult::loss is then NaN and `finite` is not checked: read `loss_tensor` when the
  /// value is needed (e.g. once per logging interval). Without a GradScaler a non-finite loss
  /// is then NOT skipped, so use it with a scaler or when a diverged run may be detected late.
  /// Not combinable with finite_consensus. Default false.
  TORCH_ARG(bool, defer_loss) = false;
};

/// What a step did.
struct StepResult {
  double loss = 0;           ///< unscaled loss value (NaN with defer_loss)
  torch::Tensor loss_tensor; ///< the unscaled loss, detached (0-dim, on the device)
  bool finite = true;        ///< false: loss was inf/NaN
  bool skipped = false;      ///< no optimizer update (non-finite loss or gradients)
};

namespace detail {
/// Sets the gradients to undefined on every LibTorch: 2.x's `zero_grad()` default (and the
/// Python default since 2.0); 1.13's `zero_grad()` zeroes them instead. The numbers are the
/// same (the first backward stores g instead of adding it to 0); a memset and an add per
/// parameter per step are saved, and 1.13 and 2.x builds train alike.
inline void zero_grad_to_none(torch::optim::Optimizer& optimizer) {
#if TORCH_VERSION_MAJOR >= 2
  optimizer.zero_grad(/*set_to_none=*/true);
#else
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (p.mutable_grad().defined()) p.mutable_grad().reset();
    }
  }
#endif
}
}  // namespace detail

/// zero_grad, forward (autocast if asked), loss in float32, scaled backward, optional
/// clipping, optimizer step through the scaler, scaler update. A non-finite loss without
/// a scaler skips the update (the caller decides whether to stop).
template <typename Model>
StepResult train_step(Model& model, torch::optim::Optimizer& optimizer, GradScaler& scaler,
                      const LossFunction& loss_fn, const torch::Tensor& images,
                      const torch::Tensor& targets, const TrainStepOptions& options) {
  detail::zero_grad_to_none(optimizer);
  torch::Tensor logits;
  {
    AutocastGuard autocast(options.device(), options.amp());
    logits = model->forward(images);
  }
  torch::Tensor loss = loss_fn(logits.to(torch::kFloat), targets);
  StepResult result;
  result.loss_tensor = loss.detach();
  if (options.defer_loss()) {
    TORCH_CHECK(!options.finite_consensus(),
                "train_step: defer_loss cannot be combined with finite_consensus");
    result.loss = std::numeric_limits<double>::quiet_NaN();
  } else {
    result.loss = loss.item<double>();
    result.finite = std::isfinite(result.loss);
    if (options.finite_consensus()) result.finite = options.finite_consensus()(result.finite);
  }
  if (!result.finite && !scaler.enabled()) {
    result.skipped = true;
    return result;
  }
  scaler.scale(loss).backward();
  if (options.after_backward()) options.after_backward()();
  if (options.clip_grad_norm() > 0) {
    scaler.unscale(optimizer);
    std::vector<torch::Tensor> params;
    for (auto& group : optimizer.param_groups()) {
      for (auto& p : group.params()) params.push_back(p);
    }
    torch::nn::utils::clip_grad_norm_(params, options.clip_grad_norm());
  }
  scaler.step(optimizer);
  result.skipped = scaler.step_skipped();
  scaler.update();
  return result;
}

}  // namespace mobilenet
