#pragma once
/// \file distributed/communicator.hpp
/// Who this process is in a data-parallel job (DistributedEnv), how its process group is
/// built (DistributedOptions), and the Communicator: rendezvous through a TCPStore,
/// ProcessGroupGloo on CPU or ProcessGroupNCCL on CUDA, and collectives that throw
/// DistributedError instead of hanging. Also the default communicator (init_distributed) and
/// shard(), the DistributedSampler split.

#include <mobilenet/distributed/detail/distributed_backend.hpp>
#include <mobilenet/train/collectives.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace mobilenet {

// ---------------------------------------------------------------------------------------------
// Environment and options
// ---------------------------------------------------------------------------------------------

/// Who this process is in the job, from the variables torchrun also sets.
/// Example: `auto env = DistributedEnv::from_env(); if (env.rank == 0) { ... }`
struct DistributedEnv {
  /// Global rank (RANK), 0..world_size-1.
  int64_t rank = 0;
  /// Number of processes (WORLD_SIZE); 1 means no process group at all.
  int64_t world_size = 1;
  /// Rank on this machine (LOCAL_RANK, default RANK): picks the CUDA device.
  int64_t local_rank = 0;
  /// Host of rank 0's rendezvous server (MASTER_ADDR).
  std::string master_addr = "127.0.0.1";
  /// Port of rank 0's rendezvous server (MASTER_PORT).
  int64_t master_port = 29500;

  /// True when there is more than one process.
  bool distributed() const { return world_size > 1; }

  /// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. WORLD_SIZE unset (or 1)
  /// means a single process and the others are not needed; otherwise RANK, MASTER_ADDR and
  /// MASTER_PORT are required. Throws DistributedError naming the bad variable.
  static DistributedEnv from_env() {
    DistributedEnv env;
    const auto world = detail::getenv_string("WORLD_SIZE");
    if (!world) {
      return env;
    }
    env.world_size = detail::parse_env_int("WORLD_SIZE", *world, 1, 1 << 20, "an integer");
    const auto rank = detail::getenv_string("RANK");
    if (!rank && env.world_size > 1) {
      throw DistributedError(detail::dist_str("RANK is not set but WORLD_SIZE is ",
                                              env.world_size));
    }
    env.rank = rank ? detail::parse_env_int("RANK", *rank, 0, env.world_size - 1,
                                            "an integer (this process's rank)")
                    : 0;
    const auto local = detail::getenv_string("LOCAL_RANK");
    env.local_rank = local ? detail::parse_env_int("LOCAL_RANK", *local, 0, env.world_size - 1,
                                                   "an integer")
                           : env.rank;
    if (env.world_size == 1) {
      return env;
    }
    const auto addr = detail::getenv_string("MASTER_ADDR");
    if (!addr) {
      throw DistributedError(
          "MASTER_ADDR is not set: it must name the host of rank 0 (127.0.0.1 on one machine)");
    }
    env.master_addr = *addr;
    const auto port = detail::getenv_string("MASTER_PORT");
    if (!port) {
      throw DistributedError("MASTER_PORT is not set: it must be a free TCP port on rank 0's host");
    }
    env.master_port = detail::parse_env_int("MASTER_PORT", *port, 1, 65535, "a TCP port number");
    return env;
  }
};

/// The longest timeout DistributedOptions accepts (7 days). Longer waits are a unit mistake,
/// and c10d adds timeouts to clock readings in nanoseconds, which overflow near 292 years.
inline constexpr std::chrono::milliseconds kMaxDistributedTimeout = std::chrono::hours(24 * 7);

namespace detail {
/// Throws DistributedError unless 1 ms <= `timeout` <= kMaxDistributedTimeout.
inline void check_timeout(std::chrono::milliseconds timeout, const char* name) {
  if (timeout.count() < 1 || timeout > kMaxDistributedTimeout) {
    throw DistributedError(dist_str("DistributedOptions: ", name, " must be in 1 ms..",
                                    seconds(kMaxDistributedTimeout), " s, got ", timeout.count(),
                                    " ms"));
  }
}
}  // namespace detail

/// A timeout given in seconds (a command-line flag, a config file) as milliseconds, checked
/// first: it must be finite and in 0.001..604800 s (kMaxDistributedTimeout), otherwise
/// DistributedError naming `what` and the value. Converting 1e30 s by hand would overflow.
/// Example: `DistributedOptions().timeout(timeout_from_seconds(flag, "--dist-timeout"))`
inline std::chrono::milliseconds timeout_from_seconds(double seconds,
                                                      const std::string& what = "timeout") {
  const double max_s = detail::seconds(kMaxDistributedTimeout);
  if (!std::isfinite(seconds) || seconds < 1e-3 || seconds > max_s) {
    throw DistributedError(detail::dist_str(what, " must be a finite number of seconds in 0.001..",
                                            max_s, ", got ", seconds));
  }
  return std::chrono::milliseconds(std::llround(seconds * 1e3));
}

/// How the process group is built. Example:
/// `DistributedOptions().backend("gloo").timeout(std::chrono::seconds(60))`
///
/// Timeouts: `timeout` bounds every collective and, unless `rendezvous_timeout` is set, the
/// rendezvous too (as torch.distributed.init_process_group's one `timeout` does). Both must be
/// in 1 ms..kMaxDistributedTimeout; the Communicator throws DistributedError otherwise.
struct DistributedOptions {
  /// "auto" (NCCL when this build has it and CUDA is available, else Gloo), "gloo", "nccl".
  TORCH_ARG(std::string, backend) = "auto";
  /// Longest wait for any collective: a rank that died or hung makes the others throw
  /// DistributedError after at most this long. Must exceed the longest time one rank works
  /// alone between collectives (e.g. rank 0 writing a checkpoint). Default 5 minutes.
  TORCH_ARG(std::chrono::milliseconds, timeout) = std::chrono::minutes(5);
  /// Longest wait for all ranks to join at MASTER_ADDR:MASTER_PORT. Unset (default): the
  /// same as `timeout`.
  TORCH_ARG(std::optional<std::chrono::milliseconds>, rendezvous_timeout) = std::nullopt;
  /// Build the backend's process group even when world_size is 1, as torch.distributed does:
  /// collectives then really run (a one-process check that the backend works, e.g. NCCL on
  /// a one-GPU machine). Default false: with one process, collectives are free no-ops.
  TORCH_ARG(bool, single_process_group) = false;

 public:
  /// The rendezvous wait in effect: rendezvous_timeout() when set, else timeout().
  std::chrono::milliseconds effective_rendezvous_timeout() const {
    return rendezvous_timeout_.value_or(timeout_);
  }
};

/// Element-wise reduction across ranks.
enum class ReduceOp { Sum, Max, Min };

namespace detail {

inline c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max:
      return c10d::ReduceOp(c10d::ReduceOp::MAX);
    case ReduceOp::Min:
      return c10d::ReduceOp(c10d::ReduceOp::MIN);
    case ReduceOp::Sum:
    default:
      return c10d::ReduceOp(c10d::ReduceOp::SUM);
  }
}

/// An asynchronous collective; wait() rethrows its failure as DistributedError.
class PendingCollective {
 public:
  PendingCollective() = default;
  PendingCollective(c10::intrusive_ptr<c10d::Work> work, std::string context)
      : work_(std::move(work)), context_(std::move(context)) {}
  bool valid() const { return work_.defined(); }
  void wait() {
    if (!work_.defined()) {
      return;
    }
    auto work = std::move(work_);
    work_.reset();
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw DistributedError(context_ + error_text(e));
    }
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::string context_;
};

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Communicator
// ---------------------------------------------------------------------------------------------

/// A process group: this process's rank, the world, and collectives that throw
/// DistributedError (naming the operation, the rank and the timeout) instead of hanging when
/// a peer dies or hangs. With world_size 1 every collective is a cheap no-op (unless
/// DistributedOptions::single_process_group), so training code needs no `if (distributed)`.
/// It implements the core library's Collectives over c10d, so a
/// `std::shared_ptr<Communicator>` goes wherever training code takes Collectives.
/// Example: `auto comm = Communicator::from_env(); double n = comm->all_reduce_sum(local_n);`
class Communicator : public Collectives {
 public:
  /// Joins the job described by `env` (rendezvous at env.master_addr:env.master_port, rank 0
  /// serving the TCPStore) and builds the backend's process group.
  explicit Communicator(DistributedEnv env = DistributedEnv(),
                        DistributedOptions options = DistributedOptions())
      : env_(std::move(env)), options_(std::move(options)) {
    TORCH_CHECK(env_.world_size >= 1, "Communicator: world_size must be >= 1, got ",
                env_.world_size);
    TORCH_CHECK(env_.rank >= 0 && env_.rank < env_.world_size, "Communicator: rank ", env_.rank,
                " is outside 0..", env_.world_size - 1);
    detail::check_timeout(options_.timeout(), "timeout");
    if (options_.rendezvous_timeout()) {
      detail::check_timeout(*options_.rendezvous_timeout(), "rendezvous_timeout");
    }
    backend_ = choose_backend();
    if (backend_ == "nccl") {
      device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env_.local_rank));
    }
    if (env_.world_size == 1 && !options_.single_process_group()) {
      return;
    }
    rendezvous();
    create_group();
  }

  /// Communicator for the job described by the environment (DistributedEnv::from_env()).
  static std::shared_ptr<Communicator> from_env(DistributedOptions options = DistributedOptions()) {
    return std::make_shared<Communicator>(DistributedEnv::from_env(), std::move(options));
  }

  int64_t rank() const override { return env_.rank; }
  int64_t world_size() const override { return env_.world_size; }
  int64_t local_rank() const { return env_.local_rank; }
  const DistributedEnv& env() const { return env_; }
  const DistributedOptions& options() const { return options_; }
  /// "gloo", "nccl", or "none" (world_size 1 without single_process_group).
  const std::string& backend() const { return backend_; }
  /// Where this rank's model and the tensors it reduces live: cuda:LOCAL_RANK with NCCL,
  /// the CPU otherwise.
  torch::Device device() const { return device_; }

  /// Reduces `tensor` in place across ranks (every rank gets the result).
  void all_reduce_(torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum) {
    if (!group_) {
      return;
    }
    auto work = all_reduce_async(tensor, op, "all_reduce");
    work.wait();
  }

  /// The element-wise reduction of `tensor` over ranks, on tensor's device; `tensor` is
  /// unchanged. Tensors may live anywhere; they travel through device() if needed.
  torch::Tensor all_reduce(const torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum) {
    if (!group_) {
      return tensor.clone();
    }
    auto buffer = tensor.detach().to(device_, /*non_blocking=*/false, /*copy=*/true).contiguous();
    all_reduce_(buffer, op);
    return buffer.to(tensor.device());
  }

  /// Sum of a number over ranks (counts, loss sums). Integers stay exact.
  template <typename T, typename = std::enable_if_t<std::is_arithmetic<T>::value>>
  T all_reduce_sum(T value) {
    if (!group_) {
      return value;
    }
    const auto dtype = std::is_integral<T>::value ? torch::kInt64 : torch::kFloat64;
    torch::Tensor t =
        torch::full({1}, static_cast<double>(value), torch::TensorOptions().dtype(dtype));
    if (std::is_integral<T>::value) {
      t.fill_(static_cast<int64_t>(value));
    }
    t = all_reduce(t);
    return std::is_integral<T>::value ? static_cast<T>(t.item<int64_t>())
                                      : static_cast<T>(t.item<double>());
  }

  /// All ranks' `tensor`s concatenated along dim 0 in rank order (sizes along dim 0 may
  /// differ; other dims and the dtype must agree). For metrics that need every prediction,
  /// e.g. mAP over a validation set sharded across ranks.
  torch::Tensor all_gather_cat(const torch::Tensor& tensor) {
    TORCH_CHECK(tensor.dim() >= 1, "all_gather_cat: tensor must have at least one dimension");
    if (!group_) {
      return tensor.clone();
    }
    auto local = tensor.detach().to(device_).contiguous();
    auto count = torch::full({1}, local.size(0),
                             torch::TensorOptions().dtype(torch::kInt64).device(device_));
    const auto counts = gather(count, "all_gather_cat (sizes)");
    int64_t longest = 0;
    std::vector<int64_t> rows;
    for (const auto& c : counts) {
      rows.push_back(c.item<int64_t>());
      longest = std::max(longest, rows.back());
    }
    // Gloo's allgather needs equal shapes: pad to the longest, trim afterwards.
    auto shape = local.sizes().vec();
    shape[0] = longest;
    auto padded = torch::zeros(shape, local.options());
    padded.narrow(0, 0, local.size(0)).copy_(local);
    auto parts = gather(padded, "all_gather_cat");
    for (size_t r = 0; r < parts.size(); ++r) {
      parts[r] = parts[r].narrow(0, 0, rows[r]);
    }
    return torch::cat(parts, 0).to(tensor.device());
  }

  /// Copies rank `root`'s tensors into everyone's `tensors` (same shapes and dtypes on all
  /// ranks). Tensors of one dtype and device travel as one flat message.
  void broadcast_(std::vector<torch::Tensor>& tensors, int64_t root = 0) {
    TORCH_CHECK(root >= 0 && root < world_size(), "broadcast_: root ", root, " is not a rank");
    if (!group_ || tensors.empty()) {
      return;
    }
    torch::NoGradGuard no_grad;
    for (auto& group : group_by_type(tensors)) {
      std::vector<torch::Tensor> pieces;
      for (auto i : group) {
        pieces.push_back(tensors[i].detach().reshape(-1));
      }
      auto flat = torch::cat(pieces).to(device_);
      std::vector<torch::Tensor> list{flat};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      detail::PendingCollective(guarded([&] { return group_->broadcast(list, o); }, "broadcast"),
                                context("broadcast"))
          .wait();
      int64_t offset = 0;
      for (auto i : group) {
        auto& t = tensors[i];
        t.detach().copy_(flat.narrow(0, offset, t.numel()).view_as(t));
        offset += t.numel();
      }
    }
  }

  /// Returns once every rank has called barrier().
  void barrier() override {
    if (!group_) {
      return;
    }
    detail::PendingCollective(guarded([&] { return group_->barrier(); }, "barrier"),
                              context("barrier"))
        .wait();
  }

  /// Collectives: all_reduce_sum(value).
  double sum(double value) override { return all_reduce_sum(value); }

  /// Collectives: all_gather_cat(rows).
  torch::Tensor gather_rows(const torch::Tensor& rows) override { return all_gather_cat(rows); }

  /// Collectives: broadcast_(tensors, root).
  void broadcast(std::vector<torch::Tensor>& tensors, int64_t root = 0) override {
    broadcast_(tensors, root);
  }

  /// Starts an in-place reduction of a contiguous tensor on device(); wait() on the result
  /// before reading the tensor. `what` names it in error messages. For DistributedDataParallel.
  detail::PendingCollective all_reduce_async(torch::Tensor& tensor, ReduceOp op,
                                             const std::string& what) {
    if (!group_) {
      return detail::PendingCollective();
    }
    TORCH_CHECK(tensor.is_contiguous(), what, ": all-reduce needs a contiguous tensor");
    std::vector<torch::Tensor> list{tensor};
    c10d::AllreduceOptions o;
    o.reduceOp = detail::to_c10d(op);
    return detail::PendingCollective(guarded([&] { return group_->allreduce(list, o); }, what),
                                     context(what));
  }

 private:
  std::string choose_backend() const {
    const auto& b = options_.backend();
    TORCH_CHECK(b == "auto" || b == "gloo" || b == "nccl",
                "DistributedOptions: backend must be auto, gloo or nccl, got '", b, "'");
    if (env_.world_size == 1 && b == "auto" && !options_.single_process_group()) {
      return "none";
    }
    if (b == "nccl" || (b == "auto" && MOBILENET_HAS_NCCL && torch::cuda::is_available())) {
      if (!MOBILENET_HAS_NCCL) {
        throw DistributedError(
            "backend 'nccl' requested but this LibTorch build has no ProcessGroupNCCL "
            "(USE_C10D_NCCL is not defined); use backend 'gloo'");
      }
      return "nccl";
    }
    if (!MOBILENET_HAS_GLOO) {
      throw DistributedError(
          "this LibTorch build has no usable Gloo backend: USE_C10D_GLOO is not defined or "
          "Gloo's headers (<gloo/algorithm.h>, Debian package libgloo-dev) are missing");
    }
    return "gloo";
  }

  std::string where() const {
    return detail::dist_str(env_.master_addr, ":", env_.master_port);
  }

  std::string context(const std::string& what) const {
    return detail::dist_str("rank ", env_.rank, " of ", env_.world_size, ": ", what, " (",
                            backend_, ") failed: a peer rank died, hung for more than the ",
                            detail::seconds(options_.timeout()),
                            " s timeout, or the network broke: ");
  }

  // Issuing a collective can itself throw (a closed connection); give that the same text.
  template <typename F>
  c10::intrusive_ptr<c10d::Work> guarded(F&& issue, const std::string& what) const {
    try {
      return issue();
    } catch (const std::exception& e) {
      throw DistributedError(context(what) + detail::error_text(e));
    }
  }

  std::vector<torch::Tensor> gather(const torch::Tensor& local, const std::string& what) {
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int64_t r = 0; r < world_size(); ++r) {
      outputs[0].push_back(torch::empty_like(local));
    }
    std::vector<torch::Tensor> inputs{local};
    detail::PendingCollective(guarded([&] { return group_->allgather(outputs, inputs); }, what),
                              context(what))
        .wait();
    return outputs[0];
  }

  static std::vector<std::vector<size_t>> group_by_type(const std::vector<torch::Tensor>& ts) {
    std::vector<std::vector<size_t>> groups;
    std::vector<std::pair<torch::Dtype, torch::Device>> keys;
    for (size_t i = 0; i < ts.size(); ++i) {
      const auto key = std::make_pair(ts[i].scalar_type(), ts[i].device());
      auto it = std::find(keys.begin(), keys.end(), key);
      if (it == keys.end()) {
        keys.push_back(key);
        groups.emplace_back();
        it = keys.end() - 1;
      }
      groups[static_cast<size_t>(it - keys.begin())].push_back(i);
    }
    return groups;
  }

  // Rank 0 serves a TCPStore at MASTER_ADDR:MASTER_PORT; everyone counts in there, so a
  // missing rank, a wrong address or a busy port becomes one clear message.
  void rendezvous() {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env_.master_port);
    so.isServer = env_.rank == 0;
    so.numWorkers = static_cast<size_t>(env_.world_size);
    so.waitWorkers = false;  // counted below, with a better message
    const auto wait = options_.effective_rendezvous_timeout();
    so.timeout = wait;
    const auto rdv_s = detail::seconds(wait);
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, so);
    } catch (const std::exception& e) {
      if (env_.rank == 0) {
        throw DistributedError(detail::dist_str(
            "rank 0 could not start the rendezvous server on MASTER_ADDR:MASTER_PORT = ", where(),
            " (port already in use, or MASTER_ADDR is not this machine?): ",
            detail::error_text(e)));
      }
      throw DistributedError(detail::dist_str(
          "rendezvous timed out: rank ", env_.rank, " could not reach rank 0's server at "
          "MASTER_ADDR:MASTER_PORT = ", where(), " within ", rdv_s,
          " s (is rank 0 running, with the same MASTER_ADDR and MASTER_PORT?): ",
          detail::error_text(e)));
    }
    const auto deadline = std::chrono::steady_clock::now() + wait;
    int64_t joined = 0;
    try {
      if (store_->add(detail::dist_str("mobilenet/rank/", env_.rank), 1) != 1) {
        throw DistributedError(detail::dist_str("rendezvous at ", where(), ": two processes have RANK=",
                                                env_.rank));
      }
      joined = store_->add("mobilenet/joined", 1);
      while (joined < env_.world_size) {
        if (std::chrono::steady_clock::now() > deadline) {
          throw DistributedError(detail::dist_str(
              "rendezvous timed out after ", rdv_s, " s at MASTER_ADDR:MASTER_PORT = ", where(),
              ": only ", joined, " of WORLD_SIZE=", env_.world_size,
              " ranks joined (were all ranks started, with the same WORLD_SIZE?)"));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        joined = store_->add("mobilenet/joined", 0);
      }
    } catch (const DistributedError&) {
      throw;
    } catch (const std::exception& e) {
      throw DistributedError(detail::dist_str("rendezvous at ", where(), " failed on rank ",
                                              env_.rank, " (did rank 0 exit?): ",
                                              detail::error_text(e)));
    }
  }

  void create_group() {
    try {
      if (backend_ == "gloo") {
#if MOBILENET_HAS_GLOO
        auto o = c10d::ProcessGroupGloo::Options::create(options_.timeout());
        if (const auto iface = detail::getenv_string("GLOO_SOCKET_IFNAME")) {
          o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*iface));
        } else if (detail::is_loopback_address(env_.master_addr)) {
          o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        } else {
          o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        }
        group_ = std::make_unique<detail::C10dGroup<c10d::ProcessGroupGloo>>(
            c10::make_intrusive<c10d::ProcessGroupGloo>(store_, static_cast<int>(env_.rank),
                                                        static_cast<int>(env_.world_size), o));
#endif
      } else {
#if MOBILENET_HAS_NCCL
        // Without blocking wait, a dead peer makes NCCL collectives spin forever.
        ::setenv("NCCL_BLOCKING_WAIT", "1", 0);
        ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
        c10::cuda::set_device(static_cast<c10::DeviceIndex>(env_.local_rank));
        auto o = c10d::ProcessGroupNCCL::Options::create();
        o->timeout = options_.timeout();
        group_ = std::make_unique<detail::C10dGroup<c10d::ProcessGroupNCCL>>(
            c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, static_cast<int>(env_.rank),
                                                        static_cast<int>(env_.world_size), o));
#endif
      }
    } catch (const std::exception& e) {
      throw DistributedError(detail::dist_str("rank ", env_.rank, ": creating the ", backend_,
                                              " process group (rendezvous at ", where(),
                                              ") failed: ", detail::error_text(e)));
    }
    TORCH_INTERNAL_ASSERT(group_ != nullptr);
  }

  DistributedEnv env_;
  DistributedOptions options_;
  std::string backend_ = "none";
  torch::Device device_ = torch::kCPU;
  c10::intrusive_ptr<c10d::Store> store_;  // rank 0 serves it: must outlive the group
  std::unique_ptr<detail::CollectiveGroup> group_;
};

namespace detail {
inline std::shared_ptr<Communicator>& default_communicator_slot() {
  static std::shared_ptr<Communicator> slot;
  return slot;
}
}  // namespace detail

/// The communicator SyncBatchNorm2d uses when none is set on it (null until
/// init_distributed() or set_default_communicator()).
inline std::shared_ptr<Communicator> default_communicator() {
  return detail::default_communicator_slot();
}

/// Makes `comm` the default communicator (nullptr clears it).
inline void set_default_communicator(std::shared_ptr<Communicator> comm) {
  detail::default_communicator_slot() = std::move(comm);
}

/// Communicator::from_env() made the default: the C++ twin of
/// `torch.distributed.init_process_group("env://")`. Safe in single-process runs.
inline std::shared_ptr<Communicator> init_distributed(DistributedOptions options = DistributedOptions()) {
  auto comm = Communicator::from_env(std::move(options));
  set_default_communicator(comm);
  return comm;
}

/// The items rank `rank` of `world` processes handles: items rank, rank+world, ... (like
/// PyTorch's DistributedSampler). With `pad` the list is first padded with its own leading
/// items to a multiple of `world`, so every rank runs the same number of steps (required:
/// DistributedDataParallel's collectives must match). Shuffle with the same seed on every
/// rank before sharding. Use pad=false for evaluation with all_gather_cat.
template <typename T>
std::vector<T> shard(const std::vector<T>& items, int64_t rank, int64_t world, bool pad = true) {
  TORCH_CHECK(world >= 1 && rank >= 0 && rank < world, "shard: rank ", rank,
              " is outside 0..", world - 1);
  std::vector<T> out;
  const int64_t n = static_cast<int64_t>(items.size());
  const int64_t total = (pad && n > 0) ? (n + world - 1) / world * world : n;
  for (int64_t i = rank; i < total; i += world) {
    out.push_back(items[static_cast<size_t>(i % n)]);
  }
  return out;
}

}  // namespace mobilenet
