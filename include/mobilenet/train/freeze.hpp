#pragma once
/// \file freeze.hpp
/// Freezing ranges of feature blocks: no gradients, and BatchNorm statistics kept as they are.

#include <mobilenet/nn/norm_layer.hpp>

#include <torch/torch.h>

#include <string>
#include <utility>

namespace mobilenet {

/// An inclusive range of indices into a model's `features` (e.g. 0-6: stem + first stages).
struct BlockRange {
  int64_t first = 0;
  int64_t last = -1;  ///< last < first: empty
  bool empty() const { return last < first; }
  bool contains(int64_t i) const { return i >= first && i <= last; }
};

/// Parses "A-B" (inclusive), "A" (one block) or "none"/"" (nothing).
inline BlockRange parse_block_range(const std::string& text) {
  if (text.empty() || text == "none") return {};
  try {
    size_t used = 0;
    const auto dash = text.find('-', 1);
    BlockRange r;
    r.first = std::stoll(text.substr(0, dash), &used);
    TORCH_CHECK(used == (dash == std::string::npos ? text.size() : dash), "trailing characters");
    r.last = dash == std::string::npos ? r.first : std::stoll(text.substr(dash + 1), &used);
    TORCH_CHECK(dash == std::string::npos || used == text.size() - dash - 1, "trailing characters");
    TORCH_CHECK(r.first >= 0 && r.last >= r.first, "need 0 <= A <= B");
    return r;
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "block range must look like 'A-B', 'A' or 'none', got '", text, "'");
  }
  return {};
}

namespace detail {
inline void set_batch_norm_eval(torch::nn::Module& module) {
  module.apply([](torch::nn::Module& m) {
    if (is_batch_norm(m)) m.eval();  // BatchNorm2d, SyncBatchNorm2d, any norm with running stats
  });
}
}  // namespace detail

/// Freezes `features[range]`: requires_grad off for their parameters and their BatchNorms
/// in eval mode (a frozen block whose BN statistics kept moving would not be frozen).
/// Keeps the range so that train() can reapply the BN rule after `model->train()`.
/// Example: `Freezer freezer(model->features, parse_block_range("0-6")); freezer.train(*model);`
class Freezer {
 public:
  Freezer() = default;
  Freezer(torch::nn::Sequential features, BlockRange range)
      : features_(std::move(features)), range_(range) {
    TORCH_CHECK(range.empty() || range.last < static_cast<int64_t>(features_->size()),
                "freeze: block range ", range.first, "-", range.last, " is outside features (",
                features_->size(), " blocks: 0-", features_->size() - 1, ")");
    set_requires_grad(false);
  }

  const BlockRange& range() const { return range_; }

  /// Puts `model` in training mode, frozen BatchNorms excepted.
  void train(torch::nn::Module& model) const {
    model.train();
    for_each_frozen([](torch::nn::Module& block) { detail::set_batch_norm_eval(block); });
  }

  /// Makes the frozen blocks trainable again (e.g. after a warm-up with a frozen backbone).
  void unfreeze() {
    set_requires_grad(true);
    range_ = {};
  }

 private:
  template <typename F>
  void for_each_frozen(F f) const {
    if (range_.empty()) return;
    for (int64_t i = range_.first; i <= range_.last; ++i) f(*features_->ptr(i));
  }
  void set_requires_grad(bool on) {
    for_each_frozen([on](torch::nn::Module& block) {
      for (auto& p : block.parameters()) p.set_requires_grad(on);
    });
  }

  torch::nn::Sequential features_{nullptr};
  BlockRange range_;
};

}  // namespace mobilenet
