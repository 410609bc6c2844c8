#pragma once
/// \file nn/detail/losses_common.hpp
/// Helpers shared by the multi-label losses: input checks, dtype promotion, reduction.

#include <mobilenet/nn/reduction.hpp>

#include <torch/torch.h>

#include <sstream>
#include <string>
#include <utility>

namespace mobilenet {
namespace detail {

inline std::string losses_shape_string(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

/// Checks logits/targets and returns both in the dtype the loss is computed in.
///
/// Half and bfloat16 (autocast outputs) are computed in float32, because the log/pow terms of
/// these losses lose all precision in 16 bits. float64 is kept for gradient checks, but only
/// when both sides are float64: silently mixing it with float32 usually means a bug upstream.
inline std::pair<torch::Tensor, torch::Tensor> losses_prepare(const char* loss,
                                                              const torch::Tensor& logits,
                                                              const torch::Tensor& targets) {
  TORCH_CHECK(logits.defined() && targets.defined(), loss, ": logits and targets must be defined");
  TORCH_CHECK(logits.sizes() == targets.sizes(), loss, ": logits shape ",
              losses_shape_string(logits), " and targets shape ", losses_shape_string(targets),
              " must be equal");
  TORCH_CHECK(logits.is_floating_point() && targets.is_floating_point(), loss,
              ": logits and targets must be floating point, got logits ", logits.scalar_type(),
              " of shape ", losses_shape_string(logits), " and targets ", targets.scalar_type(),
              " of shape ", losses_shape_string(targets));
  const bool l64 = logits.scalar_type() == torch::kDouble;
  const bool t64 = targets.scalar_type() == torch::kDouble;
  TORCH_CHECK(l64 == t64, loss, ": dtype mismatch, logits ", logits.scalar_type(), " of shape ",
              losses_shape_string(logits), " and targets ", targets.scalar_type(), " of shape ",
              losses_shape_string(targets), " (float64 must be paired with float64)");
  TORCH_CHECK(logits.device() == targets.device(), loss, ": logits on ", logits.device(),
              " and targets on ", targets.device(), " (shapes ", losses_shape_string(logits),
              " and ", losses_shape_string(targets), ")");
  const auto dtype = l64 ? torch::kDouble : torch::kFloat;
  return {logits.to(dtype), targets.to(dtype)};
}

inline torch::Tensor losses_reduce(const torch::Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::mean: return loss.mean();
    case Reduction::sum: return loss.sum();
  }
  return loss;
}

/// base^gamma for the focusing terms. For 0 < gamma < 1 the derivative of pow at base 0 is
/// infinite and turns into NaN through the chain rule at saturated logits, so the base is kept
/// off zero there (the value moves by < 1e-30^gamma). gamma == 0 returns ones (no focusing).
inline torch::Tensor losses_focus(const torch::Tensor& base, double gamma) {
  if (gamma == 0.0) return torch::ones_like(base);
  if (gamma < 1.0) return base.clamp_min(1e-30).pow(gamma);
  return base.pow(gamma);
}

}  // namespace detail
}  // namespace mobilenet
