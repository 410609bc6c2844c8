#pragma once
/// \file detail/forward_recorder.hpp
/// LibTorch modules have no forward hooks. Our blocks call their children through `call()`,
/// which reports each output to a recorder when one is active (summary.hpp installs one);
/// otherwise the cost is one thread-local load per call.

#include <torch/torch.h>

namespace mobilenet::detail {

/// Receives (module, output) after each recorded forward, innermost modules first, like
/// PyTorch's forward hooks fire.
class ForwardRecorder {
 public:
  virtual ~ForwardRecorder() = default;
  virtual void record(const torch::nn::Module& module, const torch::Tensor& output) = 0;
};

inline ForwardRecorder*& active_recorder() {
  thread_local ForwardRecorder* recorder = nullptr;
  return recorder;
}

/// Runs a Sequential child by child so each child is recorded (nested Sequentials too).
inline torch::Tensor call(torch::nn::Sequential& sequential, torch::Tensor x) {
  for (auto& child : *sequential) {
    if (auto nested = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(child.ptr())) {
      torch::nn::Sequential holder(nested);
      x = call(holder, std::move(x));
    } else {
      x = child.forward(std::move(x));
    }
    if (auto* recorder = active_recorder()) {
      recorder->record(*child.ptr(), x);
    }
  }
  return x;
}

/// Runs `module->forward(x)` and records the output.
template <typename Holder>
torch::Tensor call(Holder& module, torch::Tensor x) {
  torch::Tensor y = module->forward(std::move(x));
  if (auto* recorder = active_recorder()) {
    recorder->record(*module.ptr(), y);
  }
  return y;
}

/// Classifier head shared by the models: global average pool, flatten, `classifier`.
inline torch::Tensor pool_and_classify(torch::Tensor features, torch::nn::Sequential& classifier) {
  return call(classifier, torch::adaptive_avg_pool2d(features, {1, 1}).flatten(1));
}

}  // namespace mobilenet::detail
