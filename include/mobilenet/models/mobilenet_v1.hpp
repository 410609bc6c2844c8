#pragma once
/// \file mobilenet_v1.hpp
/// MobileNetV1 (Howard et al., 2017): stem conv + 13 depthwise-separable blocks + pool + FC.

#include <mobilenet/models/detail/dilation.hpp>
#include <mobilenet/models/detail/head.hpp>
#include <mobilenet/nn/conv_bn_act.hpp>
#include <mobilenet/nn/depthwise_separable.hpp>
#include <mobilenet/nn/forward_recorder.hpp>
#include <mobilenet/nn/init.hpp>
#include <mobilenet/nn/norm_layer.hpp>

#include <torch/torch.h>

#include <vector>

namespace mobilenet {

/// A run of n depthwise-separable blocks with c output channels, the first with stride s.
struct DepthwiseSeparableStage {
  int64_t c;
  int64_t n;
  int64_t s;
};

/// The paper's 13 blocks, grouped into stages.
inline std::vector<DepthwiseSeparableStage> mobilenet_v1_stages() {
  return {
      // c, n, s
      {64, 1, 1},
      {128, 2, 2},
      {256, 2, 2},
      {512, 6, 2},
      {1024, 2, 2},
  };
}

/// Options for MobileNetV1.
/// Example: `MobileNetV1Options().num_classes(80).width_mult(0.5)`.
struct MobileNetV1Options {
  /// Default 1000.
  TORCH_ARG(int64_t, num_classes) = 1000;
  /// Channel multiplier (the paper's alpha); channels rounded to round_nearest. Default 1.0.
  TORCH_ARG(double, width_mult) = 1.0;
  /// Default 8.
  TORCH_ARG(int64_t, round_nearest) = 8;
  /// Default mobilenet_v1_stages().
  TORCH_ARG(std::vector<DepthwiseSeparableStage>, stages) = mobilenet_v1_stages();
  /// 32, 16 or 8, as for MobileNetV2. Default 32.
  TORCH_ARG(int64_t, output_stride) = 32;
  /// Optional extra dilation per stage; empty = all 1.
  TORCH_ARG(std::vector<int64_t>, stage_dilations) = {};
  /// Dropout before the Linear; default 0.2 (as MobileNetV2, so training code treats both alike).
  TORCH_ARG(double, dropout) = 0.2;
  /// Builds every norm layer, as MobileNetV2Options::norm_layer; null (default): BatchNorm2d.
  TORCH_ARG(NormLayer, norm_layer) = nullptr;
};

/// MobileNetV1 with members `features` (stem + blocks) and `classifier` (Dropout, Linear),
/// named like MobileNetV2 so the same code can freeze or replace either part. With a
/// norm_layer the blocks' Norm is torch::nn::AnyModule, as in MobileNetV2.
class MobileNetV1Impl : public torch::nn::Cloneable<MobileNetV1Impl> {
 public:
  explicit MobileNetV1Impl(MobileNetV1Options options = {}) : options(std::move(options)) {
    reset();
  }

  void reset() override {
    const auto& o = options;
    detail::check_model_options("MobileNetV1", o.num_classes(), o.width_mult(), o.dropout(),
                                o.stages().size(), o.stage_dilations(), o.output_stride());

    int64_t channels = 0;
    features = register_module("features",
                               o.norm_layer() ? make_features<torch::nn::AnyModule>(channels)
                                              : make_features<torch::nn::BatchNorm2d>(channels));
    classifier = register_module(
        "classifier", torch::nn::Sequential(torch::nn::Dropout(o.dropout()),
                                            torch::nn::Linear(channels, o.num_classes())));
    init_model(*this, InitPolicy::torchvision());
  }

  torch::Tensor forward_features(torch::Tensor x) { return forward_recorded(features, std::move(x)); }

  torch::Tensor forward(torch::Tensor x) {
    return detail::pool_and_classify(forward_features(std::move(x)), classifier);
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "mobilenet::MobileNetV1(num_classes=" << options.num_classes()
           << ", width_mult=" << options.width_mult()
           << ", output_stride=" << options.output_stride() << ")";
  }

  MobileNetV1Options options;
  torch::nn::Sequential features{nullptr};
  torch::nn::Sequential classifier{nullptr};

 private:
  // Stem and depthwise-separable stages, norms of type Norm; `channels` receives the output
  // width.
  template <typename Norm>
  torch::nn::Sequential make_features(int64_t& channels) const {
    const auto& o = options;
    constexpr int64_t kStemStride = 2;
    channels = detail::make_divisible(32 * o.width_mult(), o.round_nearest());
    torch::nn::Sequential layers;
    layers->push_back(ConvBnAct<ReLU, Norm>(
        ConvBnActOptions(3, channels).stride(kStemStride).norm_layer(o.norm_layer())));
    detail::StridePlanner planner(o.output_stride(), kStemStride);
    for (size_t i = 0; i < o.stages().size(); ++i) {
      const auto& stage = o.stages()[i];
      TORCH_CHECK(stage.n > 0 && stage.c > 0 && (stage.s == 1 || stage.s == 2),
                  "MobileNetV1: stage ", i, " (c=", stage.c, ", n=", stage.n, ", s=", stage.s,
                  ") needs c > 0, n > 0, s in {1, 2}");
      const int64_t extra = detail::stage_dilation(o.stage_dilations(), i);
      const int64_t out =
          detail::make_divisible(static_cast<double>(stage.c) * o.width_mult(),
                                 o.round_nearest());
      for (int64_t j = 0; j < stage.n; ++j) {
        const auto g = planner.next(j == 0 ? stage.s : 1);
        layers->push_back(DepthwiseSeparable<ReLU, Norm>(DepthwiseSeparableOptions(channels, out)
                                                             .stride(g.stride)
                                                             .dilation(g.dilation * extra)
                                                             .norm_layer(o.norm_layer())));
        channels = out;
      }
    }
    return layers;
  }
};
TORCH_MODULE(MobileNetV1);

}  // namespace mobilenet
