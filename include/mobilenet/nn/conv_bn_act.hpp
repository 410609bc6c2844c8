#pragma once
/// \file conv_bn_act.hpp
/// Conv2d (no bias) + norm + optional activation: the unit every MobileNet is built from.

#include <mobilenet/nn/activation.hpp>
#include <mobilenet/nn/forward_recorder.hpp>
#include <mobilenet/nn/norm_layer.hpp>
#include <mobilenet/nn/sequential_like.hpp>

#include <torch/torch.h>

#include <type_traits>

namespace mobilenet {

/// Options for ConvBnAct. Padding is derived: dilation * (kernel_size - 1) / 2, so stride 1
/// keeps the spatial size whatever the dilation.
/// Example: `ConvBnActOptions(32, 64).kernel_size(3).stride(2)`.
struct ConvBnActOptions {
  ConvBnActOptions(int64_t in_channels, int64_t out_channels)
      : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  /// Square kernel size; default 3.
  TORCH_ARG(int64_t, kernel_size) = 3;
  /// Default 1.
  TORCH_ARG(int64_t, stride) = 1;
  /// Default 1; set to in_channels for a depthwise convolution.
  TORCH_ARG(int64_t, groups) = 1;
  /// Default 1.
  TORCH_ARG(int64_t, dilation) = 1;
  /// Builds the norm when the block's `Norm` is torch::nn::AnyModule; null (default):
  /// BatchNorm2d. Must stay null for a fixed `Norm`.
  TORCH_ARG(NormLayer, norm_layer) = nullptr;

 public:
  int64_t padding() const { return dilation_ * (kernel_size_ - 1) / 2; }
};

namespace detail {
/// A module holder that holds nothing yet (NoActivation and AnyModule are no holders).
template <typename Holder>
Holder empty_holder() {
  if constexpr (std::is_same_v<Holder, NoActivation> ||
                std::is_same_v<Holder, torch::nn::AnyModule>) {
    return {};
  } else {
    return Holder(nullptr);
  }
}

inline void check_conv_bn_act(const ConvBnActOptions& o) {
  TORCH_CHECK(o.in_channels() > 0, "ConvBnAct: in_channels must be > 0, got ", o.in_channels());
  TORCH_CHECK(o.out_channels() > 0, "ConvBnAct: out_channels must be > 0, got ", o.out_channels());
  TORCH_CHECK(o.kernel_size() > 0, "ConvBnAct: kernel_size must be > 0, got ", o.kernel_size());
  TORCH_CHECK(o.stride() > 0, "ConvBnAct: stride must be > 0, got ", o.stride());
  TORCH_CHECK(o.dilation() >= 1, "ConvBnAct: dilation must be >= 1, got ", o.dilation());
  TORCH_CHECK(o.groups() > 0 && o.in_channels() % o.groups() == 0 &&
                  o.out_channels() % o.groups() == 0,
              "ConvBnAct: groups must divide in_channels (", o.in_channels(),
              ") and out_channels (", o.out_channels(), "), got ", o.groups());
}
}  // namespace detail

/// Conv2d(bias=false) -> Norm -> Activation, children named "0", "1", "2" like torchvision's
/// Conv2dNormActivation, so state_dict keys line up.
///
/// `Activation` is a module holder constructible with no arguments (ReLU6 in place by default)
/// or NoActivation. `Norm` is a module holder constructible from the channel count
/// (BatchNorm2d by default), or torch::nn::AnyModule to build it at run time from
/// `options.norm_layer()`, as the models do when given a NormLayer.
/// Example: `ConvBnAct<> stem(ConvBnActOptions(3, 32).stride(2));`
/// `ConvBnAct<ReLU6, torch::nn::AnyModule> b(ConvBnActOptions(3, 32).norm_layer(layer));`
template <typename Activation = ReLU6, typename Norm = torch::nn::BatchNorm2d>
class ConvBnActImpl : public torch::nn::Cloneable<ConvBnActImpl<Activation, Norm>>,
                      public SequentialLike {
 public:
  explicit ConvBnActImpl(ConvBnActOptions options) : options(std::move(options)) { reset(); }

  void reset() override {
    detail::check_conv_bn_act(options);
    conv = this->register_module(
        "0", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_channels(),
                                                        options.out_channels(),
                                                        options.kernel_size())
                                   .stride(options.stride())
                                   .padding(options.padding())
                                   .dilation(options.dilation())
                                   .groups(options.groups())
                                   .bias(false)));
    norm = detail::make_norm<Norm>(options.norm_layer(), options.out_channels(), "ConvBnAct");
    this->register_module("1", norm.ptr());
    if constexpr (!std::is_same_v<Activation, NoActivation>) {
      activation = this->register_module("2", Activation());
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    x = forward_recorded(norm, forward_recorded(conv, std::move(x)));
    if constexpr (!std::is_same_v<Activation, NoActivation>) {
      x = forward_recorded(activation, std::move(x));
    }
    return x;
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "mobilenet::ConvBnAct";
  }

  ConvBnActOptions options;
  torch::nn::Conv2d conv{nullptr};
  Norm norm{detail::empty_holder<Norm>()};
  Activation activation{detail::empty_holder<Activation>()};
};

/// Holder for ConvBnActImpl (TORCH_MODULE cannot take a template).
template <typename Activation = ReLU6, typename Norm = torch::nn::BatchNorm2d>
class ConvBnAct : public torch::nn::ModuleHolder<ConvBnActImpl<Activation, Norm>> {
 public:
  using torch::nn::ModuleHolder<ConvBnActImpl<Activation, Norm>>::ModuleHolder;
  using Impl = ConvBnActImpl<Activation, Norm>;
};

}  // namespace mobilenet
