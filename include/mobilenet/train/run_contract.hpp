#pragma once
/// \file train/run_contract.hpp
/// The run contract: every setting that changes a run's result (data fingerprint, image
/// size, recipe, world size, ...) as name -> value. A resumed run must match the contract its
/// checkpoint recorded, and every rank must match rank 0; what differs is named, so the user
/// sees "lr: checkpoint 0.001, now 0.01" instead of a silently different run.

#include <mobilenet/train/collectives.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace mobilenet {

/// Names and values that must match on resume and across ranks.
using RunContract = std::map<std::string, std::string>;

/// "image_size: checkpoint 64, now 96; lr: ..." for every name whose values differ between
/// `a` and `b` (a name missing on one side reads "(unset)"), skipping `allowed`; empty when
/// they agree. Example: `contract_differences(read_contract(path), now, "checkpoint", "now")`.
inline std::string contract_differences(const RunContract& a, const RunContract& b,
                                        const std::string& a_name, const std::string& b_name,
                                        const std::set<std::string>& allowed = {}) {
  std::set<std::string> keys;
  for (const auto& kv : a) keys.insert(kv.first);
  for (const auto& kv : b) keys.insert(kv.first);
  std::string diff;
  for (const auto& k : keys) {
    if (allowed.count(k)) continue;
    const auto ia = a.find(k), ib = b.find(k);
    const std::string va = ia == a.end() ? "(unset)" : ia->second;
    const std::string vb = ib == b.end() ? "(unset)" : ib->second;
    if (va != vb) diff += (diff.empty() ? "" : "; ") + k + ": " + a_name + " " + va + ", " + b_name + " " + vb;
  }
  return diff;
}

namespace detail {
// One string for a broadcast: ASCII unit/record separators, which no flag value holds.
inline std::string encode_contract(const RunContract& m) {
  std::string s;
  for (const auto& kv : m) s += kv.first + '\x1f' + kv.second + '\x1e';
  return s;
}
inline RunContract decode_contract(const std::string& s) {
  RunContract m;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t sep = s.find('\x1f', pos), end = s.find('\x1e', pos);
    if (sep == std::string::npos || end == std::string::npos || sep > end) break;
    m[s.substr(pos, sep - pos)] = s.substr(sep + 1, end - sep - 1);
    pos = end + 1;
  }
  return m;
}
}  // namespace detail

/// Every rank must run the same configuration: rank 0's `contract` is broadcast, each rank
/// names what differs from its own, and then all ranks throw together (none is left waiting
/// in a collective). A no-op with one process.
inline void agree_on_contract(Collectives& world, const RunContract& contract) {
  if (!world.distributed()) return;
  std::string mine = detail::encode_contract(contract);
  std::vector<torch::Tensor> size{torch::tensor({int64_t(mine.size())})};
  world.broadcast(size);
  auto bytes = world.is_main()
                   ? torch::from_blob(mine.data(), {int64_t(mine.size())}, torch::kChar).clone()
                   : torch::zeros({size[0].item<int64_t>()}, torch::kChar);
  std::vector<torch::Tensor> payload{bytes};
  world.broadcast(payload);
  const std::string theirs(static_cast<const char*>(payload[0].data_ptr()), size_t(payload[0].numel()));
  const std::string diff = contract_differences(detail::decode_contract(theirs), contract, "rank 0", "this rank");
  const double bad = world.all_reduce(diff.empty() ? 0.0 : 1.0);
  TORCH_CHECK(bad == 0, "ranks were started with different configurations",
              diff.empty() ? std::string(" (on another rank)") : ": " + diff);
}

}  // namespace mobilenet
