#pragma once
/// \file collectives.hpp
/// What training code needs from a data-parallel job, without c10d: the rank, the world, and
/// the collectives, named as torch.distributed names them (all_reduce, all_gather, broadcast,
/// barrier, ReduceOp). The default is one process (every call is the identity), so the
/// Trainer works unchanged; distributed/communicator.hpp's Communicator implements it over
/// Gloo/NCCL with the same names.

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace mobilenet {

/// Element-wise reduction across ranks (torch.distributed.ReduceOp's SUM, MAX, MIN).
enum class ReduceOp { Sum, Max, Min };

/// The collective operations the Trainer uses. Override the virtual ones for a real job; the
/// base class is a world of one process.
/// Example: `TrainerOptions("runs/x").collectives(comm)` with `comm` a
/// `std::shared_ptr<Communicator>`; `double n = comm->all_reduce(double(local_n));`
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

  /// Reduces `tensor` element-wise over ranks, in place (as torch.distributed.all_reduce).
  virtual void all_reduce(torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum) {
    (void)tensor;
    (void)op;
  }
  /// A scalar reduced over ranks (float64, so counts up to 2^53 stay exact).
  double all_reduce(double value, ReduceOp op = ReduceOp::Sum) {
    if (!distributed()) return value;
    auto t = torch::tensor({value}, torch::kDouble);
    all_reduce(t, op);
    return t.item<double>();
  }
  /// Every rank's `rows` (N_r x ...) concatenated along dim 0 in rank order, on every rank.
  /// Unlike torch.distributed.all_gather_into_tensor, N_r may differ between ranks.
  virtual torch::Tensor all_gather(const torch::Tensor& rows) { return rows; }
  /// Rank `root`'s `tensors` copied into every rank's (same shapes and dtypes), in place.
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
