#pragma once
/// \file
/// Multi-label classification losses on logits (N x C, one independent sigmoid per class).
///
/// Each loss exists as a free function and as a module (Options + Impl + TORCH_MODULE):
///
///     auto l1 = mobilenet::sigmoid_focal_loss(logits, targets);          // mean by default
///     mobilenet::AsymmetricLoss asl(mobilenet::AsymmetricLossOptions().gamma_neg(4));
///     auto l2 = asl(logits, targets);
///
/// Common contract:
/// - targets have the shape of logits and hold values in [0, 1] (soft targets allowed);
/// - float16 / bfloat16 inputs (autocast) are computed in float32 and the loss is float32;
///   float64 is computed in float64 (gradient checks) and must be paired with float64;
/// - shape, dtype or device mismatches throw c10::Error naming both shapes;
/// - loss and gradients stay finite for |logit| <= 100.

#include <mobilenet/nn/detail/losses_common.hpp>
#include <mobilenet/nn/reduction.hpp>

#include <torch/torch.h>

#include <string>

namespace mobilenet {

// ---------------------------------------------------------------------------------------------
// BCE with logits

/// Options for BCEWithLogitsLoss / bce_with_logits_loss.
struct BCEWithLogitsLossOptions {
  /// Weight of the positive term per class (shape [C]); undefined = 1 for all. Values > 1 trade
  /// precision for recall, e.g. `negatives / positives` per class.
  TORCH_ARG(torch::Tensor, pos_weight) = {};
  /// Reduction over elements. Default: mean.
  TORCH_ARG(Reduction, reduction) = Reduction::mean;
};

/// Binary cross-entropy on logits, one term per (sample, class). Wraps LibTorch's fused
/// kernel (log-sum-exp form, exact for large |logits|).
/// Example: `bce_with_logits_loss(x, y, BCEWithLogitsLossOptions().pos_weight(w))`.
inline torch::Tensor bce_with_logits_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                          const BCEWithLogitsLossOptions& options = {}) {
  auto [x, t] = detail::losses_prepare("bce_with_logits_loss", logits, targets);
  torch::Tensor pw;
  if (options.pos_weight().defined()) {
    const auto& w = options.pos_weight();
    TORCH_CHECK(x.dim() >= 1 && w.numel() == x.size(-1), "bce_with_logits_loss: pos_weight shape ",
                detail::losses_shape_string(w), " must have one value per class of logits shape ",
                detail::losses_shape_string(x));
    pw = w.to(x.options()).reshape({x.size(-1)});
  }
  // ATen reduces itself: its backward for a mean divides (sigmoid - t) * grad by the count,
  // which rounds differently from reducing here, and PyTorch's loss takes that path.
  const int64_t reduction = options.reduction() == Reduction::mean  ? at::Reduction::Mean
                            : options.reduction() == Reduction::sum ? at::Reduction::Sum
                                                                    : at::Reduction::None;
  return torch::binary_cross_entropy_with_logits(x, t, /*weight=*/{}, pw, reduction);
}

/// Module form of bce_with_logits_loss(). pos_weight is a buffer, so it follows `.to(device)`.
class BCEWithLogitsLossImpl : public torch::nn::Cloneable<BCEWithLogitsLossImpl> {
 public:
  explicit BCEWithLogitsLossImpl(BCEWithLogitsLossOptions options = {})
      : options(std::move(options)) {
    reset();
  }
  void reset() override {
    if (options.pos_weight().defined()) {
      TORCH_CHECK(options.pos_weight().dim() == 1, "BCEWithLogitsLoss: pos_weight must be 1-D "
                  "(one value per class), got shape ",
                  detail::losses_shape_string(options.pos_weight()));
      pos_weight = register_buffer("pos_weight", options.pos_weight().clone());
    }
  }
  torch::Tensor forward(const torch::Tensor& logits, const torch::Tensor& targets) {
    auto opts = options;
    opts.pos_weight(pos_weight);
    return bce_with_logits_loss(logits, targets, opts);
  }
  void pretty_print(std::ostream& os) const override {
    os << "mobilenet::BCEWithLogitsLoss(reduction=" << to_string(options.reduction());
    if (pos_weight.defined()) os << ", pos_weight=[" << pos_weight.numel() << "]";
    os << ")";
  }
  BCEWithLogitsLossOptions options;
  torch::Tensor pos_weight;
};
TORCH_MODULE(BCEWithLogitsLoss);

// ---------------------------------------------------------------------------------------------
// Sigmoid focal loss

/// Options for SigmoidFocalLoss / sigmoid_focal_loss (Lin et al., "Focal Loss for Dense Object
/// Detection", 2017).
struct SigmoidFocalLossOptions {
  /// Weight of positives; negatives get 1 - alpha. Negative disables weighting. Default 0.25.
  TORCH_ARG(double, alpha) = 0.25;
  /// Exponent of the modulating factor (1 - p_t); 0 gives plain BCE. Default 2.
  TORCH_ARG(double, gamma) = 2.0;
  /// Reduction over elements. Default: mean (torchvision's function defaults to none).
  TORCH_ARG(Reduction, reduction) = Reduction::mean;
};

/// alpha_t * (1 - p_t)^gamma * BCE, with p_t = p*t + (1-p)*(1-t). Computed with the same
/// operations as `torchvision.ops.sigmoid_focal_loss`, so values and gradients match it.
/// Example: `sigmoid_focal_loss(x, y, SigmoidFocalLossOptions().gamma(1))`.
inline torch::Tensor sigmoid_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                        const SigmoidFocalLossOptions& options = {}) {
  TORCH_CHECK(options.gamma() >= 0, "sigmoid_focal_loss: gamma must be >= 0, got ",
              options.gamma());
  auto [x, t] = detail::losses_prepare("sigmoid_focal_loss", logits, targets);
  auto p = torch::sigmoid(x);
  auto ce = torch::binary_cross_entropy_with_logits(x, t, {}, {}, at::Reduction::None);
  auto p_t = p * t + (1 - p) * (1 - t);
  auto loss = ce * detail::losses_focus(1 - p_t, options.gamma());
  if (options.alpha() >= 0) {
    const double a = options.alpha();
    loss = (a * t + (1 - a) * (1 - t)) * loss;
  }
  return detail::losses_reduce(loss, options.reduction());
}

/// Module form of sigmoid_focal_loss().
class SigmoidFocalLossImpl : public torch::nn::Cloneable<SigmoidFocalLossImpl> {
 public:
  explicit SigmoidFocalLossImpl(SigmoidFocalLossOptions options = {}) : options(options) {
    reset();
  }
  void reset() override {
    TORCH_CHECK(options.gamma() >= 0, "SigmoidFocalLoss: gamma must be >= 0, got ",
                options.gamma());
    TORCH_CHECK(options.alpha() <= 1, "SigmoidFocalLoss: alpha must be <= 1 (negative disables "
                "it), got ", options.alpha());
  }
  torch::Tensor forward(const torch::Tensor& logits, const torch::Tensor& targets) {
    return sigmoid_focal_loss(logits, targets, options);
  }
  void pretty_print(std::ostream& os) const override {
    os << "mobilenet::SigmoidFocalLoss(alpha=" << options.alpha() << ", gamma=" << options.gamma()
       << ", reduction=" << to_string(options.reduction()) << ")";
  }
  SigmoidFocalLossOptions options;
};
TORCH_MODULE(SigmoidFocalLoss);

// ---------------------------------------------------------------------------------------------
// Asymmetric loss

/// Options for AsymmetricLoss / asymmetric_loss (Ridnik et al., "Asymmetric Loss For
/// Multi-Label Classification", ICCV 2021). Defaults are the paper's.
struct AsymmetricLossOptions {
  /// Focusing exponent for negatives (down-weights easy negatives). Default 4.
  TORCH_ARG(double, gamma_neg) = 4.0;
  /// Focusing exponent for positives. Default 1.
  TORCH_ARG(double, gamma_pos) = 1.0;
  /// Probability margin m: negatives use p_m = max(p - m, 0), so very easy negatives (p < m)
  /// contribute nothing. 0 disables. Default 0.05.
  TORCH_ARG(double, clip) = 0.05;
  /// Probabilities are clamped to >= eps before the log. Default 1e-8.
  TORCH_ARG(double, eps) = 1e-8;
  /// Reduction over elements. Default: mean (the authors' code returns the sum).
  TORCH_ARG(Reduction, reduction) = Reduction::mean;
};

/// Per element: -( t * (1-p)^gamma_pos * log(p) + (1-t) * p_m^gamma_neg * log(1-p_m) ),
/// p = sigmoid(logit), p_m = max(p - clip, 0), both logs of probabilities clamped to >= eps
/// as in the authors' code. Soft targets interpolate the two terms linearly. The gradient
/// flows through the focusing weights too (the paper's gradient analysis assumes so).
/// Example: `asymmetric_loss(x, y, AsymmetricLossOptions().gamma_neg(2).clip(0))`.
inline torch::Tensor asymmetric_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                     const AsymmetricLossOptions& options = {}) {
  TORCH_CHECK(options.gamma_neg() >= 0 && options.gamma_pos() >= 0,
              "asymmetric_loss: gamma_neg and gamma_pos must be >= 0, got ", options.gamma_neg(),
              " and ", options.gamma_pos());
  TORCH_CHECK(options.clip() >= 0 && options.clip() < 1,
              "asymmetric_loss: clip must be in [0, 1), got ", options.clip());
  TORCH_CHECK(options.eps() > 0, "asymmetric_loss: eps must be > 0, got ", options.eps());
  auto [x, t] = detail::losses_prepare("asymmetric_loss", logits, targets);
  auto p = torch::sigmoid(x);
  // 1 - p as sigmoid(-x): in float32, 1 - sigmoid(x) is 0 from x ~ 17 on, and log(1 - p) of
  // a confident negative would be clamped to log(eps) instead of its true value.
  auto one_minus_p = torch::sigmoid(-x);
  // 1 - p_m = 1 - max(p - m, 0) = min(1 - p + m, 1), the authors' form.
  auto q = options.clip() > 0 ? (one_minus_p + options.clip()).clamp_max(1) : one_minus_p;
  auto pos = t * detail::losses_focus(one_minus_p, options.gamma_pos()) *
             torch::log(p.clamp_min(options.eps()));
  auto neg = (1 - t) * detail::losses_focus(1 - q, options.gamma_neg()) *
             torch::log(q.clamp_min(options.eps()));
  return detail::losses_reduce(-(pos + neg), options.reduction());
}

/// Module form of asymmetric_loss().
class AsymmetricLossImpl : public torch::nn::Cloneable<AsymmetricLossImpl> {
 public:
  explicit AsymmetricLossImpl(AsymmetricLossOptions options = {}) : options(options) { reset(); }
  void reset() override {
    TORCH_CHECK(options.gamma_neg() >= 0 && options.gamma_pos() >= 0,
                "AsymmetricLoss: gamma_neg and gamma_pos must be >= 0, got ",
                options.gamma_neg(), " and ", options.gamma_pos());
    TORCH_CHECK(options.clip() >= 0 && options.clip() < 1,
                "AsymmetricLoss: clip must be in [0, 1), got ", options.clip());
    TORCH_CHECK(options.eps() > 0, "AsymmetricLoss: eps must be > 0, got ", options.eps());
  }
  torch::Tensor forward(const torch::Tensor& logits, const torch::Tensor& targets) {
    return asymmetric_loss(logits, targets, options);
  }
  void pretty_print(std::ostream& os) const override {
    os << "mobilenet::AsymmetricLoss(gamma_neg=" << options.gamma_neg()
       << ", gamma_pos=" << options.gamma_pos() << ", clip=" << options.clip()
       << ", eps=" << options.eps() << ", reduction=" << to_string(options.reduction()) << ")";
  }
  AsymmetricLossOptions options;
};
TORCH_MODULE(AsymmetricLoss);

// ---------------------------------------------------------------------------------------------
// Soft-F1 loss

/// How soft_f1_loss averages F1 over classes.
enum class F1Average {
  macro,  ///< 1 - F1 per class (counts over the batch), then averaged: rare classes weigh as much
  micro   ///< one F1 from counts summed over all classes and samples
};

/// Options for SoftF1Loss / soft_f1_loss.
struct SoftF1LossOptions {
  /// macro or micro. Default: macro.
  TORCH_ARG(F1Average, average) = F1Average::macro;
  /// Added to the denominator 2TP + FP + FN so it is never 0. Default 1e-8.
  TORCH_ARG(double, eps) = 1e-8;
  /// macro: none gives one value per class ([C]), mean/sum reduce them; micro always returns
  /// one value (0-dim). Default: mean.
  TORCH_ARG(Reduction, reduction) = Reduction::mean;
};

/// 1 - soft F1, with the counts of F1 replaced by their expectations under p = sigmoid(logit):
/// TP = sum p*t, FP = sum p*(1-t), FN = sum (1-p)*t over the batch (dimension 0; all leading
/// dimensions are treated as samples), F1 = 2TP / (2TP + FP + FN + eps). Differentiable,
/// and it rewards recall and precision symmetrically. A class with no positive target in the
/// batch has TP = 0 and F1 = 0 whatever the logits: a constant 1 with no gradient. Use large
/// batches (or mix with BCE) so most classes have positives.
/// Example: `soft_f1_loss(x, y, SoftF1LossOptions().average(F1Average::micro))`.
inline torch::Tensor soft_f1_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                  const SoftF1LossOptions& options = {}) {
  TORCH_CHECK(options.eps() > 0, "soft_f1_loss: eps must be > 0, got ", options.eps());
  auto [x, t] = detail::losses_prepare("soft_f1_loss", logits, targets);
  TORCH_CHECK(x.dim() >= 1, "soft_f1_loss: logits must have a class dimension, got shape ",
              detail::losses_shape_string(x));
  const auto classes = x.size(-1);
  auto p = torch::sigmoid(x).reshape({-1, classes});
  t = t.reshape({-1, classes});
  const bool micro = options.average() == F1Average::micro;
  auto reduce = [&](const torch::Tensor& v) { return micro ? v.sum() : v.sum(0); };
  auto tp = reduce(p * t);
  auto fp = reduce(p * (1 - t));
  auto fn = reduce((1 - p) * t);
  auto loss = 1 - 2 * tp / (2 * tp + fp + fn + options.eps());
  return micro ? loss : detail::losses_reduce(loss, options.reduction());
}

/// Module form of soft_f1_loss().
class SoftF1LossImpl : public torch::nn::Cloneable<SoftF1LossImpl> {
 public:
  explicit SoftF1LossImpl(SoftF1LossOptions options = {}) : options(options) { reset(); }
  void reset() override {
    TORCH_CHECK(options.eps() > 0, "SoftF1Loss: eps must be > 0, got ", options.eps());
  }
  torch::Tensor forward(const torch::Tensor& logits, const torch::Tensor& targets) {
    return soft_f1_loss(logits, targets, options);
  }
  void pretty_print(std::ostream& os) const override {
    os << "mobilenet::SoftF1Loss(average="
       << (options.average() == F1Average::micro ? "micro" : "macro")
       << ", eps=" << options.eps() << ", reduction=" << to_string(options.reduction()) << ")";
  }
  SoftF1LossOptions options;
};
TORCH_MODULE(SoftF1Loss);

// ---------------------------------------------------------------------------------------------
// By name

/// Every loss's options, and the name of the one to build: what a command line or a config
/// describes. Example: `LossOptions("asl").asl(AsymmetricLossOptions().gamma_neg(4))`.
struct LossOptions {
  explicit LossOptions(std::string name = "bce") : name_(std::move(name)) {}
  /// "bce", "focal", "asl" or "soft_f1" (macro). Default "bce".
  TORCH_ARG(std::string, name);
  /// Options of each loss; only the named one is used.
  TORCH_ARG(BCEWithLogitsLossOptions, bce);
  TORCH_ARG(SigmoidFocalLossOptions, focal);
  TORCH_ARG(AsymmetricLossOptions, asl);
  TORCH_ARG(SoftF1LossOptions, soft_f1);
};

/// The loss module `options` names, built with its options. Call it as
/// `loss.forward(logits, targets)`. Throws std::invalid_argument for an unknown name.
inline torch::nn::AnyModule make_loss(const LossOptions& options) {
  using torch::nn::AnyModule;
  const std::string& name = options.name();
  if (name == "bce") return AnyModule(BCEWithLogitsLoss(options.bce()));
  if (name == "focal") return AnyModule(SigmoidFocalLoss(options.focal()));
  if (name == "asl") return AnyModule(AsymmetricLoss(options.asl()));
  if (name == "soft_f1") return AnyModule(SoftF1Loss(options.soft_f1()));
  throw std::invalid_argument("unknown loss '" + name + "' (expected bce, focal, asl or soft_f1)");
}

/// A loss module with default options from its name and `reduction`.
/// Example: `auto loss = make_loss("asl"); loss.forward(logits, targets);`.
inline torch::nn::AnyModule make_loss(const std::string& name,
                                     Reduction reduction = Reduction::mean) {
  LossOptions options(name);
  options.bce().reduction(reduction);
  options.focal().reduction(reduction);
  options.asl().reduction(reduction);
  options.soft_f1().reduction(reduction);
  return make_loss(options);
}

}  // namespace mobilenet
