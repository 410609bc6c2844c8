#pragma once
/// \file distributed/default_group.hpp
/// The default communicator, as torch.distributed keeps a default process group:
/// init_distributed() makes one from the environment, and SyncBatchNorm2d uses it when none
/// is set on it.

#include <mobilenet/distributed/communicator.hpp>
#include <mobilenet/distributed/env.hpp>

#include <memory>
#include <utility>

namespace mobilenet {

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

}  // namespace mobilenet
