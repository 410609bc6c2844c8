#pragma once
/// \file models/fuse.hpp
/// Fusing a trained model into a flat list of steps: each BatchNorm2d folded into the
/// convolution before it, each ReLU/ReLU6 attached to the layer it follows, Dropout and
/// Identity dropped (eval mode). prepare.hpp runs the result.

#include <mobilenet/nn/activation.hpp>
#include <mobilenet/nn/inverted_residual.hpp>
#include <mobilenet/nn/sequential_like.hpp>

#include <torch/torch.h>
#include <torch/version.h>

#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace mobilenet {

/// One step of a model fused for inference (see prepare_for_inference): a convolution or
/// linear layer with its BatchNorm folded in and its activation, a residual branch, or the
/// pooling head.
struct InferenceNode {
  enum class Kind { kConv, kResidual, kPoolFlatten, kLinear };
  enum class Act { kNone, kReLU, kReLU6 };
  /// How a convolution runs: ATen's dispatch, MKL-DNN directly, or (1x1, stride 1, NHWC input)
  /// one matrix product on the N*H*W x C view of the activation.
  enum class Backend { kATen, kMkldnn, kGemm };
  Kind kind = Kind::kConv;
  torch::Tensor weight, bias;
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;
  bool batchnorm_folded = false;
  Backend backend = Backend::kATen;
  Act act = Act::kNone;
  std::vector<InferenceNode> body;  // kResidual: the branch added to its input
};

namespace detail {

inline InferenceNode& last_unactivated(std::vector<InferenceNode>& out, const char* what) {
  TORCH_CHECK(!out.empty() && (out.back().kind == InferenceNode::Kind::kConv ||
                               out.back().kind == InferenceNode::Kind::kLinear) &&
                  out.back().act == InferenceNode::Act::kNone,
              "prepare_for_inference: ", what,
              " must directly follow a convolution or linear layer");
  return out.back();
}

/// BN(conv(x)) = conv'(x) with w' = w * s and b' = beta + (b - mean) * s, s = gamma / sqrt(var
/// + eps), per output channel. Computed in double so the fold adds no rounding of its own.
inline void fold_batchnorm(InferenceNode& conv, torch::nn::BatchNorm2dImpl& bn) {
  TORCH_CHECK(conv.kind == InferenceNode::Kind::kConv && !conv.batchnorm_folded,
              "prepare_for_inference: BatchNorm2d must directly follow a convolution");
  TORCH_CHECK(bn.running_mean.defined() && bn.running_var.defined(),
              "prepare_for_inference: BatchNorm2d without running statistics "
              "(track_running_stats=false) cannot be folded");
  const auto dtype = conv.weight.scalar_type();
  auto mean = bn.running_mean.to(torch::kDouble);
  auto scale = 1.0 / (bn.running_var.to(torch::kDouble) + bn.options.eps()).sqrt();
  auto shift = -mean * scale;
  if (bn.options.affine()) {
    scale = scale * bn.weight.to(torch::kDouble);
    shift = bn.bias.to(torch::kDouble) - mean * scale;
  }
  auto w = conv.weight.to(torch::kDouble) * scale.view({-1, 1, 1, 1});
  auto b = conv.bias.to(torch::kDouble) * scale + shift;
  conv.weight = w.to(dtype);
  conv.bias = b.to(dtype);
  conv.batchnorm_folded = true;
}

template <typename Impl>
bool residual_branch(const std::shared_ptr<torch::nn::Module>& m,
                     std::shared_ptr<torch::nn::Module>* branch) {
  if (auto block = std::dynamic_pointer_cast<Impl>(m)) {
    *branch = block->options.use_residual() ? block->conv.ptr() : nullptr;
    return true;
  }
  return false;
}

/// The alternative `T` of an options variant, or null: LibTorch 2.x's c10::variant is
/// std::variant, 1.13's is its own type with c10::get_if.
template <typename T, typename Variant>
const T* variant_get_if(const Variant& v) {
#if TORCH_VERSION_MAJOR >= 2
  return std::get_if<T>(&v);
#else
  return c10::get_if<T>(&v);
#endif
}

/// Appends the nodes equivalent to `m`'s eval forward to `out`. Only modules whose forward is
/// known are accepted; anything else is an error naming its type and its path in the model
/// (`path`, "features.3.conv" style), never a silent guess.
inline void compile_module(const std::shared_ptr<torch::nn::Module>& m,
                           std::vector<InferenceNode>& out, const std::string& path = "") {
  using InferenceAct = InferenceNode::Act;
  auto child_path = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
  auto compile_children = [&](std::vector<InferenceNode>& to) {
    for (const auto& child : m->named_children()) {
      compile_module(child.value(), to, child_path(child.key()));
    }
  };
  if (auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(m)) {
    const auto& o = conv->options;
    const auto* pad = detail::variant_get_if<torch::ExpandingArray<2>>(o.padding());
    TORCH_CHECK(pad && detail::variant_get_if<torch::enumtype::kZeros>(o.padding_mode()),
                "prepare_for_inference: only Conv2d with numeric zero padding is supported");
    InferenceNode n;
    n.kind = InferenceNode::Kind::kConv;
    n.weight = conv->weight.detach().clone();
    n.bias = o.bias() ? conv->bias.detach().clone()
                      : torch::zeros({o.out_channels()}, conv->weight.options());
    n.stride = std::vector<int64_t>(o.stride()->begin(), o.stride()->end());
    n.padding = std::vector<int64_t>((*pad)->begin(), (*pad)->end());
    n.dilation = std::vector<int64_t>(o.dilation()->begin(), o.dilation()->end());
    n.groups = o.groups();
    out.push_back(std::move(n));
  } else if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) {
    TORCH_CHECK(!out.empty(), "prepare_for_inference: BatchNorm2d must follow a convolution");
    fold_batchnorm(out.back(), *bn);
  } else if (std::dynamic_pointer_cast<ReLU6Impl>(m) ||
             std::dynamic_pointer_cast<torch::nn::ReLU6Impl>(m)) {
    last_unactivated(out, "ReLU6").act = InferenceAct::kReLU6;
  } else if (std::dynamic_pointer_cast<ReLUImpl>(m) ||
             std::dynamic_pointer_cast<torch::nn::ReLUImpl>(m)) {
    last_unactivated(out, "ReLU").act = InferenceAct::kReLU;
  } else if (std::dynamic_pointer_cast<torch::nn::DropoutImpl>(m) ||
             std::dynamic_pointer_cast<torch::nn::IdentityImpl>(m)) {
    // identities in eval mode
  } else if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(m)) {
    InferenceNode n;
    n.kind = InferenceNode::Kind::kLinear;
    n.weight = linear->weight.detach().clone();
    n.bias = linear->options.bias() ? linear->bias.detach().clone()
                                    : torch::zeros({linear->options.out_features()},
                                                   linear->weight.options());
    out.push_back(std::move(n));
  } else if (std::shared_ptr<torch::nn::Module> branch;
             residual_branch<InvertedResidualImpl<ReLU6, torch::nn::BatchNorm2d>>(m, &branch) ||
             residual_branch<InvertedResidualImpl<ReLU6, torch::nn::AnyModule>>(m, &branch) ||
             residual_branch<InvertedResidualImpl<ReLU, torch::nn::BatchNorm2d>>(m, &branch) ||
             residual_branch<InvertedResidualImpl<ReLU, torch::nn::AnyModule>>(m, &branch)) {
    if (branch) {
      InferenceNode n;
      n.kind = InferenceNode::Kind::kResidual;
      compile_module(branch, n.body, child_path("conv"));  // the block registers it as "conv"
      out.push_back(std::move(n));
    } else {
      compile_children(out);
    }
  } else if (std::dynamic_pointer_cast<torch::nn::SequentialImpl>(m) ||
             std::dynamic_pointer_cast<SequentialLike>(m)) {
    compile_children(out);
  } else {
    TORCH_CHECK(false, "prepare_for_inference: unsupported module ", m->name(),
                path.empty() ? "" : " at '" + path + "'", " (supported: Conv2d, BatchNorm2d, ReLU, ReLU6, Dropout, Identity, Linear, "
                "Sequential, ConvBnAct, DepthwiseSeparable, InvertedResidual)");
  }
}

/// The steps of `features` -> global average pool -> flatten -> `classifier`, BatchNorm
/// folded, in the weights' dtype and device; no layout or backend chosen yet. Shared by
/// prepare_for_inference and the ONNX export, so both run the same folded graph.
inline std::vector<InferenceNode> compile_classifier(const torch::nn::Sequential& features,
                                                     const torch::nn::Sequential& classifier) {
  torch::NoGradGuard no_grad;
  std::vector<InferenceNode> nodes;
  compile_module(features.ptr(), nodes, "features");
  InferenceNode pool;
  pool.kind = InferenceNode::Kind::kPoolFlatten;
  nodes.push_back(pool);
  compile_module(classifier.ptr(), nodes, "classifier");
  return nodes;
}

}  // namespace detail
}  // namespace mobilenet
