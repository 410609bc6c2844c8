#pragma once
/// \file loader.hpp
/// A multi-threaded image data loader: worker threads decode and transform whole batches
/// into preallocated (optionally pinned) buffers, a bounded number of batches ahead.
///
/// Example:
/// ```
/// mobilenet::DataLoader loader(samples, mobilenet::train_transform(224),
///                              mobilenet::LoaderOptions(64).workers(4).seed(1));
/// for (int64_t epoch = 0; epoch < 10; ++epoch)
///   for (mobilenet::Batch& b : loader.epoch(epoch)) train_step(b.images, b.targets);
/// ```
///
/// Threads and intra-op parallelism: at::set_num_threads is process-global in LibTorch, so
/// workers never call it. Instead they never run an intra-op parallel ATen kernel: decoding,
/// resampling, normalisation and collation are plain loops writing into buffers allocated
/// with torch::empty. The training thread keeps its own intra-op thread count.

#include <mobilenet/data/escape.hpp>
#include <mobilenet/data/image.hpp>
#include <mobilenet/data/sample.hpp>
#include <mobilenet/data/transform.hpp>

#include <torch/torch.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mobilenet {

/// DataLoader settings. Example: `LoaderOptions(64).workers(4).seed(7).drop_last(true)`.
struct LoaderOptions {
  explicit LoaderOptions(int64_t batch_size) : batch_size_(batch_size) {}
  /// Samples per batch (required).
  TORCH_ARG(int64_t, batch_size);
  /// Worker threads. Default 2.
  TORCH_ARG(int64_t, workers) = 2;
  /// Batches decoded ahead of the consumer (ready or in progress); bounds memory.
  /// Default 0 = 2 per worker.
  TORCH_ARG(int64_t, prefetch) = 0;
  /// Reshuffle every epoch from (seed, epoch). Default true.
  TORCH_ARG(bool, shuffle) = true;
  /// Seeds shuffling and every sample's augmentation. Default 0.
  TORCH_ARG(uint64_t, seed) = 0;
  /// Drop the last incomplete batch. Default false.
  TORCH_ARG(bool, drop_last) = false;
  /// This process's shard: samples rank, rank + world_size, ... of the epoch's order.
  /// Default 0 of 1.
  TORCH_ARG(int64_t, rank) = 0;
  TORCH_ARG(int64_t, world_size) = 1;
  /// Drop the epoch's last (size % world_size) samples so every rank gets the same count
  /// (data-parallel training needs equal step counts). Default false: every sample is
  /// used exactly once, shard sizes differ by at most 1.
  TORCH_ARG(bool, even_shards) = false;
  /// Allocate batches in page-locked memory for fast, asynchronous host-to-GPU copies.
  /// Default: true when CUDA is available.
  TORCH_ARG(bool, pin_memory) = torch::cuda::is_available();
  /// Throw the first ImageError from next() instead of skipping the image. Default false.
  TORCH_ARG(bool, fail_fast) = false;
  /// Print skipped images to std::cerr at the end of each epoch. Default true.
  TORCH_ARG(bool, report_skipped) = true;
};

/// One batch: images N x C x H x W float (channels-last memory), targets N x classes float,
/// ids N int64 (the Sample ids).
struct Batch {
  torch::Tensor images;
  torch::Tensor targets;
  torch::Tensor ids;
};

/// An image the loader skipped, and why.
struct SkippedImage {
  std::string path;
  int64_t id = 0;
  std::string reason;
};

/// Multi-threaded loader over samples and a fixed-output-size Transform.
class DataLoader {
 public:
  DataLoader(std::vector<Sample> samples, Transform transform, LoaderOptions options)
      : samples_(std::move(samples)), transform_(std::move(transform)), options_(options) {
    TORCH_CHECK(options_.batch_size() > 0, "DataLoader: batch_size must be positive, got ",
                options_.batch_size());
    TORCH_CHECK(options_.workers() > 0, "DataLoader: workers must be positive, got ",
                options_.workers());
    TORCH_CHECK(options_.world_size() > 0 && options_.rank() >= 0 &&
                    options_.rank() < options_.world_size(),
                "DataLoader: need 0 <= rank < world_size, got rank ", options_.rank(),
                " of ", options_.world_size());
    auto size = transform_.fixed_output_size();
    TORCH_CHECK(size.has_value(),
                "DataLoader: the transform must end with a crop or an exact resize so that "
                "all images in a batch have one size");
    out_size_ = *size;
    classes_ = samples_.empty() ? 0 : int64_t(samples_.front().target.size());
    for (const Sample& s : samples_) {
      TORCH_CHECK(int64_t(s.target.size()) == classes_, "DataLoader: sample ", s.id, " (",
                  s.path, ") has ", s.target.size(), " targets, expected ", classes_);
    }
    capacity_ = options_.prefetch() > 0 ? options_.prefetch() : 2 * options_.workers();
    if (options_.pin_memory() && !torch::cuda::is_available()) options_.pin_memory(false);
    workers_.reserve(size_t(options_.workers()));
    try {
      for (int64_t i = 0; i < options_.workers(); ++i) workers_.emplace_back([this] { work(); });
    } catch (const std::exception& e) {
      // Out of threads or memory for their stacks (std::system_error) or state (bad_alloc). Join the ones already started: a joinable
      // std::thread destroyed while unwinding would call std::terminate.
      const size_t started = workers_.size();
      stop_workers();
      TORCH_CHECK(false, "DataLoader: cannot start worker thread ", started + 1, " of ",
                  options_.workers(), ": ", e.what(),
                  " (use fewer workers, or raise the process's thread or memory limit)");
    }
  }

  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Stops the workers mid-epoch if needed and joins them.
  ~DataLoader() { stop_workers(); }

  /// Samples this rank sees per epoch.
  int64_t samples_per_epoch() const {
    int64_t n = int64_t(samples_.size());
    const int64_t w = options_.world_size(), r = options_.rank();
    if (options_.even_shards()) return n / w;
    return n / w + (r < n % w ? 1 : 0);
  }

  /// Batches per epoch (before skipping batches whose every image failed).
  int64_t batches_per_epoch() const {
    const int64_t n = samples_per_epoch(), b = options_.batch_size();
    return options_.drop_last() ? n / b : (n + b - 1) / b;
  }

  /// Starts (or restarts) an epoch, cancelling one in progress.
  void start_epoch(int64_t epoch) {
    std::unique_lock<std::mutex> lock(mutex_);
    cancel_locked(lock);
    epoch_ = epoch;
    order_ = epoch_order(epoch);
    num_batches_ = batches_per_epoch();
    next_schedule_ = 0;
    next_yield_ = 0;
    attempted_ = 0;
    skipped_.clear();
    running_ = true;
    lock.unlock();
    work_cv_.notify_all();
  }

  /// The next batch of the epoch, or nullopt at its end (then `skipped()` is final).
  /// Throws ImageError with fail_fast, or any other error a worker met.
  std::optional<Batch> next() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      if (!running_) return std::nullopt;
      if (next_yield_ >= num_batches_) {
        running_ = false;
        report_locked();
        return std::nullopt;
      }
      done_cv_.wait(lock, [&] { return results_.count(next_yield_) > 0; });
      Result r = std::move(results_[next_yield_]);
      results_.erase(next_yield_);
      ++next_yield_;
      work_cv_.notify_all();
      skipped_.insert(skipped_.end(), r.skipped.begin(), r.skipped.end());
      attempted_ += int64_t(r.skipped.size()) + (r.batch.ids.defined() ? r.batch.ids.size(0) : 0);
      if (r.error) {
        cancel_locked(lock);
        std::rethrow_exception(r.error);
      }
      if (r.batch.ids.defined() && r.batch.ids.size(0) > 0) return std::move(r.batch);
    }
  }

  /// Cancels the current epoch: workers drop their batches; next() returns nullopt.
  void stop() {
    std::unique_lock<std::mutex> lock(mutex_);
    cancel_locked(lock);
  }

  /// Images skipped so far in the current (or last) epoch, in batch order.
  std::vector<SkippedImage> skipped() const {
    std::unique_lock<std::mutex> lock(mutex_);
    return skipped_;
  }

  /// Images the current (or last) epoch has delivered or skipped so far: the "of M" to
  /// skipped().size()'s "N".
  int64_t images_attempted() const {
    std::unique_lock<std::mutex> lock(mutex_);
    return attempted_;
  }

  /// "2 of 37 images unreadable: a.jpg, b\x0a.jpg" for the current (or last) epoch, naming
  /// the first `max_names` (control characters escaped by escape_path, then "and K more"); empty
  /// when none was skipped. For programs that fail when too much data is unreadable.
  std::string skipped_summary(size_t max_names = 3) const {
    std::unique_lock<std::mutex> lock(mutex_);
    if (skipped_.empty()) return {};
    std::ostringstream s;
    s << skipped_.size() << " of " << attempted_ << " images unreadable: ";
    for (size_t i = 0; i < skipped_.size() && i < max_names; ++i)
      s << (i ? ", " : "") << escape_path(skipped_[i].path);
    if (skipped_.size() > max_names) s << " and " << skipped_.size() - max_names << " more";
    return s.str();
  }

  /// The options in effect.
  const LoaderOptions& options() const { return options_; }

  /// This rank's sample indices for `epoch`, in the order batches are formed.
  std::vector<int64_t> epoch_order(int64_t epoch) const {
    const int64_t n = int64_t(samples_.size());
    std::vector<int64_t> all(n);
    for (int64_t i = 0; i < n; ++i) all[i] = i;
    if (options_.shuffle()) {
      // Fisher-Yates with our portable generator: the same order on every rank.
      SampleRng rng(sample_seed(options_.seed(), epoch, -1));
      for (int64_t i = n - 1; i > 0; --i) std::swap(all[i], all[rng.randint(0, i + 1)]);
    }
    const int64_t w = options_.world_size();
    const int64_t used = options_.even_shards() ? n / w * w : n;
    std::vector<int64_t> mine;
    for (int64_t i = options_.rank(); i < used; i += w) mine.push_back(all[i]);
    return mine;
  }

  /// Range over one epoch's batches: `for (Batch& b : loader.epoch(e))`.
  class EpochRange {
   public:
    struct End {};
    class Iterator {
     public:
      explicit Iterator(DataLoader* loader) : loader_(loader) { current_ = loader_->next(); }
      Batch& operator*() { return *current_; }
      Iterator& operator++() {
        current_ = loader_->next();
        return *this;
      }
      bool operator!=(End) const { return current_.has_value(); }

     private:
      DataLoader* loader_;
      std::optional<Batch> current_;
    };
    explicit EpochRange(DataLoader* loader) : loader_(loader) {}
    Iterator begin() { return Iterator(loader_); }
    End end() { return {}; }

   private:
    DataLoader* loader_;
  };

  /// Starts `epoch` and returns a range over its batches.
  EpochRange epoch(int64_t epoch) {
    start_epoch(epoch);
    return EpochRange(this);
  }

 private:
  struct Result {
    Batch batch;
    std::vector<SkippedImage> skipped;
    std::exception_ptr error;
  };

  // Waits for in-flight batches of the current epoch to be abandoned. Caller holds lock.
  void cancel_locked(std::unique_lock<std::mutex>& lock) {
    generation_.fetch_add(1);
    running_ = false;
    done_cv_.wait(lock, [&] { return in_flight_ == 0; });
    results_.clear();
  }

  void stop_workers() {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      shutdown_ = true;
      generation_.fetch_add(1);
    }
    work_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  void report_locked() const {
    if (!options_.report_skipped() || skipped_.empty()) return;
    std::cerr << "DataLoader: epoch " << epoch_ << " skipped " << skipped_.size()
              << " unreadable image(s):\n";
    for (const SkippedImage& s : skipped_)
      // The reason names the file already escaped (ImageError), so its backslashes stay as
      // they are; other messages may hold raw bytes.
      std::cerr << "  id " << s.id << ": " << escape_text(s.reason, EscapeStyle::terminal_keep_backslash) << "\n";
  }

  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      work_cv_.wait(lock, [&] {
        return shutdown_ || (running_ && next_schedule_ < num_batches_ &&
                             next_schedule_ < next_yield_ + capacity_);
      });
      if (shutdown_) return;
      const int64_t k = next_schedule_++;
      const uint64_t generation = generation_.load();
      const int64_t epoch = epoch_;
      ++in_flight_;
      lock.unlock();
      Result r;
      try {
        r = build(k, epoch, generation);
      } catch (...) {
        r.error = std::current_exception();
      }
      lock.lock();
      --in_flight_;
      if (generation == generation_.load()) results_[k] = std::move(r);
      done_cv_.notify_all();
    }
  }

  // Decodes and transforms batch k straight into its output buffer. Reads order_ without
  // the lock: it only changes in start_epoch, after every in-flight batch has finished.
  Result build(int64_t k, int64_t epoch, uint64_t generation) {
    Result r;
    const int64_t b = options_.batch_size();
    const int64_t begin = k * b;
    const int64_t end = std::min<int64_t>(begin + b, int64_t(order_.size()));
    const int64_t m = end - begin;
    const int64_t h = out_size_.height, w = out_size_.width;
    auto opts = torch::TensorOptions().pinned_memory(options_.pin_memory());
    torch::Tensor images = acquire_images().narrow(0, 0, m);
    torch::Tensor targets = torch::empty({m, classes_}, opts.dtype(torch::kFloat));
    torch::Tensor ids = torch::empty({m}, opts.dtype(torch::kLong));
    float* img = images.data_ptr<float>();
    float* tgt = targets.data_ptr<float>();
    int64_t* id = ids.data_ptr<int64_t>();
    int64_t filled = 0;
    for (int64_t i = begin; i < end; ++i) {
      if (generation_.load(std::memory_order_relaxed) != generation) return r;  // cancelled
      const int64_t index = order_[i];
      const Sample& s = samples_[index];
      try {
        transform_.apply_into(s.path, sample_seed(options_.seed(), epoch, index),
                              img + filled * h * w * 3);
      } catch (const ImageError& e) {
        if (options_.fail_fast()) {
          r.error = std::current_exception();
          return r;
        }
        r.skipped.push_back(SkippedImage{s.path, s.id, e.what()});
        continue;
      }
      std::copy(s.target.begin(), s.target.end(), tgt + filled * classes_);
      id[filled] = s.id;
      ++filled;
    }
    // NHWC memory viewed as NCHW: exactly PyTorch's channels-last layout.
    r.batch.images = images.narrow(0, 0, filled).permute({0, 3, 1, 2});
    r.batch.targets = targets.narrow(0, 0, filled);
    r.batch.ids = ids.narrow(0, 0, filled);
    return r;
  }

  // A full-batch NHWC image buffer. Pageable buffers are recycled once the consumer has
  // dropped every view of them (fresh 10-100 MB buffers cost a page fault per 4 KB); pinned
  // ones are not, because an asynchronous copy may still read them — LibTorch's caching
  // host allocator tracks that for us.
  torch::Tensor acquire_images() {
    const int64_t b = options_.batch_size();
    auto fresh = [&] {
      return torch::empty({b, out_size_.height, out_size_.width, 3},
                          torch::TensorOptions().dtype(torch::kFloat)
                              .pinned_memory(options_.pin_memory()));
    };
    if (options_.pin_memory()) return fresh();
    std::unique_lock<std::mutex> lock(mutex_);
    for (torch::Tensor& t : pool_) {
      if (t.use_count() == 1 && t.storage().use_count() == 1) return t;
    }
    torch::Tensor t = fresh();
    if (int64_t(pool_.size()) < capacity_ + options_.workers() + 2) pool_.push_back(t);
    return t;
  }

  std::vector<Sample> samples_;
  Transform transform_;
  LoaderOptions options_;
  ImageSize out_size_;
  int64_t classes_ = 0;
  int64_t capacity_ = 2;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  bool shutdown_ = false;
  bool running_ = false;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t num_batches_ = 0, next_schedule_ = 0, next_yield_ = 0, in_flight_ = 0;
  int64_t attempted_ = 0;
  std::map<int64_t, Result> results_;
  std::vector<SkippedImage> skipped_;
  std::vector<torch::Tensor> pool_;
};

}  // namespace mobilenet
