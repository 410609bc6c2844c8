#pragma once
/// \file distributed/communicator.hpp
/// The Communicator: rendezvous through a TCPStore, ProcessGroupGloo on CPU or
/// ProcessGroupNCCL on CUDA, and the collectives in torch.distributed's words (all_reduce,
/// all_gather, broadcast, barrier, ReduceOp), which throw DistributedError instead of
/// hanging. Who the process is and how the group is built: env.hpp; the default group:
/// default_group.hpp.

#include <mobilenet/distributed/detail/distributed_backend.hpp>
#include <mobilenet/distributed/env.hpp>
#include <mobilenet/distributed/error.hpp>
#include <mobilenet/train/collectives.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mobilenet {

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

}  // namespace detail

/// An asynchronous collective (Communicator::all_reduce_async); wait() rethrows its failure
/// as DistributedError. Like torch.distributed.Work.
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
      throw DistributedError(context_ + detail::error_text(e));
    }
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::string context_;
};


// ---------------------------------------------------------------------------------------------
// Communicator
// ---------------------------------------------------------------------------------------------

/// A process group: this process's rank, the world, and collectives that throw
/// DistributedError (naming the operation, the rank and the timeout) instead of hanging when
/// a peer dies or hangs. With world_size 1 every collective is a cheap no-op (unless
/// DistributedOptions::single_process_group), so training code needs no `if (distributed)`.
/// It implements the core library's Collectives over c10d, with its names, so a
/// `std::shared_ptr<Communicator>` goes wherever training code takes Collectives.
/// Example: `auto comm = Communicator::from_env(); double n = comm->all_reduce(double(local_n));`
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

  using Collectives::all_reduce;  // all_reduce(double value, op)

  /// Reduces `tensor` element-wise across ranks, in place: every rank gets the result (as
  /// torch.distributed.all_reduce). The tensor may live anywhere and need not be contiguous:
  /// it travels through device() when it must.
  void all_reduce(torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum) override {
    if (!group_) {
      return;
    }
    if (tensor.device() == device_ && tensor.is_contiguous()) {
      all_reduce_async(tensor, op, "all_reduce").wait();
      return;
    }
    auto buffer = tensor.detach().to(device_, /*non_blocking=*/false, /*copy=*/true).contiguous();
    all_reduce_async(buffer, op, "all_reduce").wait();
    tensor.detach().copy_(buffer);
  }

  /// All ranks' `rows` concatenated along dim 0 in rank order, on every rank (sizes along
  /// dim 0 may differ; other dims and the dtype must agree). For metrics that need every
  /// prediction, e.g. mAP over a validation set sharded across ranks.
  torch::Tensor all_gather(const torch::Tensor& rows) override {
    TORCH_CHECK(rows.dim() >= 1, "all_gather: rows must have at least one dimension");
    if (!group_) {
      return rows.clone();
    }
    auto local = rows.detach().to(device_).contiguous();
    auto count = torch::full({1}, local.size(0),
                             torch::TensorOptions().dtype(torch::kInt64).device(device_));
    const auto counts = gather(count, "all_gather (sizes)");
    int64_t longest = 0;
    std::vector<int64_t> sizes;
    for (const auto& c : counts) {
      sizes.push_back(c.item<int64_t>());
      longest = std::max(longest, sizes.back());
    }
    // Gloo's allgather needs equal shapes: pad to the longest, trim afterwards.
    auto shape = local.sizes().vec();
    shape[0] = longest;
    auto padded = torch::zeros(shape, local.options());
    padded.narrow(0, 0, local.size(0)).copy_(local);
    auto parts = gather(padded, "all_gather");
    for (size_t r = 0; r < parts.size(); ++r) {
      parts[r] = parts[r].narrow(0, 0, sizes[r]);
    }
    return torch::cat(parts, 0).to(rows.device());
  }

  /// Copies rank `root`'s tensors into everyone's `tensors`, in place (same shapes and dtypes
  /// on all ranks). Tensors of one dtype and device travel as one flat message.
  void broadcast(std::vector<torch::Tensor>& tensors, int64_t root = 0) override {
    TORCH_CHECK(root >= 0 && root < world_size(), "broadcast: root ", root, " is not a rank");
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
      PendingCollective(guarded([&] { return group_->broadcast(list, o); }, "broadcast"),
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
    PendingCollective(guarded([&] { return group_->barrier(); }, "barrier"),
                              context("barrier"))
        .wait();
  }

  /// Starts an in-place reduction of a contiguous tensor on device() (as all_reduce with
  /// async_op=True); wait() on the result before reading the tensor. `what` names it in error
  /// messages. For DistributedDataParallel's buckets.
  PendingCollective all_reduce_async(torch::Tensor& tensor, ReduceOp op,
                                             const std::string& what) {
    if (!group_) {
      return PendingCollective();
    }
    TORCH_CHECK(tensor.is_contiguous(), what, ": all-reduce needs a contiguous tensor");
    std::vector<torch::Tensor> list{tensor};
    c10d::AllreduceOptions o;
    o.reduceOp = detail::to_c10d(op);
    return PendingCollective(guarded([&] { return group_->allreduce(list, o); }, what),
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
    PendingCollective(guarded([&] { return group_->allgather(outputs, inputs); }, what),
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

}  // namespace mobilenet
