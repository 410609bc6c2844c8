#pragma once
/// \file distributed/error.hpp
/// The error distributed setup and collectives throw.

#include <stdexcept>

namespace mobilenet {

/// Thrown when distributed setup or a collective fails: bad environment variables, a
/// rendezvous that times out, or a peer rank that died or hung past the timeout. A process
/// group that threw is broken; the process should exit (non-zero).
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace mobilenet
