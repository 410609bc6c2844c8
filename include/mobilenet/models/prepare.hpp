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
#include <optional>
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
  /// How each convolution runs. Default (none): on CPU, the fastest of ATen's dispatch
  /// (at::conv2d), MKL-DNN and, for a 1x1 stride-1 convolution of an NHWC activation, one
  /// GEMM, timed per convolution on its real input; ATen's dispatch elsewhere. A backend given
  /// here is used for every convolution it applies to (kGemm: ATen's for the others).
  TORCH_ARG(std::optional<InferenceNode::Backend>, backend) = std::nullopt;
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

/// Whether convolution `n` is one matrix product: 1x1, stride 1, unpadded, ungrouped.
inline bool is_pointwise(const InferenceNode& n) {
  const auto all = [](const std::vector<int64_t>& v, int64_t value) {
    return std::all_of(v.begin(), v.end(), [&](int64_t e) { return e == value; });
  };
  return n.kind == InferenceNode::Kind::kConv && n.groups == 1 && n.weight.size(2) == 1 &&
         n.weight.size(3) == 1 && all(n.stride, 1) && all(n.padding, 0);
}

/// Whether `n` can run as one GEMM on `x`: on an NHWC activation, a pointwise convolution is
/// (N*H*W x C_in) @ (C_in x C_out) without copying.
inline bool gemm_applies(const InferenceNode& n, const torch::Tensor& x) {
  return is_pointwise(n) && x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

inline torch::Tensor run_gemm(const InferenceNode& n, const torch::Tensor& x) {
  const int64_t batch = x.size(0), h = x.size(2), w = x.size(3);
  const int64_t c_out = n.weight.size(0);
  // NHWC storage: the permuted view is contiguous, so both reshapes are views, and the result's
  // permute back is channels-last NCHW like a convolution's output.
  const auto rows = x.permute({0, 2, 3, 1}).reshape({batch * h * w, x.size(1)});
  const auto weight = n.weight.reshape({c_out, n.weight.size(1)}).t();
  const auto y = n.bias.defined() ? at::addmm(n.bias, rows, weight) : at::mm(rows, weight);
  return y.view({batch, h, w, c_out}).permute({0, 3, 1, 2});
}

inline torch::Tensor run_conv(const InferenceNode& n, const torch::Tensor& x,
                              InferenceNode::Backend backend) {
  using Backend = InferenceNode::Backend;
  if (backend == Backend::kGemm && gemm_applies(n, x)) return run_gemm(n, x);
  if (backend == Backend::kMkldnn) {
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
        x = run_conv(n, x, n.backend);
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

inline void set_backend(std::vector<InferenceNode>& nodes, InferenceNode::Backend backend) {
  for (auto& n : nodes) {
    if (n.kind == InferenceNode::Kind::kConv) {
      n.backend = backend != InferenceNode::Backend::kGemm || is_pointwise(n)
                      ? backend
                      : InferenceNode::Backend::kATen;
    }
    set_backend(n.body, backend);
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
  /// Convolutions after folding, and how many of them run on each backend.
  int64_t num_convolutions() const { return count(nodes_, std::nullopt); }
  int64_t num_mkldnn_convolutions() const {
    return count(nodes_, InferenceNode::Backend::kMkldnn);
  }
  int64_t num_gemm_convolutions() const { return count(nodes_, InferenceNode::Backend::kGemm); }
  /// The steps, for inspection and tests.
  const std::vector<InferenceNode>& nodes() const { return nodes_; }

 private:
  static int64_t count(const std::vector<InferenceNode>& nodes,
                       std::optional<InferenceNode::Backend> backend) {
    int64_t c = 0;
    for (const auto& n : nodes) {
      c += n.kind == InferenceNode::Kind::kConv && (!backend || n.backend == *backend);
      c += count(n.body, backend);
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
  const bool measure_backends = cpu && !options.backend().has_value();
  TORCH_CHECK(cpu || options.backend().value_or(InferenceNode::Backend::kATen) !=
                         InferenceNode::Backend::kMkldnn,
              "prepare_for_inference: backend kMkldnn runs on CPU only; the model is on ",
              nodes.front().weight.device());
  if (!example.defined() && (measure_format || measure_backends)) {
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
    if (options.backend()) detail::set_backend(copy, *options.backend());
    if (measure_backends) {
      c10::InferenceMode guard;
      // Per convolution, on its real input: the fastest of at::conv2d, MKL-DNN and (where it
      // applies) one GEMM. Which wins depends on the LibTorch build, its BLAS and the shape.
      auto choose = [&](InferenceNode& node, const torch::Tensor& in) {
        using Backend = InferenceNode::Backend;
        std::vector<Backend> backends{Backend::kATen, Backend::kMkldnn};
        if (detail::gemm_applies(node, in)) backends.push_back(Backend::kGemm);
        double fastest = std::numeric_limits<double>::infinity();
        for (auto backend : backends) {
          const double t = detail::median_seconds([&] { detail::run_conv(node, in, backend); },
                                                  options.measure_runs());
          if (t < fastest) fastest = t, node.backend = backend;
        }
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
