#pragma once
/// \file norm_layer.hpp
/// NormLayer: which normalization the blocks and models build, chosen at run time like
/// torchvision's `norm_layer` argument (BatchNorm2d by default, SyncBatchNorm2d for
/// data-parallel runs, or any module with BatchNorm2d's forward).

#include <mobilenet/nn/forward_recorder.hpp>

#include <torch/torch.h>

#include <functional>
#include <string>
#include <type_traits>
#include <utility>

namespace mobilenet {

/// Builds the norm layer that follows a convolution with `num_features` output channels.
/// The module must map an N x C x H x W tensor to one of the same shape. For state dicts
/// that match torchvision's, it should register BatchNorm2d's names (weight, bias,
/// running_mean, running_var, num_batches_tracked). Null means torch::nn::BatchNorm2d.
/// Example: `MobileNetV2Options().norm_layer(batch_norm_layer(BatchNormOptions(0).momentum(0.01)))`
using NormLayer = std::function<torch::nn::AnyModule(int64_t num_features)>;

/// NormLayer for torch::nn::BatchNorm2d with `options` (its num_features is replaced by each
/// layer's channel count), like `functools.partial(nn.BatchNorm2d, eps=..., momentum=...)`.
/// Example: `batch_norm_layer(torch::nn::BatchNormOptions(0).eps(1e-3))`
inline NormLayer batch_norm_layer(torch::nn::BatchNormOptions options = torch::nn::BatchNormOptions(0)) {
  return [options](int64_t num_features) {
    auto o = options;
    o.num_features(num_features);
    return torch::nn::AnyModule(torch::nn::BatchNorm2d(o));
  };
}

namespace detail {

/// The norm of a block whose `Norm` template argument is `Norm`. Most blocks name a concrete
/// holder (BatchNorm2d: no type erasure, so the default path pays nothing per call) and are
/// built from the channel count; `Norm = torch::nn::AnyModule` defers to `layer` (null:
/// BatchNorm2d). `block` names the caller in error messages.
template <typename Norm>
Norm make_norm(const NormLayer& layer, int64_t channels, const char* block) {
  if constexpr (std::is_same_v<Norm, torch::nn::AnyModule>) {
    if (!layer) {
      return torch::nn::AnyModule(torch::nn::BatchNorm2d(channels));
    }
    auto norm = layer(channels);
    TORCH_CHECK(!norm.is_empty(), block, ": norm_layer returned an empty module for ", channels,
                " channels");
    return norm;
  } else {
    TORCH_CHECK(!layer, block, ": norm_layer is set, but this block's Norm template argument "
                "is a fixed type; use Norm = torch::nn::AnyModule to build it from norm_layer");
    return Norm(channels);
  }
}

}  // namespace detail

/// forward_recorded() for a type-erased child: runs it and records the output, like the
/// holder overload.
inline torch::Tensor forward_recorded(torch::nn::AnyModule& module, torch::Tensor x) {
  torch::Tensor y = module.forward<torch::Tensor>(std::move(x));
  if (auto* recorder = active_recorder()) {
    recorder->record(*module.ptr(), y);
  }
  return y;
}

/// True for a BatchNorm-like module: one with its own `running_mean` and `running_var`
/// buffers (BatchNorm1d/2d/3d, SyncBatchNorm2d, a NormLayer's module that keeps BatchNorm2d's
/// names). What initialization treats as BatchNorm whatever the concrete type; freezing
/// code can use it the same way.
inline bool is_batch_norm(const torch::nn::Module& module) {
  const auto buffers = module.named_buffers(/*recurse=*/false);
  return buffers.contains("running_mean") && buffers.contains("running_var");
}

}  // namespace mobilenet
