// The run contract: what a resumed run (and every rank of a data-parallel one) must share.
// It is every changes_result flag of flags.hpp's table, plus what no flag states.
#pragma once

#include "config.hpp"
#include "flags.hpp"

#include <mobilenet/train/trainer.hpp>

#include <cstdint>
#include <iterator>
#include <set>
#include <string>

namespace coco_train {

// Contract entries that are no flag's value.
constexpr const char* kWorldSize = "world_size";  // processes of the job
constexpr const char* kTrainData = "train_data";  // data_fingerprint of the training samples
constexpr const char* kValData = "val_data";      // ... and of the validation samples

// Names that checkpoints written before the table hold: "randaugment" ("N/M") is now
// randaugment_n and randaugment_m. --allow-change accepts it, so such runs can resume.
constexpr const char* kRetiredNames[] = {"randaugment"};

inline std::set<std::string> contract_names() {
  std::set<std::string> names{kWorldSize, kTrainData, kValData};
  names.insert(std::begin(kRetiredNames), std::end(kRetiredNames));
  for (const auto& f : flags()) {
    if (f.effect == Effect::changes_result) names.insert(f.key());
  }
  return names;
}

/// Refuses an --allow-change name that is not in the contract (a typo would allow nothing).
inline void check_allowed_changes(const Config& c) {
  const auto names = contract_names();
  for (const auto& name : c.allow_changes) {
    if (names.count(name)) continue;
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    TORCH_CHECK(false, "--allow-change: '", name, "' is not in the run contract; its names: ", all);
  }
}

inline mobilenet::RunContract make_contract(const Config& c, int64_t world, const std::string& train_fp,
                                            const std::string& val_fp) {
  mobilenet::RunContract contract{{kWorldSize, std::to_string(world)}, {kTrainData, train_fp}, {kValData, val_fp}};
  for (const auto& f : flags()) {
    if (f.effect == Effect::changes_result) contract[f.key()] = f.value(c);
  }
  return contract;
}

}  // namespace coco_train
