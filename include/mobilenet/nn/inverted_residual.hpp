#pragma once
/// \file inverted_residual.hpp
/// MobileNetV2's block: expand 1x1 -> depthwise 3x3 -> linear 1x1 projection.

#include <mobilenet/nn/conv_bn_act.hpp>

#include <torch/torch.h>

#include <cmath>

namespace mobilenet {

/// Options for InvertedResidual.
/// Example: `InvertedResidualOptions(32, 16).stride(2).expand_ratio(6).dilation(2)`.
struct InvertedResidualOptions {
  InvertedResidualOptions(int64_t in_channels, int64_t out_channels)
      : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  /// 1 or 2; default 1.
  TORCH_ARG(int64_t, stride) = 1;
  /// Hidden width = round(in_channels * expand_ratio); 1 skips the expansion conv. Default 6.
  TORCH_ARG(double, expand_ratio) = 6;
  /// Dilation of the depthwise 3x3; default 1.
  TORCH_ARG(int64_t, dilation) = 1;
  /// Builds the three norms when `Norm` is torch::nn::AnyModule; null (default): BatchNorm2d.
  TORCH_ARG(NormLayer, norm_layer) = nullptr;

 public:
  /// Channels after the expansion (torchvision: int(round(inp * expand_ratio))).
  int64_t hidden_channels() const {
    return static_cast<int64_t>(std::nearbyint(static_cast<double>(in_channels_) * expand_ratio_));
  }
  /// The residual connection exists exactly when the block keeps shape.
  bool use_residual() const { return stride_ == 1 && in_channels_ == out_channels_; }
};

/// Inverted residual with linear bottleneck (Sandler et al., 2018). Children mirror
/// torchvision: `conv.0` expansion (if any), then the depthwise ConvBnAct, then the projection
/// Conv2d and its norm — no activation after the projection. `Activation` and `Norm` as for
/// ConvBnAct.
/// Example: `InvertedResidual<> block(InvertedResidualOptions(32, 16).expand_ratio(1));`
template <typename Activation = ReLU6, typename Norm = torch::nn::BatchNorm2d>
class InvertedResidualImpl
    : public torch::nn::Cloneable<InvertedResidualImpl<Activation, Norm>> {
 public:
  explicit InvertedResidualImpl(InvertedResidualOptions options) : options(std::move(options)) {
    reset();
  }

  void reset() override {
    const auto& o = options;
    TORCH_CHECK(o.in_channels() > 0, "InvertedResidual: in_channels must be > 0, got ",
                o.in_channels());
    TORCH_CHECK(o.out_channels() > 0, "InvertedResidual: out_channels must be > 0, got ",
                o.out_channels());
    TORCH_CHECK(o.stride() == 1 || o.stride() == 2,
                "InvertedResidual: stride must be 1 or 2, got ", o.stride());
    TORCH_CHECK(o.dilation() >= 1, "InvertedResidual: dilation must be >= 1, got ",
                o.dilation());
    TORCH_CHECK(o.expand_ratio() >= 1, "InvertedResidual: expand_ratio must be >= 1, got ",
                o.expand_ratio());
    const int64_t hidden = o.hidden_channels();
    torch::nn::Sequential layers;
    if (o.expand_ratio() != 1) {
      layers->push_back(ConvBnAct<Activation, Norm>(ConvBnActOptions(o.in_channels(), hidden)
                                                        .kernel_size(1)
                                                        .norm_layer(o.norm_layer())));
    }
    layers->push_back(ConvBnAct<Activation, Norm>(ConvBnActOptions(hidden, hidden)
                                                      .stride(o.stride())
                                                      .dilation(o.dilation())
                                                      .groups(hidden)
                                                      .norm_layer(o.norm_layer())));
    layers->push_back(torch::nn::Conv2d(
        torch::nn::Conv2dOptions(hidden, o.out_channels(), 1).bias(false)));
    layers->push_back(
        detail::make_norm<Norm>(o.norm_layer(), o.out_channels(), "InvertedResidual"));
    conv = this->register_module("conv", layers);
  }

  torch::Tensor forward(torch::Tensor x) {
    if (options.use_residual()) {
      return x + forward_recorded(conv, x);
    }
    return forward_recorded(conv, std::move(x));
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "mobilenet::InvertedResidual(in=" << options.in_channels()
           << ", out=" << options.out_channels() << ", stride=" << options.stride()
           << ", expand_ratio=" << options.expand_ratio() << ", dilation=" << options.dilation()
           << ")";
  }

  InvertedResidualOptions options;
  torch::nn::Sequential conv{nullptr};
};

/// Holder for InvertedResidualImpl.
template <typename Activation = ReLU6, typename Norm = torch::nn::BatchNorm2d>
class InvertedResidual : public torch::nn::ModuleHolder<InvertedResidualImpl<Activation, Norm>> {
 public:
  using torch::nn::ModuleHolder<InvertedResidualImpl<Activation, Norm>>::ModuleHolder;
  using Impl = InvertedResidualImpl<Activation, Norm>;
};

}  // namespace mobilenet
