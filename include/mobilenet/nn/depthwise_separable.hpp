#pragma once
/// \file depthwise_separable.hpp
/// MobileNetV1's block: depthwise 3x3 + BN + ReLU, then pointwise 1x1 + BN + ReLU.

#include <mobilenet/nn/conv_bn_act.hpp>

#include <torch/torch.h>

namespace mobilenet {

/// Options for DepthwiseSeparable.
/// Example: `DepthwiseSeparableOptions(32, 64).stride(2)`.
struct DepthwiseSeparableOptions {
  DepthwiseSeparableOptions(int64_t in_channels, int64_t out_channels)
      : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  /// Stride of the depthwise conv, 1 or 2; default 1.
  TORCH_ARG(int64_t, stride) = 1;
  /// Dilation of the depthwise conv; default 1.
  TORCH_ARG(int64_t, dilation) = 1;
  /// Builds both norms when `Norm` is torch::nn::AnyModule; null (default): BatchNorm2d.
  TORCH_ARG(NormLayer, norm_layer) = nullptr;
};

/// Depthwise-separable convolution (Howard et al., 2017). Children "0" (depthwise ConvBnAct)
/// and "1" (pointwise ConvBnAct), as a Sequential would name them. `Activation` and `Norm` as
/// for ConvBnAct.
/// Example: `DepthwiseSeparable<> block(DepthwiseSeparableOptions(32, 64));`
template <typename Activation = ReLU, typename Norm = torch::nn::BatchNorm2d>
class DepthwiseSeparableImpl
    : public torch::nn::Cloneable<DepthwiseSeparableImpl<Activation, Norm>>,
      public SequentialLike {
 public:
  explicit DepthwiseSeparableImpl(DepthwiseSeparableOptions options)
      : options(std::move(options)) {
    reset();
  }

  void reset() override {
    const auto& o = options;
    TORCH_CHECK(o.in_channels() > 0, "DepthwiseSeparable: in_channels must be > 0, got ",
                o.in_channels());
    TORCH_CHECK(o.out_channels() > 0, "DepthwiseSeparable: out_channels must be > 0, got ",
                o.out_channels());
    TORCH_CHECK(o.stride() == 1 || o.stride() == 2,
                "DepthwiseSeparable: stride must be 1 or 2, got ", o.stride());
    TORCH_CHECK(o.dilation() >= 1, "DepthwiseSeparable: dilation must be >= 1, got ",
                o.dilation());
    depthwise = this->register_module(
        "0", ConvBnAct<Activation, Norm>(ConvBnActOptions(o.in_channels(), o.in_channels())
                                             .stride(o.stride())
                                             .dilation(o.dilation())
                                             .groups(o.in_channels())
                                             .norm_layer(o.norm_layer())));
    pointwise = this->register_module(
        "1", ConvBnAct<Activation, Norm>(
                 ConvBnActOptions(o.in_channels(), o.out_channels())
                     .kernel_size(1)
                     .norm_layer(o.norm_layer())));
  }

  torch::Tensor forward(torch::Tensor x) {
    return forward_recorded(pointwise, forward_recorded(depthwise, std::move(x)));
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "mobilenet::DepthwiseSeparable(in=" << options.in_channels()
           << ", out=" << options.out_channels() << ", stride=" << options.stride()
           << ", dilation=" << options.dilation() << ")";
  }

  DepthwiseSeparableOptions options;
  ConvBnAct<Activation, Norm> depthwise{nullptr};
  ConvBnAct<Activation, Norm> pointwise{nullptr};
};

/// Holder for DepthwiseSeparableImpl.
template <typename Activation = ReLU, typename Norm = torch::nn::BatchNorm2d>
class DepthwiseSeparable
    : public torch::nn::ModuleHolder<DepthwiseSeparableImpl<Activation, Norm>> {
 public:
  using torch::nn::ModuleHolder<DepthwiseSeparableImpl<Activation, Norm>>::ModuleHolder;
  using Impl = DepthwiseSeparableImpl<Activation, Norm>;
};

}  // namespace mobilenet
