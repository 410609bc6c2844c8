#pragma once
/// \file checkpoint.hpp
/// Training checkpoints: model, optimizer, scaler, schedule position, RNG and config, written
/// atomically; loading refuses a checkpoint made for another architecture or class count.

#include <mobilenet/models/factory.hpp>
#include <mobilenet/train/detail/checksummed_archive.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace mobilenet {

/// Where training stands.
struct TrainingState {
  int64_t epoch = 0;  ///< completed epochs
  int64_t step = 0;   ///< optimizer steps taken (the LR schedule's position)
  double best_score = -1e300;
  int64_t best_epoch = -1;
  std::vector<float> thresholds;  ///< per-class decision thresholds (empty: 0.5)
  std::vector<double> scaler;     ///< GradScaler::state()
  std::string config;             ///< the run's flags, for the record
  /// What must not change on resume (data set fingerprint, image size, batch size, world
  /// size, recipe, ...): name -> value, compared by the Trainer.
  std::map<std::string, std::string> contract;
  std::string best_source = "model";  ///< which weights best.pt holds: "model" or "ema"
};

namespace detail {
inline torch::Tensor cpu_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}
inline void set_cpu_rng_state(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}
inline c10::IValue read_value(torch::serialize::InputArchive& in, const std::string& key,
                              const std::string& path) {
  c10::IValue v;
  TORCH_CHECK(in.try_read(key, v), "checkpoint '", path, "' has no field '", key,
              "' (not a mobilenet checkpoint, or from an incompatible version)");
  return v;
}
}  // namespace detail

/// Reads only the model description (to rebuild the model before load_checkpoint). Like
/// load_checkpoint, verifies the file's checksum first: a truncated or corrupt file throws.
inline ModelSpec read_model_spec(const std::string& path) {
  torch::serialize::InputArchive in;
  detail::load_archive(in, path);
  ModelSpec spec;
  spec.arch(detail::read_value(in, "spec.arch", path).toStringRef());
  spec.num_classes(detail::read_value(in, "spec.num_classes", path).toInt());
  spec.width_mult(detail::read_value(in, "spec.width_mult", path).toDouble());
  spec.output_stride(detail::read_value(in, "spec.output_stride", path).toInt());
  spec.image_size(detail::read_value(in, "spec.image_size", path).toInt());
  spec.normalize(detail::read_value(in, "spec.normalize", path).toBool());
  spec.eval_resize(detail::read_value(in, "spec.eval_resize", path).toStringRef());
  std::vector<std::string> names;
  for (const auto& name : detail::read_value(in, "spec.class_names", path).toListRef()) {
    names.push_back(name.toStringRef());
  }
  spec.class_names(std::move(names));
  return spec;
}

/// Reads only the run contract (TrainingState::contract), so that a resume can name what
/// changed before loading weights or optimizer state a changed setting would not fit.
inline std::map<std::string, std::string> read_contract(const std::string& path) {
  torch::serialize::InputArchive in;
  detail::load_archive(in, path);
  std::map<std::string, std::string> contract;
  const auto flat = detail::read_value(in, "state.contract", path).toListRef();
  for (size_t i = 0; i + 1 < flat.size(); i += 2) contract[flat[i].toStringRef()] = flat[i + 1].toStringRef();
  return contract;
}

/// Writes an extra part of a checkpoint (the EMA of the weights: ModelEma::save).
using ArchiveWriter = std::function<void(torch::serialize::OutputArchive&)>;
/// Reads it back (ModelEma::load).
using ArchiveReader = std::function<void(torch::serialize::InputArchive&)>;

/// Writes everything needed to resume to `path`, with a checksum, atomically: a crash or a full
/// disk leaves the previous file as it was (no `.tmp` either) and throws naming the reason.
/// `optimizer` may be null. `ema`, when given, writes the EMA of the weights into its own part
/// of the checkpoint.
inline void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                            const ModelSpec& spec, const TrainingState& state,
                            const torch::optim::Optimizer* optimizer = nullptr,
                            const ArchiveWriter& ema = nullptr) {
  torch::serialize::OutputArchive out;
  out.write("spec.arch", c10::IValue(spec.arch()));
  out.write("spec.num_classes", c10::IValue(spec.num_classes()));
  out.write("spec.width_mult", c10::IValue(spec.width_mult()));
  out.write("spec.output_stride", c10::IValue(spec.output_stride()));
  out.write("spec.image_size", c10::IValue(spec.image_size()));
  out.write("spec.normalize", c10::IValue(spec.normalize()));
  out.write("spec.eval_resize", c10::IValue(spec.eval_resize()));
  c10::List<std::string> names;
  for (const auto& n : spec.class_names()) names.push_back(n);
  out.write("spec.class_names", c10::IValue(names));
  out.write("state.epoch", c10::IValue(state.epoch));
  out.write("state.step", c10::IValue(state.step));
  out.write("state.best_score", c10::IValue(state.best_score));
  out.write("state.best_epoch", c10::IValue(state.best_epoch));
  out.write("state.thresholds",
            torch::tensor(state.thresholds.empty() ? std::vector<float>{} : state.thresholds));
  out.write("state.scaler", c10::IValue(c10::List<double>(state.scaler)));
  out.write("state.config", c10::IValue(state.config));
  c10::List<std::string> contract;  // key, value, key, value, ...
  for (const auto& kv : state.contract) {
    contract.push_back(kv.first);
    contract.push_back(kv.second);
  }
  out.write("state.contract", c10::IValue(contract));
  out.write("state.best_source", c10::IValue(state.best_source));
  out.write("state.rng", detail::cpu_rng_state());
  torch::serialize::OutputArchive model_archive;
  model.save(model_archive);
  out.write("model", model_archive);
  if (optimizer) {
    torch::serialize::OutputArchive opt_archive;
    optimizer->save(opt_archive);
    out.write("optimizer", opt_archive);
  }
  if (ema) {
    torch::serialize::OutputArchive ema_archive;
    ema(ema_archive);
    out.write("ema", ema_archive);
  }
  detail::save_archive(out, path);
}

/// Loads `path` into `model` (and `optimizer`, when given), checking that it was written for
/// the same architecture and class count as `spec`. Restores the CPU RNG when `restore_rng`.
/// `ema`, when given, reads the checkpoint's EMA part (an error if it has none).
inline TrainingState load_checkpoint(const std::string& path, torch::nn::Module& model,
                                     const ModelSpec& spec,
                                     torch::optim::Optimizer* optimizer = nullptr,
                                     bool restore_rng = true, const ArchiveReader& ema = nullptr) {
  const ModelSpec saved = read_model_spec(path);
  TORCH_CHECK(saved.same_architecture(spec), "checkpoint '", path, "' is for ", saved.describe(),
              ", but the model is ", spec.describe());
  torch::serialize::InputArchive in;
  detail::load_archive(in, path);
  torch::serialize::InputArchive model_archive;
  TORCH_CHECK(in.try_read("model", model_archive), "checkpoint '", path, "' has no model");
  model.load(model_archive);
  TrainingState state;
  state.epoch = detail::read_value(in, "state.epoch", path).toInt();
  state.step = detail::read_value(in, "state.step", path).toInt();
  state.best_score = detail::read_value(in, "state.best_score", path).toDouble();
  state.best_epoch = detail::read_value(in, "state.best_epoch", path).toInt();
  torch::Tensor thresholds;
  in.read("state.thresholds", thresholds);
  thresholds = thresholds.to(torch::kFloat).contiguous();
  state.thresholds.assign(thresholds.data_ptr<float>(),
                          thresholds.data_ptr<float>() + thresholds.numel());
  for (const auto& v : detail::read_value(in, "state.scaler", path).toListRef()) {
    state.scaler.push_back(v.toDouble());
  }
  state.config = detail::read_value(in, "state.config", path).toStringRef();
  const auto contract = detail::read_value(in, "state.contract", path).toListRef();
  for (size_t i = 0; i + 1 < contract.size(); i += 2) {
    state.contract[contract[i].toStringRef()] = contract[i + 1].toStringRef();
  }
  state.best_source = detail::read_value(in, "state.best_source", path).toStringRef();
  if (optimizer) {
    torch::serialize::InputArchive opt_archive;
    TORCH_CHECK(in.try_read("optimizer", opt_archive), "checkpoint '", path,
                "' has no optimizer state (it was saved for inference only)");
    optimizer->load(opt_archive);
  }
  if (ema) {
    torch::serialize::InputArchive ema_archive;
    TORCH_CHECK(in.try_read("ema", ema_archive), "checkpoint '", path,
                "' has no EMA weights (it was trained without an EMA)");
    ema(ema_archive);
  }
  if (restore_rng) {
    torch::Tensor rng;
    in.read("state.rng", rng);
    detail::set_cpu_rng_state(rng);
  }
  return state;
}

}  // namespace mobilenet
