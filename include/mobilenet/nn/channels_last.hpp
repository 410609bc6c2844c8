#pragma once
/// \file channels_last.hpp
/// Converting a model's weights to channels-last (NHWC) memory.

#include <torch/torch.h>

namespace mobilenet {

/// Stores every 4-D parameter (convolution weights) channels-last, so convolutions on
/// channels-last inputs (what the DataLoader produces) run without layout conversions.
/// LibTorch's Module::to() takes no memory format, hence this helper.
/// Example: `model->to(device); to_channels_last(*model);`
inline void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

}  // namespace mobilenet
