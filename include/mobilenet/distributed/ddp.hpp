#pragma once
/// \file distributed/ddp.hpp
/// DistributedDataParallel: gradients averaged over ranks in buckets, overlapped with
/// backward, for any module.

#include <mobilenet/distributed/communicator.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace mobilenet {

/// How DistributedDataParallel reduces. Example:
/// `DistributedDataParallelOptions().bucket_mb(4).overlap(false)`
struct DistributedDataParallelOptions {
  /// Largest gradient bucket, in MiB; one all-reduce per bucket. Default 25 (as PyTorch).
  TORCH_ARG(double, bucket_mb) = 25.0;
  /// Start each bucket's all-reduce from gradient hooks as soon as backward has produced
  /// all its gradients, overlapping communication with the rest of backward. false: reduce
  /// everything in synchronize(). Default true.
  TORCH_ARG(bool, overlap) = true;
  /// Copy rank 0's parameters and buffers to all ranks in the constructor. Default true.
  TORCH_ARG(bool, broadcast_at_start) = true;
  /// Average floating-point buffers (BatchNorm running statistics) across ranks in every
  /// synchronize(), so ranks evaluate and checkpoint identical models. Default true.
  TORCH_ARG(bool, average_buffers) = true;
};

/// Counters for measuring the cost of communication.
struct DistributedDataParallelStats {
  /// synchronize() calls.
  int64_t steps = 0;
  /// Time spent inside synchronize(): communication not hidden behind backward.
  double synchronize_seconds = 0;
  /// Buckets whose all-reduce started during backward (overlap), summed over steps.
  int64_t buckets_started_in_backward = 0;
  /// Buckets per step and gradient bytes per step.
  int64_t buckets = 0;
  int64_t bytes_per_step = 0;
};

namespace detail {

/// The state behind DistributedDataParallel: bucket layout, gradient hooks, pending work.
class GradientReducer {
 public:
  GradientReducer(std::shared_ptr<torch::nn::Module> module, std::shared_ptr<Communicator> comm,
                  DistributedDataParallelOptions options)
      : module_(std::move(module)), comm_(std::move(comm)), options_(options) {
    TORCH_CHECK(module_ != nullptr, "DistributedDataParallel: module is null");
    TORCH_CHECK(comm_ != nullptr, "DistributedDataParallel: communicator is null");
    TORCH_CHECK(options_.bucket_mb() > 0, "DistributedDataParallel: bucket_mb must be > 0, got ",
                options_.bucket_mb());
    if (options_.broadcast_at_start()) {
      broadcast_state(0);
    }
    build_buckets();
    if (comm_->distributed() && options_.overlap()) {
      for (size_t i = 0; i < slots_.size(); ++i) {
        auto& s = slots_[i];
        if (s.param.requires_grad()) {
          s.hook = s.param.register_hook([this, i](torch::Tensor grad) { on_gradient(i, grad); });
          s.hooked = true;
        }
      }
    }
  }

  ~GradientReducer() {
    for (auto& s : slots_) {
      if (s.hooked) {
        s.param.remove_hook(s.hook);
      }
    }
  }

  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  void broadcast_state(int64_t root) {
    std::vector<torch::Tensor> state;
    for (auto& p : module_->parameters()) {
      state.push_back(p);
    }
    for (auto& b : module_->buffers()) {
      if (b.defined()) {
        state.push_back(b);
      }
    }
    comm_->broadcast(state, root);
  }

  void average_buffers() {
    if (!comm_->distributed()) {
      return;
    }
    std::vector<torch::Tensor> floats;
    for (auto& b : module_->buffers()) {
      if (b.defined() && b.is_floating_point()) {
        floats.push_back(b);
      }
    }
    if (floats.empty()) {
      return;
    }
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> flat_parts;
    for (auto& b : floats) {
      flat_parts.push_back(b.reshape(-1).to(comm_->device(), torch::kFloat64));
    }
    auto flat = torch::cat(flat_parts);
    comm_->all_reduce(flat);
    flat.div_(static_cast<double>(comm_->world_size()));
    int64_t offset = 0;
    for (auto& b : floats) {
      b.copy_(flat.narrow(0, offset, b.numel()).view_as(b));
      offset += b.numel();
    }
  }

  void set_require_sync(bool on) {
    std::lock_guard<std::mutex> lock(mutex_);
    require_sync_ = on;
  }
  bool require_sync() const { return require_sync_; }

  void synchronize() {
    TORCH_CHECK(require_sync_, "DistributedDataParallel: synchronize() inside no_sync()");
    const auto start = std::chrono::steady_clock::now();
    ++stats_.steps;
    if (comm_->distributed()) {
      torch::NoGradGuard no_grad;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        // Parameters that produced no gradient in this backward (unused, frozen, or all of
        // them without overlap) contribute their current .grad, or zeros.
        for (size_t i = 0; i < slots_.size(); ++i) {
          if (!slots_[i].filled) {
            fill_slot(i, torch::Tensor());
          }
        }
        launch_ready();
      }
      std::exception_ptr failure;
      for (auto& b : buckets_) {
        try {
          b.work.wait();
        } catch (...) {
          failure = failure ? failure : std::current_exception();
        }
      }
      reset_round();
      if (failure) {
        std::rethrow_exception(failure);
      }
      for (auto& s : slots_) {
        if (!s.param.requires_grad()) {
          continue;  // frozen: its (zero) slot only kept the layout identical on all ranks
        }
        auto reduced = buckets_[s.bucket].flat.narrow(0, s.offset, s.param.numel());
        auto& grad = s.param.mutable_grad();
        if (grad.defined()) {
          grad.copy_(reduced.view_as(s.param));
        } else {
          grad = reduced.view_as(s.param).clone();
        }
      }
      if (options_.average_buffers()) {
        average_buffers();
      }
    }
    stats_.synchronize_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  const DistributedDataParallelStats& stats() const { return stats_; }
  void reset_stats() {
    const auto buckets = stats_.buckets;
    const auto bytes = stats_.bytes_per_step;
    stats_ = DistributedDataParallelStats();
    stats_.buckets = buckets;
    stats_.bytes_per_step = bytes;
  }
  std::vector<int64_t> bucket_numels() const {
    std::vector<int64_t> out;
    for (const auto& b : buckets_) {
      out.push_back(b.flat.numel());
    }
    return out;
  }

  const std::shared_ptr<torch::nn::Module>& module() const { return module_; }
  const std::shared_ptr<Communicator>& communicator() const { return comm_; }

 private:
  struct Slot {
    torch::Tensor param;
    std::string name;
    size_t bucket = 0;
    int64_t offset = 0;
    bool filled = false;
    bool hooked = false;
    unsigned hook = 0;
  };
  struct Bucket {
    torch::Tensor flat;
    std::vector<size_t> slots;
    size_t pending = 0;
    bool launched = false;
    PendingCollective work;
  };

  // Buckets in reverse registration order (roughly the order backward produces gradients),
  // one dtype and device each. Parameters frozen now go to trailing buckets so they never
  // hold back the overlapped ones. Every rank computes the same layout and launches buckets
  // strictly in index order: collectives must match across ranks.
  void build_buckets() {
    std::vector<std::pair<std::string, torch::Tensor>> params;
    std::vector<const void*> seen;
    for (const auto& item : module_->named_parameters()) {
      const void* key = item.value().unsafeGetTensorImpl();
      if (std::find(seen.begin(), seen.end(), key) == seen.end()) {
        seen.push_back(key);
        params.emplace_back(item.key(), item.value());
      }
    }
    std::reverse(params.begin(), params.end());
    std::stable_partition(params.begin(), params.end(),
                          [](const auto& p) { return p.second.requires_grad(); });
    const auto cap = static_cast<int64_t>(options_.bucket_mb() * 1024.0 * 1024.0);
    std::vector<int64_t> bytes;
    std::vector<std::tuple<torch::Dtype, torch::Device, bool>> keys;
    for (auto& [name, p] : params) {
      TORCH_CHECK(!p.is_sparse(), "DistributedDataParallel: sparse parameter ", name,
                  " is not supported");
      const auto key = std::make_tuple(p.scalar_type(), p.device(), p.requires_grad());
      const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
      if (buckets_.empty() || keys.back() != key || bytes.back() + size > cap) {
        buckets_.emplace_back();
        keys.push_back(key);
        bytes.push_back(0);
      }
      Slot s;
      s.param = p;
      s.name = name;
      s.bucket = buckets_.size() - 1;
      s.offset = bytes.back() / static_cast<int64_t>(p.element_size());
      bytes.back() += size;
      buckets_.back().slots.push_back(slots_.size());
      slots_.push_back(std::move(s));
      stats_.bytes_per_step += size;
    }
    for (size_t b = 0; b < buckets_.size(); ++b) {
      auto& bucket = buckets_[b];
      const auto& first = slots_[bucket.slots.front()].param;
      bucket.flat = torch::zeros({bytes[b] / static_cast<int64_t>(first.element_size())},
                                 first.options().requires_grad(false));
      bucket.pending = bucket.slots.size();
    }
    stats_.buckets = static_cast<int64_t>(buckets_.size());
  }

  // Gradient hook: runs on the autograd thread before the gradient is accumulated into .grad.
  void on_gradient(size_t i, const torch::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!require_sync_) {
      return;
    }
    TORCH_CHECK(!slots_[i].filled, "DistributedDataParallel: parameter '", slots_[i].name,
                "' received a second gradient before synchronize(); call synchronize() after "
                "every backward, or accumulate inside no_sync()");
    torch::NoGradGuard no_grad;
    fill_slot(i, grad);
    const size_t before = next_bucket_;
    launch_ready();
    stats_.buckets_started_in_backward += static_cast<int64_t>(next_bucket_ - before);
  }

  // The slot receives what .grad will hold after accumulation (old .grad + new gradient),
  // pre-divided by the world size so the all-reduce sum is the average.
  void fill_slot(size_t i, const torch::Tensor& incoming) {
    auto& s = slots_[i];
    auto view = buckets_[s.bucket].flat.narrow(0, s.offset, s.param.numel());
    const auto& old = s.param.grad();
    if (incoming.defined()) {
      TORCH_CHECK(!incoming.is_sparse(), "DistributedDataParallel: sparse gradient for '", s.name,
                  "'");
      view.copy_(incoming.reshape(-1));
      if (old.defined()) {
        view.add_(old.reshape(-1));
      }
    } else if (old.defined() && s.param.requires_grad()) {
      view.copy_(old.reshape(-1));
    } else {
      view.zero_();
    }
    view.div_(static_cast<double>(comm_->world_size()));
    s.filled = true;
    --buckets_[s.bucket].pending;
  }

  void launch_ready() {
    while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].pending == 0) {
      auto& b = buckets_[next_bucket_];
      b.work = comm_->all_reduce_async(b.flat, ReduceOp::Sum,
                                       dist_str("gradient all-reduce (bucket ", next_bucket_, " of ",
                                                buckets_.size(), ")"));
      b.launched = true;
      ++next_bucket_;
    }
  }

  void reset_round() {
    for (auto& s : slots_) {
      s.filled = false;
    }
    for (auto& b : buckets_) {
      b.pending = b.slots.size();
      b.launched = false;
    }
    next_bucket_ = 0;
  }

  std::shared_ptr<torch::nn::Module> module_;
  std::shared_ptr<Communicator> comm_;
  DistributedDataParallelOptions options_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  size_t next_bucket_ = 0;
  bool require_sync_ = true;
  DistributedDataParallelStats stats_;
  std::mutex mutex_;
};

}  // namespace detail

/// Data parallelism for any module: every rank holds a replica, trains on its own shard, and
/// after backward holds the gradients averaged over ranks, so replicas stay identical.
/// Unlike PyTorch's DDP it does not wrap forward (C++ modules have no common forward
/// signature): call synchronize() between backward and the optimizer step.
/// BatchNorm layers stay per-rank (statistics of the local batch) unless the model uses
/// SyncBatchNorm2d; running statistics are averaged in synchronize() by default.
/// Example: `DistributedDataParallel ddp(model, comm); ...; loss.backward(); ddp.synchronize();`
class DistributedDataParallel {
 public:
  /// Wraps `module`; by default copies rank 0's parameters and buffers to every rank first.
  DistributedDataParallel(std::shared_ptr<torch::nn::Module> module,
                          std::shared_ptr<Communicator> comm,
                          DistributedDataParallelOptions options = DistributedDataParallelOptions())
      : reducer_(std::make_shared<detail::GradientReducer>(std::move(module), std::move(comm),
                                                           options)) {}

  /// Same, from a module holder (`MobileNetV2`, `torch::nn::Sequential`, ...).
  template <typename ModuleType>
  DistributedDataParallel(const torch::nn::ModuleHolder<ModuleType>& module,
                          std::shared_ptr<Communicator> comm,
                          DistributedDataParallelOptions options = DistributedDataParallelOptions())
      : DistributedDataParallel(std::static_pointer_cast<torch::nn::Module>(module.ptr()),
                                std::move(comm), options) {}

  /// Call after backward, before the optimizer step: waits for the bucket all-reduces
  /// (starting those backward did not) and writes the averaged gradients into each
  /// parameter's .grad. Throws DistributedError if a peer died or hung past the timeout.
  void synchronize() { reducer_->synchronize(); }

  /// While alive, backward passes only accumulate local gradients (gradient accumulation);
  /// the first synchronize() after it ends averages the accumulated .grad.
  class NoSync {
   public:
    explicit NoSync(std::shared_ptr<detail::GradientReducer> reducer)
        : reducer_(std::move(reducer)), previous_(reducer_->require_sync()) {
      reducer_->set_require_sync(false);
    }
    ~NoSync() {
      if (reducer_) {
        reducer_->set_require_sync(previous_);
      }
    }
    NoSync(NoSync&& other) noexcept
        : reducer_(std::move(other.reducer_)), previous_(other.previous_) {}
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;
    NoSync& operator=(NoSync&&) = delete;

   private:
    std::shared_ptr<detail::GradientReducer> reducer_;
    bool previous_;
  };
  /// `{ auto guard = ddp.no_sync(); loss1.backward(); } loss2.backward(); ddp.synchronize();`
  [[nodiscard]] NoSync no_sync() { return NoSync(reducer_); }

  /// Copies rank `root`'s parameters and buffers to every rank (e.g. after loading a
  /// checkpoint on rank 0 only).
  void broadcast_parameters_and_buffers(int64_t root = 0) { reducer_->broadcast_state(root); }
  /// Averages floating-point buffers across ranks now.
  void average_buffers() { reducer_->average_buffers(); }

  const std::shared_ptr<torch::nn::Module>& module() const { return reducer_->module(); }
  const std::shared_ptr<Communicator>& communicator() const { return reducer_->communicator(); }
  /// Elements per gradient bucket, in launch order.
  std::vector<int64_t> bucket_numels() const { return reducer_->bucket_numels(); }
  const DistributedDataParallelStats& stats() const { return reducer_->stats(); }
  void reset_stats() { reducer_->reset_stats(); }

 private:
  std::shared_ptr<detail::GradientReducer> reducer_;
};

}  // namespace mobilenet
