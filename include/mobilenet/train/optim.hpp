#pragma once
/// \file optim.hpp
/// Optimizers with weight decay kept off BatchNorm parameters and biases.

#include <torch/torch.h>

#include <memory>
#include <string>

namespace mobilenet {

/// Options for make_optimizer.
/// Example: `OptimizerOptions("adamw", 1e-3).weight_decay(0.05)`.
struct OptimizerOptions {
  OptimizerOptions(std::string kind, double lr) : kind_(std::move(kind)), lr_(lr) {}
  /// "adamw" or "sgd".
  TORCH_ARG(std::string, kind);
  TORCH_ARG(double, lr);
  /// Default 1e-4 (adamw) — applied to conv and linear weights only unless decay_all.
  TORCH_ARG(double, weight_decay) = 1e-4;
  /// sgd: default 0.9.
  TORCH_ARG(double, momentum) = 0.9;
  /// sgd: default true.
  TORCH_ARG(bool, nesterov) = true;
  /// adamw: default 0.9, 0.999.
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.999;
  /// Also decay 1-D parameters (BN weight/bias, biases), as PyTorch does by default. Default false.
  TORCH_ARG(bool, decay_all) = false;
};

/// AdamW or SGD over all parameters of `module`, in two groups: weights with dim > 1
/// (decayed) and the rest (BN and biases, not decayed unless decay_all). Frozen parameters
/// are included: they never get a gradient, which the optimizers skip, so they stay
/// untouched until unfrozen, with no new optimizer needed.
inline std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& module,
                                                               const OptimizerOptions& o) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : module.parameters()) {
    (p.dim() > 1 || o.decay_all() ? decay : no_decay).push_back(p);
  }
  TORCH_CHECK(!decay.empty() || !no_decay.empty(), "make_optimizer: the module has no parameters");
  if (o.kind() == "adamw") {
    auto base = torch::optim::AdamWOptions(o.lr())
                    .weight_decay(o.weight_decay())
                    .betas(std::make_tuple(o.beta1(), o.beta2()));
    std::vector<torch::optim::OptimizerParamGroup> groups;
    auto nd = base;
    nd.weight_decay(0);
    if (!decay.empty()) groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(base));
    if (!no_decay.empty()) groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(nd));
    return std::make_unique<torch::optim::AdamW>(std::move(groups), base);
  }
  TORCH_CHECK(o.kind() == "sgd", "make_optimizer: kind must be adamw or sgd, got '", o.kind(),
              "'");
  auto base = torch::optim::SGDOptions(o.lr())
                  .momentum(o.momentum())
                  .nesterov(o.nesterov())
                  .weight_decay(o.weight_decay());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto nd = base;
  nd.weight_decay(0);
  if (!decay.empty()) groups.emplace_back(decay, std::make_unique<torch::optim::SGDOptions>(base));
  if (!no_decay.empty()) groups.emplace_back(no_decay, std::make_unique<torch::optim::SGDOptions>(nd));
  return std::make_unique<torch::optim::SGD>(std::move(groups), base);
}

}  // namespace mobilenet
