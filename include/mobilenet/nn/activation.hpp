#pragma once
/// \file activation.hpp
/// ReLU6 (hardtanh in float, clamp in bf16/fp16, so it has a backward for every dtype LibTorch
/// trains in) and ReLU.

#include <torch/torch.h>

#include <ostream>

namespace mobilenet {

/// Options for ReLU6. `inplace` defaults to true, as torchvision's MobileNetV2 uses it.
/// Example: `ReLU6(ReLU6Options().inplace(false))`.
struct ReLU6Options {
  TORCH_ARG(bool, inplace) = true;
};

/// min(max(x, 0), 6), computed like PyTorch's nn.ReLU6 (hardtanh) in float32/float64 and as
/// a clamp in bf16/fp16, where hardtanh has no CPU backward in LibTorch 1.13.
class ReLU6Impl : public torch::nn::Cloneable<ReLU6Impl> {
 public:
  explicit ReLU6Impl(ReLU6Options options = {}) : options(options) {}
  void reset() override {}
  torch::Tensor forward(torch::Tensor x) {
    // hardtanh_'s backward is one kernel reading the output; clamp_'s keeps a copy of the input
    // and runs four passes (ge, le, and, where): a third of the training step on CPU.
    if (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble) {
      return options.inplace() ? torch::hardtanh_(x, 0, 6) : torch::hardtanh(x, 0, 6);
    }
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
