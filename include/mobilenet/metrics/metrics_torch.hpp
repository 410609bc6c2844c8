#pragma once
/// \file
/// Feeds torch::Tensor batches to the Eigen-based MetricsAccumulator (metrics.hpp).
///
///     mobilenet::MetricsAccumulator acc(num_classes);
///     mobilenet::accumulate_logits(acc, model->forward(images), targets);
///     auto thresholds = acc.tune_thresholds();
///     auto predictions = torch::sigmoid(logits) >= mobilenet::thresholds_tensor(thresholds);

#include <mobilenet/metrics/metrics.hpp>

#include <torch/torch.h>

#include <sstream>
#include <vector>

namespace mobilenet {

/// Adds a batch of probabilities (N x C, any device and floating dtype) and targets (N x C,
/// values in [0, 1], any dtype). Copies to CPU float32 only when needed. Throws c10::Error on a
/// shape mismatch naming both shapes, std::invalid_argument on NaN scores / bad targets.
inline void accumulate(MetricsAccumulator& acc, const torch::Tensor& scores,
                       const torch::Tensor& targets) {
  auto shape = [](const torch::Tensor& t) {
    std::ostringstream os;
    os << t.sizes();
    return os.str();
  };
  TORCH_CHECK(scores.dim() == 2 && scores.sizes() == targets.sizes() &&
                  scores.size(1) == acc.num_classes(),
              "accumulate: scores shape ", shape(scores), " and targets shape ", shape(targets),
              " must both be [N, ", acc.num_classes(), "]");
  TORCH_CHECK(scores.is_floating_point(), "accumulate: scores must be floating point, got ",
              scores.scalar_type(), " of shape ", shape(scores));
  auto s = scores.detach().to(torch::kCPU, torch::kFloat).contiguous();
  auto t = targets.detach().to(torch::kCPU, torch::kFloat).contiguous();
  acc.add(s.data_ptr<float>(), t.data_ptr<float>(), s.size(0));
}

/// Same as accumulate() for raw logits: applies the sigmoid first (in float32).
inline void accumulate_logits(MetricsAccumulator& acc, const torch::Tensor& logits,
                              const torch::Tensor& targets) {
  TORCH_CHECK(logits.is_floating_point(), "accumulate_logits: logits must be floating point, got ",
              logits.scalar_type());
  accumulate(acc, torch::sigmoid(logits.detach().to(torch::kFloat)), targets);
}

/// Per-class thresholds (e.g. MetricsAccumulator::tune_thresholds()) as a [C] float tensor,
/// to compare with probabilities: `probs >= thresholds_tensor(t, probs.device())`.
inline torch::Tensor thresholds_tensor(const std::vector<float>& thresholds,
                                       torch::Device device = torch::kCPU) {
  return torch::tensor(thresholds, torch::kFloat).to(device);
}

}  // namespace mobilenet
