#pragma once
/// \file nn/forward_recorder.hpp
/// LibTorch modules have no forward hooks. Our blocks and models call their children through
/// `forward_recorded()`, which reports each output to a recorder when one is active
/// (models/summary.hpp installs one); otherwise the cost is one thread-local load per call.

#include <torch/torch.h>

namespace mobilenet {

/// Receives (module, output) after each recorded forward, innermost modules first, like
/// PyTorch's forward hooks fire.
class ForwardRecorder {
 public:
  virtual ~ForwardRecorder() = default;
  virtual void record(const torch::nn::Module& module, const torch::Tensor& output) = 0;
};

/// The recorder of this thread, or null. Set it for a scope and restore the previous one.
inline ForwardRecorder*& active_recorder() {
  thread_local ForwardRecorder* recorder = nullptr;
  return recorder;
}

/// Runs a Sequential child by child so each child is recorded (nested Sequentials too).
inline torch::Tensor forward_recorded(torch::nn::Sequential& sequential, torch::Tensor x) {
  for (auto& child : *sequential) {
    if (auto nested = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(child.ptr())) {
      torch::nn::Sequential holder(nested);
      x = forward_recorded(holder, std::move(x));
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
torch::Tensor forward_recorded(Holder& module, torch::Tensor x) {
  torch::Tensor y = module->forward(std::move(x));
  if (auto* recorder = active_recorder()) {
    recorder->record(*module.ptr(), y);
  }
  return y;
}

}  // namespace mobilenet
