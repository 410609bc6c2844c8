#pragma once
/// \file models/detail/head.hpp
/// The classifier head the models share.

#include <mobilenet/nn/forward_recorder.hpp>

#include <torch/torch.h>

namespace mobilenet::detail {

/// Global average pool, flatten, `classifier`, each child recorded like the features.
inline torch::Tensor pool_and_classify(torch::Tensor features, torch::nn::Sequential& classifier) {
  return forward_recorded(classifier, torch::adaptive_avg_pool2d(features, {1, 1}).flatten(1));
}

}  // namespace mobilenet::detail
