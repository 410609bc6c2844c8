#pragma once
/// \file distributed/sync_batch_norm.hpp
/// SyncBatchNorm2d: BatchNorm2d with the statistics of the global batch across ranks, and
/// sync_batch_norm_layer(), the NormLayer that builds models with it.

#include <mobilenet/distributed/communicator.hpp>
#include <mobilenet/distributed/default_group.hpp>
#include <mobilenet/nn/norm_layer.hpp>

#include <torch/torch.h>

#include <memory>
#include <ostream>
#include <vector>

namespace mobilenet {

/// BatchNorm2d whose training-mode statistics are those of the global batch across all
/// ranks (one all-reduce in forward and one in backward per layer). Parameter and buffer
/// names match torch::nn::BatchNorm2d, so state dicts are interchangeable. Without a
/// communicator (or with one process) it is exactly BatchNorm2d. Build a model with it through
/// sync_batch_norm_layer(); it also fits the `Norm` template argument of the blocks, or
/// anywhere BatchNorm2d goes.
/// Example: `SyncBatchNorm2d bn(torch::nn::BatchNormOptions(32).momentum(0.01));`
class SyncBatchNorm2dImpl : public torch::nn::Cloneable<SyncBatchNorm2dImpl> {
 public:
  explicit SyncBatchNorm2dImpl(const torch::nn::BatchNormOptions& options_) : options(options_) {
    reset();
  }

  void reset() override {
    TORCH_CHECK(options.num_features() > 0, "SyncBatchNorm2d: num_features must be > 0, got ",
                options.num_features());
    const auto c = options.num_features();
    if (options.affine()) {
      weight = register_parameter("weight", torch::ones({c}));
      bias = register_parameter("bias", torch::zeros({c}));
    } else {
      weight = register_parameter("weight", torch::Tensor(), /*requires_grad=*/false);
      bias = register_parameter("bias", torch::Tensor(), /*requires_grad=*/false);
    }
    if (options.track_running_stats()) {
      running_mean = register_buffer("running_mean", torch::zeros({c}));
      running_var = register_buffer("running_var", torch::ones({c}));
      num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
    } else {
      running_mean = register_buffer("running_mean", torch::Tensor());
      running_var = register_buffer("running_var", torch::Tensor());
      num_batches_tracked = register_buffer("num_batches_tracked", torch::Tensor());
    }
  }

  /// Uses `comm` instead of the default communicator.
  void set_communicator(std::shared_ptr<Communicator> comm) { communicator_ = std::move(comm); }

  torch::Tensor forward(const torch::Tensor& input) {
    TORCH_CHECK(input.dim() == 4, "SyncBatchNorm2d: expected a 4-D input (N, C, H, W), got ",
                input.dim(), "-D");
    TORCH_CHECK(input.size(1) == options.num_features(), "SyncBatchNorm2d: expected ",
                options.num_features(), " channels, got ", input.size(1));
    const double factor = update_factor();
    auto comm = communicator_ ? communicator_ : default_communicator();
    if (!is_training() || !comm || !comm->distributed()) {
      // Same call as torch::nn::BatchNorm2d, so one process gives identical results.
      return torch::batch_norm(input, weight, bias, running_mean, running_var,
                               is_training() || !options.track_running_stats(), factor,
                               options.eps(), at::globalContext().userEnabledCuDNN());
    }
    return synced_forward(input, *comm, comm, factor);
  }

  void pretty_print(std::ostream& stream) const override {
    stream << std::boolalpha << "mobilenet::SyncBatchNorm2d(" << options.num_features()
           << ", eps=" << options.eps() << ", momentum=";
    if (options.momentum()) {
      stream << *options.momentum();
    } else {
      stream << "None";
    }
    stream << ", affine=" << options.affine()
           << ", track_running_stats=" << options.track_running_stats() << ")";
  }

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  // Mirrors BatchNorm's bookkeeping: momentum, or a cumulative average when it is unset.
  double update_factor() {
    double factor = options.momentum().value_or(0.0);
    if (is_training() && options.track_running_stats() && num_batches_tracked.defined()) {
      torch::NoGradGuard no_grad;
      num_batches_tracked += 1;
      if (!options.momentum()) {
        factor = 1.0 / num_batches_tracked.item<double>();
      }
    }
    return factor;
  }

  torch::Tensor synced_forward(const torch::Tensor& x, Communicator& comm,
                               const std::shared_ptr<Communicator>& comm_ptr, double factor) {
    const int64_t c = options.num_features();
    const std::vector<int64_t> dims{0, 2, 3};
    // Shifting by the running mean (identical on all ranks) keeps E[x^2] - E[x]^2 accurate
    // in float32 while needing one all-reduce of [sum, sum of squares, count].
    auto shift = options.track_running_stats() ? running_mean.detach()
                                               : torch::zeros({c}, x.options());
    auto xs = x - shift.view({1, c, 1, 1});
    auto count = torch::full({1}, static_cast<double>(x.numel() / c), x.options());
    auto local = torch::cat({xs.sum(dims), (xs * xs).sum(dims), count});
    auto reduced = local.detach().clone();
    comm.all_reduce(reduced);
    torch::Tensor global = reduced;
    if (local.requires_grad() && torch::GradMode::is_enabled()) {
      // Forward value: the global sums. Backward: d(global)/d(local) is the identity and the
      // loss on every rank depends on the global sums, so the gradient is all-reduced too.
      global = reduced + (local - local.detach());
      global.register_hook(
          [comm_ptr](torch::Tensor grad) {
            auto summed = grad.clone();
            comm_ptr->all_reduce(summed);
            return summed;
          });
    }
    auto n = global.narrow(0, 2 * c, 1);
    auto mean_shifted = global.narrow(0, 0, c) / n;
    auto var = (global.narrow(0, c, c) / n - mean_shifted * mean_shifted).clamp_min(0);
    auto mean = shift + mean_shifted;
    const double total = reduced[2 * c].item<double>();
    TORCH_CHECK(total > 1, "SyncBatchNorm2d: expected more than 1 value per channel when "
                           "training, got ", total);
    auto y = (x - mean.view({1, c, 1, 1})) * torch::rsqrt(var + options.eps()).view({1, c, 1, 1});
    if (options.affine()) {
      y = y * weight.view({1, c, 1, 1}) + bias.view({1, c, 1, 1});
    }
    if (options.track_running_stats()) {
      torch::NoGradGuard no_grad;
      running_mean.mul_(1 - factor).add_(mean.detach(), factor);
      running_var.mul_(1 - factor).add_(var.detach() * (total / (total - 1)), factor);
    }
    return y;
  }

  std::shared_ptr<Communicator> communicator_;
};
TORCH_MODULE(SyncBatchNorm2d);

/// NormLayer that builds SyncBatchNorm2d with `options` (num_features replaced by each
/// layer's channel count) reducing over `comm`; null `comm` (default): the default
/// communicator at each forward (init_distributed() sets it). For torchvision's
/// `norm_layer=nn.SyncBatchNorm`.
/// Example: `MobileNetV2 model(MobileNetV2Options().norm_layer(sync_batch_norm_layer(comm)));`
inline NormLayer sync_batch_norm_layer(
    std::shared_ptr<Communicator> comm = nullptr,
    torch::nn::BatchNormOptions options = torch::nn::BatchNormOptions(0)) {
  return [comm = std::move(comm), options](int64_t num_features) {
    auto o = options;
    o.num_features(num_features);
    SyncBatchNorm2d norm(o);
    norm->set_communicator(comm);
    return torch::nn::AnyModule(norm);
  };
}

}  // namespace mobilenet
