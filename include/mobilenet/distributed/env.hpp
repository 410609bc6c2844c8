#pragma once
/// \file distributed/env.hpp
/// Who this process is in a data-parallel job (DistributedEnv, from the variables torchrun
/// sets) and how its process group is built (DistributedOptions, checked timeouts): what a
/// program reads before any rendezvous.

#include <mobilenet/distributed/detail/distributed_backend.hpp>
#include <mobilenet/distributed/error.hpp>

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

namespace mobilenet {

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

}  // namespace mobilenet
