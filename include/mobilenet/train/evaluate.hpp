#pragma once
/// \file evaluate.hpp
/// One validation pass: mean loss, sigmoid scores gathered over ranks, and the multi-label
/// metrics of the literature (mAP, P/R/F1 at 0.5 and at per-class tuned thresholds).

#include <mobilenet/metrics/metrics.hpp>
#include <mobilenet/metrics/metrics_torch.hpp>
#include <mobilenet/models/factory.hpp>
#include <mobilenet/train/amp.hpp>
#include <mobilenet/train/batch_source.hpp>
#include <mobilenet/train/collectives.hpp>
#include <mobilenet/train/train_step.hpp>

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace mobilenet {

/// Metrics of one validation pass. Tuned thresholds are fitted for F1 on this same set, so the
/// tuned figures are optimistic; they are what a deployed model carries.
struct Evaluation {
  double loss = 0;             ///< mean loss per image
  int64_t images = 0;          ///< images evaluated (all ranks)
  ThresholdMetrics at_half;    ///< at threshold 0.5
  ThresholdMetrics tuned;      ///< at `thresholds`
  AveragePrecision ap;         ///< per class and mAP
  PaperMetrics paper;          ///< CP/CR/CF1/OP/OR/OF1 at 0.5, all and top-3
  std::vector<float> thresholds;
  std::string report;          ///< per-class table (rank 0 has it; others: empty)
};

/// How evaluate() runs. Example: `EvaluateOptions().device(torch::kCUDA).amp(true)`.
struct EvaluateOptions {
  /// Where the model runs. Default CPU.
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  /// Autocast the forward pass. Default false.
  TORCH_ARG(bool, amp) = false;
  /// Data-parallel job whose ranks each see a shard of the validation set. Default: one process.
  TORCH_ARG(std::shared_ptr<Collectives>, collectives) = single_process();
  /// Class names for the report (default: class indices).
  TORCH_ARG(std::vector<std::string>, class_names);
};

/// Runs `model` in eval mode over one epoch of `source` (epoch index `epoch` for the source's
/// order) and computes the metrics over every rank's shard. Throws if no image was evaluated.
inline Evaluation evaluate(Classifier& model, BatchSource& source, const LossFunction& loss_fn,
                           int64_t epoch, const EvaluateOptions& options = {}) {
  const bool was_training = model.module().is_training();
  model.module().eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> scores, targets;
  double loss_sum = 0;
  int64_t n = 0, classes = -1;
  source.for_each(epoch, [&](const BatchView& batch) {
    if (batch.images.size(0) == 0) return true;
    auto images = batch.images.to(options.device(), /*non_blocking=*/true);
    auto y = batch.targets.to(options.device());
    torch::Tensor logits;
    {
      AutocastGuard autocast(options.device(), options.amp());
      logits = model.forward(images);
    }
    logits = logits.to(torch::kFloat);
    loss_sum += loss_fn(logits, y).item<double>() * double(y.size(0));
    n += y.size(0);
    classes = y.size(1);
    scores.push_back(torch::sigmoid(logits).cpu());
    targets.push_back(batch.targets.to(torch::kFloat).cpu());
    return true;
  });
  if (was_training) model.module().train();
  auto& world = *options.collectives();
  // A rank's shard may be empty; every rank still joins the collectives.
  const int64_t num_classes = int64_t(world.all_reduce(double(std::max<int64_t>(classes, 0)))) /
                              std::max<int64_t>(1, int64_t(world.all_reduce(classes >= 0 ? 1.0 : 0.0)));
  torch::Tensor s = n > 0 ? torch::cat(scores) : torch::zeros({0, num_classes});
  torch::Tensor t = n > 0 ? torch::cat(targets) : torch::zeros({0, num_classes});
  const double total = world.all_reduce(double(n));
  TORCH_CHECK(total > 0, "evaluate: no validation image could be evaluated (every batch was "
              "empty: are all validation images unreadable?)");
  Evaluation e;
  e.images = int64_t(total);
  e.loss = world.all_reduce(loss_sum) / total;
  s = world.all_gather(s);
  t = world.all_gather(t);
  MetricsAccumulator acc(s.size(1));
  accumulate(acc, s, t);
  e.at_half = acc.at_threshold(0.5f);
  e.thresholds = acc.tune_thresholds();
  e.tuned = acc.at_threshold(e.thresholds);
  e.ap = acc.average_precision();
  e.paper = acc.paper_metrics(0.5f, 3);
  if (world.is_main()) {
    std::vector<std::string> names = options.class_names();
    for (int64_t k = int64_t(names.size()); k < s.size(1); ++k) names.push_back(std::to_string(k));
    e.report = acc.report(names, e.thresholds);
  }
  return e;
}

}  // namespace mobilenet
