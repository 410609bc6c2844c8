#pragma once
/// \file activation.hpp
/// ReLU6 as a clamp, so it has a backward for every dtype LibTorch trains in.

#include <torch/torch.h>

#include <ostream>

namespace mobilenet {

/// Options for ReLU6. `inplace` defaults to true, as torchvision's MobileNetV2 uses it.
/// Example: `ReLU6(ReLU6Options().inplace(false))`.
struct ReLU6Options {
  TORCH_ARG(bool, inplace) = true;
};

/// min(max(x, 0), 6). LibTorch's ReLU6 is hardtanh, whose CPU backward has no bf16 kernel in
/// 1.13; clamp has one everywhere and gives bit-identical results in float32.
class ReLU6Impl : public torch::nn::Cloneable<ReLU6Impl> {
 public:
  explicit ReLU6Impl(ReLU6Options options = {}) : options(options) {}
  void reset() override {}
  torch::Tensor forward(torch::Tensor x) {
    return options.inplace() ? x.clamp_(0, 6) : x.clamp(0, 6);
  }
  void pretty_print(std::ostream& stream) const override {
    stream << "mobilenet::ReLU6(inplace=" << (options.inplace() ? "true" : "false") << ")";
  }
  ReLU6Options options;
};
TORCH_MODULE(ReLU6);

/// ReLU with LibTorch's defaults plus in-place, as MobileNetV1 uses it.
class ReLUImpl : public torch::nn::Cloneable<ReLUImpl> {
 public:
  explicit ReLUImpl(bool inplace = true) : inplace(inplace) {}
  void reset() override {}
  torch::Tensor forward(torch::Tensor x) { return inplace ? x.relu_() : x.relu(); }
  void pretty_print(std::ostream& stream) const override {
    stream << "mobilenet::ReLU(inplace=" << (inplace ? "true" : "false") << ")";
  }
  bool inplace;
};
TORCH_MODULE(ReLU);

/// No activation: ConvBnAct<NoActivation> is conv + norm only.
struct NoActivation {};

}  // namespace mobilenet
