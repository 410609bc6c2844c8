#pragma once
/// \file mobilenet_v2.hpp
/// MobileNetV2 (Sandler et al., 2018) with torchvision's layout and an output-stride option.

#include <mobilenet/models/detail/dilation.hpp>
#include <mobilenet/models/detail/head.hpp>
#include <mobilenet/nn/conv_bn_act.hpp>
#include <mobilenet/nn/forward_recorder.hpp>
#include <mobilenet/nn/init.hpp>
#include <mobilenet/nn/inverted_residual.hpp>
#include <mobilenet/nn/norm_layer.hpp>

#include <torch/torch.h>

#include <vector>

namespace mobilenet {

/// One stage of inverted residual blocks: expansion t, output channels c, repeats n, stride s
/// of the first block.
struct InvertedResidualStage {
  double t;
  int64_t c;
  int64_t n;
  int64_t s;
};

/// The table of MobileNetV2's paper and torchvision.
inline std::vector<InvertedResidualStage> mobilenet_v2_stages() {
  return {
      // t, c, n, s
      {1, 16, 1, 1},
      {6, 24, 2, 2},
      {6, 32, 3, 2},
      {6, 64, 4, 2},
      {6, 96, 3, 1},
      {6, 160, 3, 2},
      {6, 320, 1, 1},
  };
}

/// Options for MobileNetV2; defaults are torchvision's `mobilenet_v2()`.
/// Example: `MobileNetV2Options().num_classes(80).output_stride(16)`.
struct MobileNetV2Options {
  /// Default 1000.
  TORCH_ARG(int64_t, num_classes) = 1000;
  /// Channel multiplier; default 1.0.
  TORCH_ARG(double, width_mult) = 1.0;
  /// Channels are rounded to a multiple of this; default 8.
  TORCH_ARG(int64_t, round_nearest) = 8;
  /// Block table (t, c, n, s per stage); default mobilenet_v2_stages().
  TORCH_ARG(std::vector<InvertedResidualStage>, stages) = mobilenet_v2_stages();
  /// 32 (no dilation), 16 or 8: later strides become dilation. Default 32.
  TORCH_ARG(int64_t, output_stride) = 32;
  /// Optional extra dilation per stage (one entry per table row, multiplies the dilation the
  /// output stride gives). Empty = all 1. Enlarges the receptive field of late stages without
  /// changing the output stride.
  TORCH_ARG(std::vector<int64_t>, stage_dilations) = {};
  /// Dropout before the classifier's Linear; default 0.2.
  TORCH_ARG(double, dropout) = 0.2;
  /// Width of the last 1x1 conv before width_mult; default 1280.
  TORCH_ARG(int64_t, last_channel) = 1280;
  /// Builds every norm layer (torchvision's `norm_layer`); null (default): BatchNorm2d.
  /// State dict keys and parameter counts stay torchvision's for BatchNorm2d-compatible norms.
  /// Example: `.norm_layer(sync_batch_norm_layer(comm))` (distributed/sync_batch_norm.hpp).
  TORCH_ARG(NormLayer, norm_layer) = nullptr;
};

/// MobileNetV2. Parameter and buffer names equal torchvision's (`features.0.0.weight`,
/// `features.1.conv.0.0.weight`, ..., `classifier.1.bias`). forward() returns logits.
/// The blocks are ConvBnAct<> / InvertedResidual<> (BatchNorm2d), or ConvBnAct<ReLU6,
/// torch::nn::AnyModule> / InvertedResidual<ReLU6, torch::nn::AnyModule> with a norm_layer.
/// Example: `MobileNetV2 model(MobileNetV2Options().num_classes(80));`
class MobileNetV2Impl : public torch::nn::Cloneable<MobileNetV2Impl> {
 public:
  explicit MobileNetV2Impl(MobileNetV2Options options = {}) : options(std::move(options)) {
    reset();
  }

  void reset() override {
    const auto& o = options;
    TORCH_CHECK(o.round_nearest() > 0, "MobileNetV2: round_nearest must be > 0, got ",
                o.round_nearest());
    detail::check_model_options("MobileNetV2", o.num_classes(), o.width_mult(), o.dropout(),
                                o.stages().size(), o.stage_dilations(), o.output_stride());

    const int64_t last = detail::make_divisible(
        static_cast<double>(o.last_channel()) * std::max(1.0, o.width_mult()),
        o.round_nearest());
    // A fixed BatchNorm2d unless a norm_layer is given: the default path stays free of type
    // erasure.
    features = register_module("features", o.norm_layer()
                                               ? make_features<torch::nn::AnyModule>(last)
                                               : make_features<torch::nn::BatchNorm2d>(last));
    classifier = register_module(
        "classifier", torch::nn::Sequential(torch::nn::Dropout(o.dropout()),
                                            torch::nn::Linear(last, o.num_classes())));
    // Initialized like torchvision's constructor; init_model() switches policy.
    init_model(*this, InitPolicy::torchvision());
  }

  /// Backbone output: N x last_channel x H/output_stride x W/output_stride.
  torch::Tensor forward_features(torch::Tensor x) { return forward_recorded(features, std::move(x)); }

  /// Logits, N x num_classes (no sigmoid: losses take logits).
  torch::Tensor forward(torch::Tensor x) {
    return detail::pool_and_classify(forward_features(std::move(x)), classifier);
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "mobilenet::MobileNetV2(num_classes=" << options.num_classes()
           << ", width_mult=" << options.width_mult()
           << ", output_stride=" << options.output_stride() << ")";
  }

  MobileNetV2Options options;
  torch::nn::Sequential features{nullptr};
  torch::nn::Sequential classifier{nullptr};

 private:
  // Stem, inverted residual stages and the last 1x1 conv (`last` channels), norms of type Norm.
  template <typename Norm>
  torch::nn::Sequential make_features(int64_t last) const {
    const auto& o = options;
    constexpr int64_t kStemStride = 2;  // the 3x3 stem conv halves the input
    int64_t input_channel = detail::make_divisible(32 * o.width_mult(), o.round_nearest());
    torch::nn::Sequential layers;
    layers->push_back(ConvBnAct<ReLU6, Norm>(
        ConvBnActOptions(3, input_channel).stride(kStemStride).norm_layer(o.norm_layer())));
    detail::StridePlanner planner(o.output_stride(), kStemStride);
    for (size_t i = 0; i < o.stages().size(); ++i) {
      const auto& stage = o.stages()[i];
      TORCH_CHECK(stage.n > 0 && stage.c > 0 && stage.t >= 1 && (stage.s == 1 || stage.s == 2),
                  "MobileNetV2: stage ", i, " (t=", stage.t, ", c=", stage.c, ", n=", stage.n,
                  ", s=", stage.s, ") needs t >= 1, c > 0, n > 0, s in {1, 2}");
      const int64_t extra = detail::stage_dilation(o.stage_dilations(), i);
      const int64_t output_channel =
          detail::make_divisible(static_cast<double>(stage.c) * o.width_mult(),
                                 o.round_nearest());
      for (int64_t j = 0; j < stage.n; ++j) {
        const auto g = planner.next(j == 0 ? stage.s : 1);
        layers->push_back(InvertedResidual<ReLU6, Norm>(
            InvertedResidualOptions(input_channel, output_channel)
                .stride(g.stride)
                .dilation(g.dilation * extra)
                .expand_ratio(stage.t)
                .norm_layer(o.norm_layer())));
        input_channel = output_channel;
      }
    }
    layers->push_back(ConvBnAct<ReLU6, Norm>(
        ConvBnActOptions(input_channel, last).kernel_size(1).norm_layer(o.norm_layer())));
    return layers;
  }
};
TORCH_MODULE(MobileNetV2);

/// The seed model's architecture: MobileNetV2 for COCO's 80 classes, output stride 16
/// (dilated last stages), trained at 3x256x256.
inline MobileNetV2Options seed_model_options() {
  return MobileNetV2Options().num_classes(80).output_stride(16);
}

/// Input size the seed model was designed for (C, H, W).
inline std::vector<int64_t> seed_input_shape() { return {3, 256, 256}; }

}  // namespace mobilenet
