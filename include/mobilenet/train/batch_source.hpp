#pragma once
/// \file batch_source.hpp
/// The Trainer's view of a data loader: batches of (images, targets) per epoch. Keeps train/
/// independent of data/ (and so of simdjson and libjpeg): data/loader.hpp's DataLoader, a
/// torch::data loader or a vector of tensors all fit through `batch_source(...)`.

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace mobilenet {

/// Images (N x C x H x W) and multi-hot targets (N x classes) of one batch.
struct BatchView {
  torch::Tensor images;
  torch::Tensor targets;
};

/// Batches by epoch, in a fixed order per epoch (exact resume skips the first ones).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  /// Batches in one epoch of this process (all epochs have the same count).
  virtual int64_t batches_per_epoch() const = 0;
  /// Calls `fn` for each batch of `epoch`, in order, until it returns false.
  virtual void for_each(int64_t epoch, const std::function<bool(const BatchView&)>& fn) = 0;
  /// Ends background work early (an interrupted epoch). Default: nothing to stop.
  virtual void stop() {}
};

namespace detail {
// Adapts anything with batches_per_epoch(), epoch(e) (iterable of {images, targets}) and
// stop(): the shape of mobilenet::DataLoader.
template <typename Loader>
class LoaderBatchSource final : public BatchSource {
 public:
  explicit LoaderBatchSource(Loader& loader) : loader_(loader) {}
  int64_t batches_per_epoch() const override { return loader_.batches_per_epoch(); }
  void for_each(int64_t epoch, const std::function<bool(const BatchView&)>& fn) override {
    for (auto& batch : loader_.epoch(epoch)) {
      if (!fn(BatchView{batch.images, batch.targets})) {
        loader_.stop();
        return;
      }
    }
  }
  void stop() override { loader_.stop(); }

 private:
  Loader& loader_;
};

// The same batches every epoch: tests and in-memory data.
class TensorBatchSource final : public BatchSource {
 public:
  explicit TensorBatchSource(std::vector<BatchView> batches) : batches_(std::move(batches)) {}
  int64_t batches_per_epoch() const override { return int64_t(batches_.size()); }
  void for_each(int64_t, const std::function<bool(const BatchView&)>& fn) override {
    for (const auto& b : batches_) {
      if (!fn(b)) return;
    }
  }

 private:
  std::vector<BatchView> batches_;
};
}  // namespace detail

/// A BatchSource over `loader` (kept by reference: it must outlive the source).
/// Example: `auto train = batch_source(train_loader);`
template <typename Loader>
std::unique_ptr<BatchSource> batch_source(Loader& loader) {
  return std::make_unique<detail::LoaderBatchSource<Loader>>(loader);
}

/// A BatchSource yielding `batches` in the same order every epoch.
inline std::unique_ptr<BatchSource> batch_source(std::vector<BatchView> batches) {
  return std::make_unique<detail::TensorBatchSource>(std::move(batches));
}

}  // namespace mobilenet
