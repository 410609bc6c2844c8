#pragma once
/// \file init.hpp
/// Weight initialization: the individual initializers and policies that apply them to a model.

#include <mobilenet/nn/norm_layer.hpp>

#include <torch/torch.h>

#include <string>

namespace mobilenet {

/// He / Kaiming normal with fan_out and the ReLU gain: std = sqrt(2 / (out_channels * k * k)).
/// Bias, if any, is zeroed.
inline void init_conv(torch::nn::Conv2dImpl& conv) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(conv.weight, /*a=*/0, torch::kFanOut, torch::kReLU);
  if (conv.bias.defined()) {
    torch::nn::init::zeros_(conv.bias);
  }
}

/// weight ~ N(mean, std), bias = 0.
inline void init_linear(torch::nn::LinearImpl& linear, double mean, double std) {
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(linear.weight, mean, std);
  if (linear.bias.defined()) {
    torch::nn::init::zeros_(linear.bias);
  }
}

/// Weight 1, bias 0, running mean 0, running var 1, batch counter 0 — a fresh BatchNorm.
template <typename BatchNormImpl>
void init_batch_norm(BatchNormImpl& bn) {
  torch::NoGradGuard no_grad;
  if (bn.weight.defined()) torch::nn::init::ones_(bn.weight);
  if (bn.bias.defined()) torch::nn::init::zeros_(bn.bias);
  if (bn.running_mean.defined()) bn.running_mean.zero_();
  if (bn.running_var.defined()) bn.running_var.fill_(1);
  if (bn.num_batches_tracked.defined()) bn.num_batches_tracked.zero_();
}

/// The same for any module is_batch_norm() accepts (SyncBatchNorm2d, a NormLayer's module),
/// through its parameter and buffer names.
inline void init_batch_norm(torch::nn::Module& norm) {
  torch::NoGradGuard no_grad;
  const auto params = norm.named_parameters(/*recurse=*/false);
  const auto buffers = norm.named_buffers(/*recurse=*/false);
  if (const auto* w = params.find("weight")) torch::nn::init::ones_(*w);
  if (const auto* b = params.find("bias")) torch::nn::init::zeros_(*b);
  if (const auto* m = buffers.find("running_mean")) m->zero_();
  if (const auto* v = buffers.find("running_var")) v->fill_(1);
  if (const auto* n = buffers.find("num_batches_tracked")) n->zero_();
}

/// Which initializer each layer kind gets. Conv: Kaiming normal (fan_out); norms: 1 / 0;
/// Linear: N(linear_mean, linear_std).
/// Example: `init_model(*model, InitPolicy::torchvision());`
struct InitPolicy {
  /// Default 0.
  TORCH_ARG(double, linear_mean) = 0.0;
  /// Default 0.01 (torchvision's MobileNetV2).
  TORCH_ARG(double, linear_std) = 0.01;

 public:
  /// torchvision's MobileNetV2 initialization (Linear std 0.01).
  static InitPolicy torchvision() { return InitPolicy(); }
  /// The seed project's initialization: Linear std 1.0. It trains markedly worse on
  /// multi-label data (see README); kept to reproduce the seed.
  static InitPolicy seed() { return InitPolicy().linear_std(1.0); }
};

/// Looks up a policy by name: "torchvision" or "seed".
inline InitPolicy init_policy(const std::string& name) {
  if (name == "torchvision") return InitPolicy::torchvision();
  TORCH_CHECK(name == "seed", "init policy must be 'torchvision' or 'seed', got '", name, "'");
  return InitPolicy::seed();
}

/// Applies `policy` to every Conv2d, BatchNorm (any is_batch_norm() module) and Linear in
/// `module` (recursively).
inline void init_model(torch::nn::Module& module, const InitPolicy& policy = {}) {
  module.apply([&](torch::nn::Module& m) {
    if (auto* conv = m.as<torch::nn::Conv2dImpl>()) {
      init_conv(*conv);
    } else if (auto* bn2 = m.as<torch::nn::BatchNorm2dImpl>()) {
      init_batch_norm(*bn2);
    } else if (auto* bn1 = m.as<torch::nn::BatchNorm1dImpl>()) {
      init_batch_norm(*bn1);
    } else if (auto* linear = m.as<torch::nn::LinearImpl>()) {
      init_linear(*linear, policy.linear_mean(), policy.linear_std());
    } else if (is_batch_norm(m)) {
      init_batch_norm(m);
    }
  });
}

}  // namespace mobilenet
