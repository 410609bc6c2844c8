#pragma once
/// \file models/prepare.hpp
/// A trained model prepared for inference: BatchNorm folded into the convolutions, activations
/// applied in place, no autograd (c10::InferenceMode), and the memory format and convolution
/// backend that measured fastest on an example input. The fusing itself is in fuse.hpp.

#include <mobilenet/models/fuse.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace mobilenet {

/// Activation layout of an InferenceModel.
enum class InferenceMemoryFormat {
  kMeasure,       ///< time both on the example input, keep the faster
  kChannelsLast,  ///< NHWC
  kContiguous,    ///< NCHW
};

/// Options for prepare_for_inference.
/// Example: `InferenceOptions().example_input(torch::randn({1, 3, 224, 224}))`.
struct InferenceOptions {
  /// Input the choices are measured on (N x C x H x W: batch and size matter). Default: none,
  /// which means 1 x 3 x 224 x 224 random values.
  TORCH_ARG(torch::Tensor, example_input) = {};
  /// Default kMeasure.
  TORCH_ARG(InferenceMemoryFormat, memory_format) = InferenceMemoryFormat::kMeasure;
  /// Also choose, per convolution, between ATen's dispatch (at::conv2d) and MKL-DNN by timing
  /// both on that layer's input (CPU only). Default true.
  TORCH_ARG(bool, choose_backends) = true;
  /// Timed runs per candidate when measuring; default 3.
  TORCH_ARG(int64_t, measure_runs) = 3;
};

namespace detail {

inline void apply_activation(InferenceNode::Act act, torch::Tensor& x) {
  if (act == InferenceNode::Act::kReLU6) {
    x.clamp_(0, 6);
  } else if (act == InferenceNode::Act::kReLU) {
    x.relu_();
  }
}

inline torch::Tensor run_conv(const InferenceNode& n, const torch::Tensor& x, bool mkldnn) {
  if (mkldnn) {
    return at::mkldnn_convolution(x, n.weight, n.bias, n.padding, n.stride, n.dilation,
                                  n.groups);
  }
  return at::conv2d(x, n.weight, n.bias, n.stride, n.padding, n.dilation, n.groups);
}

/// Runs `nodes` on x. With `chooser` (non-const nodes only), each convolution's backend is
/// timed and chosen first.
template <typename Nodes, typename Chooser>
torch::Tensor run_nodes(Nodes& nodes, torch::Tensor x, Chooser* chooser) {
  for (auto& n : nodes) {
    switch (n.kind) {
      case InferenceNode::Kind::kConv:
        if (chooser) (*chooser)(n, x);
        x = run_conv(n, x, n.use_mkldnn);
        apply_activation(n.act, x);
        break;
      case InferenceNode::Kind::kResidual: {
        auto y = run_nodes(n.body, x, chooser);
        x = y.add_(x);  // y is this block's own fresh output
        break;
      }
      case InferenceNode::Kind::kPoolFlatten:
        x = at::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
        break;
      case InferenceNode::Kind::kLinear:
        x = at::linear(x, n.weight, n.bias);
        apply_activation(n.act, x);
        break;
    }
  }
  return x;
}

inline void to_memory_format(std::vector<InferenceNode>& nodes, at::MemoryFormat format) {
  for (auto& n : nodes) {
    if (n.kind == InferenceNode::Kind::kConv) n.weight = n.weight.contiguous(format);
    to_memory_format(n.body, format);
  }
}

inline void set_backend(std::vector<InferenceNode>& nodes, bool mkldnn) {
  for (auto& n : nodes) {
    if (n.kind == InferenceNode::Kind::kConv) n.use_mkldnn = mkldnn;
    set_backend(n.body, mkldnn);
  }
}

inline double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Median seconds of `runs` calls after one warm-up.
template <typename Fn>
double median_seconds(Fn&& fn, int64_t runs) {
  fn();
  std::vector<double> t;
  for (int64_t i = 0; i < runs; ++i) {
    const double start = seconds_now();
    fn();
    t.push_back(seconds_now() - start);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace detail

/// A model prepared by prepare_for_inference: a flat list of fused steps, callable like a
/// module. forward() runs under c10::InferenceMode, so its outputs are inference tensors
/// (clone() one to use it with autograd).
class InferenceModel {
 public:
  InferenceModel(std::vector<InferenceNode> nodes, at::MemoryFormat format)
      : nodes_(std::move(nodes)), format_(format) {}

  /// Logits for a batch N x C x H x W (any layout; converted to memory_format()).
  torch::Tensor forward(const torch::Tensor& x) const {
    c10::InferenceMode guard;
    using None = void(const InferenceNode&, const torch::Tensor&);
    return detail::run_nodes(nodes_, x.contiguous(format_), static_cast<None*>(nullptr));
  }
  torch::Tensor operator()(const torch::Tensor& x) const { return forward(x); }

  /// The activation layout chosen.
  at::MemoryFormat memory_format() const { return format_; }
  /// Convolutions after folding, and how many of them call MKL-DNN directly.
  int64_t num_convolutions() const { return count(nodes_, false); }
  int64_t num_mkldnn_convolutions() const { return count(nodes_, true); }
  /// The steps, for inspection and tests.
  const std::vector<InferenceNode>& nodes() const { return nodes_; }

 private:
  static int64_t count(const std::vector<InferenceNode>& nodes, bool mkldnn_only) {
    int64_t c = 0;
    for (const auto& n : nodes) {
      c += n.kind == InferenceNode::Kind::kConv && (!mkldnn_only || n.use_mkldnn);
      c += count(n.body, mkldnn_only);
    }
    return c;
  }
  std::vector<InferenceNode> nodes_;
  at::MemoryFormat format_;
};

/// Prepares `features` -> global average pool -> flatten -> `classifier` (the layout of
/// MobileNetV1/V2's forward) for inference. The model itself is not modified.
inline InferenceModel prepare_for_inference(const torch::nn::Sequential& features,
                                            const torch::nn::Sequential& classifier,
                                            const InferenceOptions& options = {}) {
  TORCH_CHECK(options.measure_runs() >= 1, "prepare_for_inference: measure_runs must be >= 1, got ",
              options.measure_runs());
  std::vector<InferenceNode> nodes = detail::compile_classifier(features, classifier);
  torch::Tensor example = options.example_input();
  const bool cpu = nodes.front().weight.device().is_cpu();
  const bool measure_format = options.memory_format() == InferenceMemoryFormat::kMeasure;
  if (!example.defined() && (measure_format || options.choose_backends())) {
    example = torch::randn({1, 3, 224, 224}, nodes.front().weight.options());
  }
  std::vector<at::MemoryFormat> formats;
  if (options.memory_format() != InferenceMemoryFormat::kContiguous) {
    formats.push_back(at::MemoryFormat::ChannelsLast);
  }
  if (options.memory_format() != InferenceMemoryFormat::kChannelsLast) {
    formats.push_back(at::MemoryFormat::Contiguous);
  }
  std::vector<InferenceModel> candidates;
  double best = std::numeric_limits<double>::infinity();
  size_t best_index = 0;
  for (auto format : formats) {
    auto copy = nodes;
    detail::to_memory_format(copy, format);
    if (cpu && options.choose_backends()) {
      c10::InferenceMode guard;
      // Per convolution, on its real input: the faster of at::conv2d and MKL-DNN.
      auto choose = [&](InferenceNode& node, const torch::Tensor& in) {
        const double aten =
            detail::median_seconds([&] { detail::run_conv(node, in, false); }, options.measure_runs());
        const double mkl =
            detail::median_seconds([&] { detail::run_conv(node, in, true); }, options.measure_runs());
        node.use_mkldnn = mkl < aten;
      };
      detail::run_nodes(copy, example.contiguous(format), &choose);
    }
    candidates.emplace_back(std::move(copy), format);
    if (formats.size() > 1) {
      const auto& model = candidates.back();
      const double t = detail::median_seconds([&] { model.forward(example); },
                                              options.measure_runs());
      if (t < best) best = t, best_index = candidates.size() - 1;
    }
  }
  return candidates[best_index];
}

/// Prepares a MobileNetV1/V2 (anything with `features` and `classifier` Sequentials and the
/// forward features -> pool -> classifier) for inference. Exact within float rounding of the
/// eval-mode forward.
/// Example: `auto fast = prepare_for_inference(*model); auto logits = fast(images);`
template <typename Model>
InferenceModel prepare_for_inference(const Model& model, const InferenceOptions& options = {}) {
  return prepare_for_inference(model.features, model.classifier, options);
}

}  // namespace mobilenet
