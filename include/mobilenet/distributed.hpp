#pragma once
/// \file distributed.hpp
/// Multi-process data-parallel training on LibTorch's c10d: rendezvous from the standard
/// environment variables through a TCPStore, ProcessGroupGloo on CPU and ProcessGroupNCCL on
/// CUDA (when the build has it), a DistributedDataParallel helper that averages gradients in
/// buckets while backward runs, SyncBatchNorm2d, metric reductions and a local launcher.
///
/// Typical rank program (launched by `launch_local`, torchrun, or by hand with the variables):
/// \code
///   auto comm = mobilenet::init_distributed();              // RANK, WORLD_SIZE, MASTER_*
///   torch::manual_seed(0);
///   MobileNetV2 model(options);                               // same seed: same init anyway
///   model->to(comm->device());
///   mobilenet::DistributedDataParallel ddp(model, comm);    // rank 0's weights everywhere
///   torch::optim::SGD opt(model->parameters(), 0.1);
///   for (auto& batch : my_shard) {
///     opt.zero_grad();
///     loss_fn(model->forward(batch.data), batch.target).backward();
///     ddp.synchronize();                                      // averaged gradients in .grad
///     opt.step();
///   }
/// \endcode

#include <mobilenet/detail/distributed_backend.hpp>
#include <mobilenet/detail/distributed_launch.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
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

/// How the process group is built. Example:
/// `DistributedOptions().backend("gloo").timeout(std::chrono::seconds(60))`
struct DistributedOptions {
  /// "auto" (NCCL when this build has it and CUDA is available, else Gloo), "gloo", "nccl".
  TORCH_ARG(std::string, backend) = "auto";
  /// Longest wait for any collective: a rank that died or hung makes the others throw
  /// DistributedError after at most this long. Must exceed the longest time one rank works
  /// alone between collectives (e.g. rank 0 writing a checkpoint). Default 5 minutes.
  TORCH_ARG(std::chrono::milliseconds, timeout) = std::chrono::minutes(5);
  /// Longest wait for all ranks to join at MASTER_ADDR:MASTER_PORT. Default 2 minutes.
  TORCH_ARG(std::chrono::milliseconds, rendezvous_timeout) = std::chrono::minutes(2);
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

inline double seconds(std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1e3; }

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
/// a peer dies or hangs. With world_size 1 every collective is a cheap no-op, so training
/// code needs no `if (distributed)`.
/// Example: `auto comm = Communicator::from_env(); double n = comm->all_reduce_sum(local_n);`
class Communicator {
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
    TORCH_CHECK(options_.timeout().count() > 0, "Communicator: timeout must be positive");
    TORCH_CHECK(options_.rendezvous_timeout().count() > 0,
                "Communicator: rendezvous_timeout must be positive");
    backend_ = choose_backend();
    if (backend_ == "nccl") {
      device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env_.local_rank));
    }
    if (env_.world_size == 1) {
      return;
    }
    rendezvous();
    create_group();
  }

  /// Communicator for the job described by the environment (DistributedEnv::from_env()).
  static std::shared_ptr<Communicator> from_env(DistributedOptions options = DistributedOptions()) {
    return std::make_shared<Communicator>(DistributedEnv::from_env(), std::move(options));
  }

  int64_t rank() const { return env_.rank; }
  int64_t world_size() const { return env_.world_size; }
  int64_t local_rank() const { return env_.local_rank; }
  /// Rank 0: the one that writes logs, plots and checkpoints.
  bool is_main() const { return env_.rank == 0; }
  bool distributed() const { return env_.world_size > 1; }
  const DistributedEnv& env() const { return env_; }
  const DistributedOptions& options() const { return options_; }
  /// "gloo", "nccl", or "none" (world_size 1).
  const std::string& backend() const { return backend_; }
  /// Where this rank's model and the tensors it reduces live: cuda:LOCAL_RANK with NCCL,
  /// the CPU otherwise.
  torch::Device device() const { return device_; }

  /// Reduces `tensor` in place across ranks (every rank gets the result).
  void all_reduce_(torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum) {
    if (!distributed()) {
      return;
    }
    auto work = all_reduce_async(tensor, op, "all_reduce");
    work.wait();
  }

  /// The element-wise reduction of `tensor` over ranks, on tensor's device; `tensor` is
  /// unchanged. Tensors may live anywhere; they travel through device() if needed.
  torch::Tensor all_reduce(const torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum) {
    if (!distributed()) {
      return tensor.clone();
    }
    auto buffer = tensor.detach().to(device_, /*non_blocking=*/false, /*copy=*/true).contiguous();
    all_reduce_(buffer, op);
    return buffer.to(tensor.device());
  }

  /// Sum of a number over ranks (counts, loss sums). Integers stay exact.
  template <typename T, typename = std::enable_if_t<std::is_arithmetic<T>::value>>
  T all_reduce_sum(T value) {
    if (!distributed()) {
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
    if (!distributed()) {
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
    if (!distributed() || tensors.empty()) {
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
  void barrier() {
    if (!distributed()) {
      return;
    }
    detail::PendingCollective(guarded([&] { return group_->barrier(); }, "barrier"),
                              context("barrier"))
        .wait();
  }

  /// Starts an in-place reduction of a contiguous tensor on device(); wait() on the result
  /// before reading the tensor. `what` names it in error messages. For DistributedDataParallel.
  detail::PendingCollective all_reduce_async(torch::Tensor& tensor, ReduceOp op,
                                             const std::string& what) {
    if (!distributed()) {
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
    if (env_.world_size == 1 && b == "auto") {
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
    so.timeout = options_.rendezvous_timeout();
    const auto rdv_s = detail::seconds(options_.rendezvous_timeout());
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
    const auto deadline = std::chrono::steady_clock::now() + options_.rendezvous_timeout();
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

// ---------------------------------------------------------------------------------------------
// SyncBatchNorm2d
// ---------------------------------------------------------------------------------------------

/// BatchNorm2d whose training-mode statistics are those of the global batch across all
/// ranks (one all-reduce in forward and one in backward per layer). Parameter and buffer
/// names match torch::nn::BatchNorm2d, so state dicts are interchangeable. Without a
/// communicator (or with one process) it is exactly BatchNorm2d. Use it as the `Norm`
/// template argument of ConvBnAct, or anywhere BatchNorm2d goes.
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
    auto reduced = comm.all_reduce(local.detach());
    torch::Tensor global = reduced;
    if (local.requires_grad() && torch::GradMode::is_enabled()) {
      // Forward value: the global sums. Backward: d(global)/d(local) is the identity and the
      // loss on every rank depends on the global sums, so the gradient is all-reduced too.
      global = reduced + (local - local.detach());
      global.register_hook(
          [comm_ptr](torch::Tensor grad) { return comm_ptr->all_reduce(grad); });
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

// ---------------------------------------------------------------------------------------------
// DistributedDataParallel
// ---------------------------------------------------------------------------------------------

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
    comm_->broadcast_(state, root);
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
    comm_->all_reduce_(flat);
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

// ---------------------------------------------------------------------------------------------
// Local launcher
// ---------------------------------------------------------------------------------------------

/// How launch_local starts ranks. Example: `LaunchOptions(2).grace(std::chrono::seconds(10))`
struct LaunchOptions {
  /* implicit */ LaunchOptions(int64_t nproc) : nproc_(nproc) {}
  /// Number of ranks to start on this machine.
  TORCH_ARG(int64_t, nproc);
  /// MASTER_ADDR given to the ranks. Default 127.0.0.1 (loopback only).
  TORCH_ARG(std::string, master_addr) = "127.0.0.1";
  /// MASTER_PORT given to the ranks; 0 (default) picks a free port.
  TORCH_ARG(int64_t, master_port) = 0;
  /// Program to start; empty (default) means this program (/proc/self/exe).
  TORCH_ARG(std::string, executable) = "";
  /// After a rank fails, how long the others get to notice and exit with their own error
  /// before they are sent SIGTERM (then SIGKILL 2 s later). Default 10 s.
  TORCH_ARG(std::chrono::milliseconds, grace) = std::chrono::seconds(10);
  /// Wall-clock limit for the whole job, 0 = none. Default 0.
  TORCH_ARG(std::chrono::milliseconds, job_timeout) = std::chrono::milliseconds(0);
  /// OMP_NUM_THREADS for each rank when the variable is not already set: 0 (default) gives
  /// hardware threads / nproc, at least 1, so ranks do not oversubscribe the cores.
  TORCH_ARG(int64_t, threads_per_rank) = 0;
};

/// A TCP port that is free on `address` now (the OS picks it). Another process could take
/// it before it is used; fine for tests and one-machine launches.
inline int free_port(const std::string& address = "127.0.0.1") {
  return detail::free_tcp_port(address);
}

/// Runs `options.nproc()` copies of a program (this one by default) with arguments `args`
/// (without argv[0]) and RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and
/// MASTER_PORT set, and waits for all of them. If one fails, the others get `grace` to exit
/// on their own, then are terminated. Returns when every rank exited with status 0; throws
/// DistributedError describing each rank's exit otherwise. The ranks inherit stdout/stderr.
/// Example (in main): `if (nproc > 1 && !std::getenv("RANK")) { launch_local(nproc, args); return 0; }`
inline void launch_local(const LaunchOptions& options, const std::vector<std::string>& args) {
  using Clock = std::chrono::steady_clock;
  const int64_t n = options.nproc();
  TORCH_CHECK(n >= 1, "launch_local: nproc must be >= 1, got ", n);
  const int64_t port =
      options.master_port() > 0 ? options.master_port() : free_port(options.master_addr());
  TORCH_CHECK(port <= 65535, "launch_local: master_port must be <= 65535, got ", port);
  const std::string exe =
      options.executable().empty() ? detail::self_executable() : options.executable();
  const bool threads_set = detail::getenv_string("OMP_NUM_THREADS").has_value();
  const int64_t hardware = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t threads =
      options.threads_per_rank() > 0 ? options.threads_per_rank() : std::max<int64_t>(1, hardware / n);
  const auto base = detail::environment_without(
      {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"});
  std::vector<std::string> argv{exe};
  argv.insert(argv.end(), args.begin(), args.end());

  std::vector<pid_t> pids;
  std::vector<int> status(static_cast<size_t>(n), 0);
  std::vector<bool> running;
  auto signal_running = [&](int sig) {
    for (size_t r = 0; r < pids.size(); ++r) {
      if (running[r]) {
        ::kill(pids[r], sig);
      }
    }
  };
  for (int64_t r = 0; r < n; ++r) {
    auto env = base;
    env.push_back(detail::dist_str("RANK=", r));
    env.push_back(detail::dist_str("LOCAL_RANK=", r));
    env.push_back(detail::dist_str("WORLD_SIZE=", n));
    env.push_back(detail::dist_str("LOCAL_WORLD_SIZE=", n));
    env.push_back("MASTER_ADDR=" + options.master_addr());
    env.push_back(detail::dist_str("MASTER_PORT=", port));
    if (!threads_set || options.threads_per_rank() > 0) {
      env.push_back(detail::dist_str("OMP_NUM_THREADS=", threads));
    }
    try {
      pids.push_back(detail::spawn_process(exe, argv, env));
      running.push_back(true);
    } catch (...) {
      signal_running(SIGKILL);
      for (auto pid : pids) {
        ::waitpid(pid, nullptr, 0);
      }
      throw;
    }
  }

  int64_t first_failure = -1;
  bool timed_out = false;
  const auto start = Clock::now();
  Clock::time_point failed_at{}, terminated_at{};
  bool terminated = false, killed = false;
  size_t alive = pids.size();
  while (alive > 0) {
    for (size_t r = 0; r < pids.size(); ++r) {
      if (!running[r]) {
        continue;
      }
      int st = 0;
      const pid_t done = ::waitpid(pids[r], &st, WNOHANG);
      if (done == pids[r] || (done < 0 && errno == ECHILD)) {
        running[r] = false;
        status[r] = done == pids[r] ? st : 0;
        --alive;
        const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!ok && first_failure < 0) {
          first_failure = static_cast<int64_t>(r);
          failed_at = Clock::now();
        }
      }
    }
    const auto now = Clock::now();
    if (!timed_out && options.job_timeout().count() > 0 && now - start > options.job_timeout() &&
        alive > 0) {
      timed_out = true;
      if (first_failure < 0) {
        failed_at = now - options.grace();  // terminate at once
      }
    }
    const bool failing = first_failure >= 0 || timed_out;
    if (failing && !terminated && alive > 0 && now - failed_at >= options.grace()) {
      signal_running(SIGTERM);
      terminated = true;
      terminated_at = now;
    }
    if (terminated && !killed && alive > 0 && now - terminated_at > std::chrono::seconds(2)) {
      signal_running(SIGKILL);
      killed = true;
    }
    if (alive > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (first_failure < 0 && !timed_out) {
    return;
  }
  std::string report = timed_out ? detail::dist_str("launch_local: the job exceeded its ",
                                                    detail::seconds(options.job_timeout()),
                                                    " s limit")
                                 : detail::dist_str("launch_local: rank ", first_failure,
                                                    " of ", n, " failed first");
  for (int64_t r = 0; r < n; ++r) {
    report += detail::dist_str("; rank ", r, " ", detail::describe_wait_status(status[r]));
  }
  throw DistributedError(report);
}

/// launch_local with this program's own arguments (argv[1..]).
inline void launch_local(const LaunchOptions& options, int argc, char** argv) {
  launch_local(options, std::vector<std::string>(argv + 1, argv + argc));
}

}  // namespace mobilenet
