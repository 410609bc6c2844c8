#pragma once
/// \file optim.hpp
/// Optimizers with weight decay kept off BatchNorm parameters and biases.

#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
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

/// torch::optim::AdamW with the arithmetic of the Python `torch.optim.AdamW` of the same
/// release, so a C++ run and its Python twin round alike. From 2.0 Python updates the first
/// moment with `lerp_` where LibTorch's C++ AdamW (and Python 1.13) use `mul_` + `add_`: one
/// rounding apart per step, which a chaotic training run amplifies past 0.02 mAP. State, options
/// and checkpoints are the base class's.
class AdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
#if TORCH_VERSION_MAJOR >= 2
  torch::Tensor step(LossClosure closure = nullptr) override {
    torch::NoGradGuard no_grad;
    torch::Tensor loss;
    if (closure) {
      at::AutoGradMode enable_grad(true);
      loss = closure();
    }
    for (auto& group : param_groups_) {
      const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
      const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        const auto& grad = p.grad();
        TORCH_CHECK(!grad.is_sparse(), "AdamW does not support sparse gradients");
        auto& slot = state_[p.unsafeGetTensorImpl()];
        if (!slot) {
          auto fresh = std::make_unique<torch::optim::AdamWParamState>();
          fresh->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
          fresh->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
          if (o.amsgrad()) fresh->max_exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
          slot = std::move(fresh);
        }
        auto& st = static_cast<torch::optim::AdamWParamState&>(*slot);
        st.step(st.step() + 1);
        if (o.weight_decay() != 0) p.mul_(1 - o.lr() * o.weight_decay());
        st.exp_avg().lerp_(grad, 1 - beta1);
        st.exp_avg_sq().mul_(beta2).addcmul_(grad, grad, 1 - beta2);
        const double bias1 = 1 - std::pow(beta1, static_cast<double>(st.step()));
        const double bias2 = 1 - std::pow(beta2, static_cast<double>(st.step()));
        torch::Tensor second = st.exp_avg_sq();
        if (o.amsgrad()) {
          torch::maximum_out(st.max_exp_avg_sq(), st.max_exp_avg_sq(), st.exp_avg_sq());
          second = st.max_exp_avg_sq();
        }
        auto denom = (second.sqrt() / std::sqrt(bias2)).add_(o.eps());
        p.addcdiv_(st.exp_avg(), denom, -o.lr() / bias1);
      }
    }
    return loss;
  }
#endif
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
    return std::make_unique<AdamW>(std::move(groups), base);
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
