#pragma once
/// \file distributed/detail/distributed_backend.hpp
/// c10d plumbing behind mobilenet/distributed/: which backends this LibTorch build has,
/// a type-erased process group, environment parsing and error text.

#include <mobilenet/distributed/error.hpp>

#include <torch/torch.h>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

// Gloo: LibTorch's CMake target defines USE_C10D_GLOO when it was built with Gloo, but
// ProcessGroupGloo.hpp also needs Gloo's own headers (Debian: libgloo-dev), which some
// LibTorch distributions do not ship. Without both, the CPU backend is compiled out.
#if !defined(MOBILENET_HAS_GLOO)
#if defined(USE_C10D_GLOO) && __has_include(<gloo/algorithm.h>)
#define MOBILENET_HAS_GLOO 1
#else
#define MOBILENET_HAS_GLOO 0
#endif
#endif
#if MOBILENET_HAS_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

// NCCL: only CUDA builds of LibTorch define USE_C10D_NCCL (Debian's CPU build does not).
#if !defined(MOBILENET_HAS_NCCL)
#if defined(USE_C10D_NCCL) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#define MOBILENET_HAS_NCCL 1
#else
#define MOBILENET_HAS_NCCL 0
#endif
#endif
#if MOBILENET_HAS_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace mobilenet {
namespace detail {

/// Concatenates its arguments with operator<<.
template <typename... Args>
std::string dist_str(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

/// The message of an exception, without LibTorch's C++ backtrace (unreadable in a log).
inline std::string error_text(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    return c10_error->what_without_backtrace();
  }
  return e.what();
}

/// Reads environment variable `name`; empty optional when unset or empty.
inline std::optional<std::string> getenv_string(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  return std::string(value);
}

/// Parses `text` (the value of variable `name`) as an integer in [lo, hi]; `what` says what
/// the variable is, for the message.
inline int64_t parse_env_int(const char* name, const std::string& text, int64_t lo, int64_t hi,
                             const char* what) {
  size_t used = 0;
  int64_t value = 0;
  bool ok = !text.empty();
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    ok = false;
  }
  if (!ok || used != text.size() || value < lo || value > hi) {
    throw DistributedError(dist_str(name, " must be ", what, " in ", lo, "..", hi, ", got '",
                                    text, "'"));
  }
  return value;
}

/// The c10d calls mobilenet uses, independent of the concrete process group class: in
/// LibTorch 1.x ProcessGroupGloo/NCCL derive from c10d::ProcessGroup, in 2.x from
/// c10d::Backend, so the concrete type is held instead of a common base.
class CollectiveGroup {
 public:
  virtual ~CollectiveGroup() = default;
  virtual c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors,
                                                   const c10d::AllreduceOptions& options) = 0;
  virtual c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                                   const c10d::BroadcastOptions& options) = 0;
  virtual c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                                   std::vector<at::Tensor>& inputs) = 0;
  virtual c10::intrusive_ptr<c10d::Work> barrier() = 0;
};

/// CollectiveGroup over a concrete c10d process group (ProcessGroupGloo, ProcessGroupNCCL).
template <typename Group>
class C10dGroup final : public CollectiveGroup {
 public:
  explicit C10dGroup(c10::intrusive_ptr<Group> group) : group_(std::move(group)) {}
  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors,
                                           const c10d::AllreduceOptions& options) override {
    return group_->allreduce(tensors, options);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                           const c10d::BroadcastOptions& options) override {
    return group_->broadcast(tensors, options);
  }
  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                           std::vector<at::Tensor>& inputs) override {
    return group_->allgather(outputs, inputs, c10d::AllgatherOptions());
  }
  c10::intrusive_ptr<c10d::Work> barrier() override {
    return group_->barrier(c10d::BarrierOptions());
  }

 private:
  c10::intrusive_ptr<Group> group_;
};

/// A duration in seconds, for messages.
inline double seconds(std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1e3; }

/// True for addresses that can only mean this machine: Gloo must then listen on loopback
/// too, whatever the host name resolves to.
inline bool is_loopback_address(const std::string& address) {
  return address == "localhost" || address.rfind("127.", 0) == 0 || address == "::1";
}

}  // namespace detail
}  // namespace mobilenet
