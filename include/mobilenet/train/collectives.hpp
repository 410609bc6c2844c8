#pragma once
/// \file collectives.hpp
/// What training code needs from a data-parallel job, without c10d: the rank, the world, and
/// a few reductions. The default is one process (every call is the identity), so the Trainer
/// works unchanged; distributed/communicator.hpp's Communicator implements it over Gloo/NCCL.

#include <torch/torch.h>

#include <cstdint>
#include <memory>

namespace mobilenet {

/// The collective operations the Trainer uses. Override all of them for a real job; the base
/// class is a world of one process.
/// Example: `TrainerOptions().collectives(comm)` with `comm` a `std::shared_ptr<Communicator>`.
class Collectives {
 public:
  virtual ~Collectives() = default;
  /// This process's rank, 0..world_size()-1.
  virtual int64_t rank() const { return 0; }
  /// Number of processes.
  virtual int64_t world_size() const { return 1; }
  /// True with more than one process.
  bool distributed() const { return world_size() > 1; }
  /// Rank 0 writes logs and checkpoints.
  bool is_main() const { return rank() == 0; }
  /// Sum of `value` over ranks (every rank gets it).
  virtual double sum(double value) { return value; }
  /// Every rank's `rows` (N_r x ...) concatenated along dim 0 in rank order, on every rank.
  virtual torch::Tensor gather_rows(const torch::Tensor& rows) { return rows; }
  /// Rank `root`'s `tensors` copied into every rank's (same shapes and dtypes).
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int64_t root = 0) {
    (void)tensors;
    (void)root;
  }
  /// Returns once every rank has called it.
  virtual void barrier() {}
};

/// The one-process world, shared.
inline std::shared_ptr<Collectives> single_process() {
  static const auto world = std::make_shared<Collectives>();
  return world;
}

}  // namespace mobilenet
