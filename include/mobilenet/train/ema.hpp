#pragma once
/// \file ema.hpp
/// Exponential moving average of a model's weights (the "EMA model" of timm, ASL and YOLOv5),
/// evaluated beside the trained model.
///
///     mobilenet::ModelEma ema(model, mobilenet::ModelEmaOptions().decay(0.9997));  // <MobileNetV2>
///     for (...) { loss.backward(); optimizer.step(); ema.update(model); }
///     evaluate(ema.module());                      // a MobileNetV2, in eval mode
///
/// After update n (n = 1, 2, ...), each EMA parameter is
///     e <- d_n * e + (1 - d_n) * w,   d_n = decay * (1 - exp(-n / warmup))
/// with w the model's parameter (the warm-up ramp of YOLOv5's ModelEMA, warmup = 2000 updates;
/// warmup = 0 keeps d_n = decay). Early updates thus follow the model closely, and the average
/// spans about 1 / (1 - decay) updates once warmed up.

#include <mobilenet/train/checkpoint.hpp>

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace mobilenet {

/// Options of ModelEma.
/// Example: `ModelEmaOptions().decay(0.9997).warmup(2000)`.
struct ModelEmaOptions {
  /// Decay per update once warmed up, in (0, 1). Default 0.9997 (ASL at batch 128).
  TORCH_ARG(double, decay) = 0.9997;
  /// Warm-up time constant in updates, >= 0: d_n = decay * (1 - exp(-n / warmup)). 0 turns the
  /// warm-up off. Default 2000.
  TORCH_ARG(double, warmup) = 2000;
  /// false (default): floating-point buffers (BatchNorm running mean and variance) are copied
  /// from the model at each update, so the EMA uses the model's current statistics. true:
  /// averaged with the same d_n, as timm's ModelEmaV2 and YOLOv5 do.
  TORCH_ARG(bool, average_buffers) = false;
  /// Where the EMA copy lives. Default: the model's device. `torch::kCPU` keeps it out of GPU
  /// memory (each update then copies the weights to the CPU).
  TORCH_ARG(std::optional<torch::Device>, device) = std::nullopt;
};

namespace detail {

inline void check_ema_options(const ModelEmaOptions& o) {
  TORCH_CHECK(o.decay() > 0 && o.decay() < 1, "ModelEmaOptions: decay must be in (0, 1), got ",
              o.decay());
  TORCH_CHECK(o.warmup() >= 0 && std::isfinite(o.warmup()),
              "ModelEmaOptions: warmup must be a finite number of updates >= 0, got ",
              o.warmup());
}

/// Writes a module's parameters and buffers as nested archives, one per child.
inline void write_ema_state(const torch::nn::Module& module,
                            torch::serialize::OutputArchive& archive) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    archive.write(p.key(), p.value().detach(), /*is_buffer=*/false);
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    archive.write(b.key(), b.value(), /*is_buffer=*/true);
  }
  for (const auto& child : module.named_children()) {
    torch::serialize::OutputArchive child_archive(archive.compilation_unit());
    write_ema_state(*child.value(), child_archive);
    archive.write(child.key(), child_archive);
  }
}

/// Reads what write_ema_state wrote into (destination, value) pairs, checking names, shapes and
/// dtypes against `module`, without touching it (so that a bad archive changes nothing).
inline void read_ema_state(const torch::nn::Module& module, torch::serialize::InputArchive& archive,
                           const std::string& prefix,
                           std::vector<std::pair<torch::Tensor, torch::Tensor>>& out) {
  auto read = [&](const std::string& name, const torch::Tensor& dst, bool is_buffer) {
    torch::Tensor value;
    TORCH_CHECK(archive.try_read(name, value, is_buffer), "ModelEma::load: the archive has no '",
                prefix + name, "' (saved from another model?)");
    TORCH_CHECK(value.sizes() == dst.sizes() && value.scalar_type() == dst.scalar_type(),
                "ModelEma::load: '", prefix + name, "' is ", value.scalar_type(), " ",
                value.sizes(), " in the archive but ", dst.scalar_type(), " ", dst.sizes(),
                " in the model");
    out.emplace_back(dst, value);
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) read(p.key(), p.value(), false);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) read(b.key(), b.value(), true);
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive child_archive;
    TORCH_CHECK(archive.try_read(child.key(), child_archive), "ModelEma::load: the archive has no '",
                prefix + child.key(), "' (saved from another model?)");
    read_ema_state(*child.value(), child_archive, prefix + child.key() + ".", out);
  }
}

}  // namespace detail

/// An exponential moving average of a model's weights, held in a deep copy of the model.
/// `Model` is a module holder (`MobileNetV2`, any TORCH_MODULE of a Cloneable module) or a
/// `std::shared_ptr` to a Cloneable module (`std::shared_ptr<torch::nn::Module>` included).
///
/// - Parameters are averaged (see the file comment); floating-point buffers are copied or
///   averaged (ModelEmaOptions::average_buffers); integer buffers (BatchNorm's
///   num_batches_tracked, which only matters when BatchNorm's momentum is unset) are always
///   copied from the model.
/// - The copy is made with clone(): same memory format per tensor (channels-last stays
///   channels-last), on the model's device or ModelEmaOptions::device. Its parameters do not
///   require grad, and it is put in eval mode; keep it there (train mode would let forward()
///   change its BatchNorm statistics).
/// - save() / load() keep the update count, so a resumed run continues bit-identically.
/// Not thread-safe; call update() from the thread that steps the optimizer.
template <class Model>
class ModelEma {
 public:
  /// Copies `model` (its current weights start the average). Throws c10::Error naming the
  /// option when decay is outside (0, 1) or warmup < 0. The CPU random generator is left as it
  /// was, although clone() re-runs the model's initialisation, so adding an EMA does not change
  /// the rest of a seeded run.
  explicit ModelEma(const Model& model, ModelEmaOptions options = {})
      : options_(std::move(options)) {
    detail::check_ema_options(options_);
    TORCH_CHECK(static_cast<bool>(model), "ModelEma: the model is empty");
    const torch::Tensor rng = detail::cpu_rng_state();
    ema_ = clone_model(model, options_.device());
    detail::set_cpu_rng_state(rng);
    for (auto& p : ema_->parameters()) p.requires_grad_(false);
    ema_->eval();
  }

  // A copy would share the averaged module but not the update count.
  ModelEma(const ModelEma&) = delete;
  ModelEma& operator=(const ModelEma&) = delete;
  ModelEma(ModelEma&&) = default;
  ModelEma& operator=(ModelEma&&) = default;

  /// One averaging step, after each optimizer step. `model` must have the parameters and
  /// buffers of the copy (same names and shapes), on any device.
  void update(const torch::nn::Module& model) {
    torch::NoGradGuard no_grad;
    const double d = decay_at(updates_ + 1);
    const auto src_params = model.named_parameters();
    const auto dst_params = ema_->named_parameters();
    const auto src_buffers = model.named_buffers();
    const auto dst_buffers = ema_->named_buffers();
    check_same(src_params, dst_params, "parameters");
    check_same(src_buffers, dst_buffers, "buffers");
    for (size_t i = 0; i < dst_params.size(); ++i) {
      average(dst_params[i].value(), src_params[i].value(), d);
    }
    for (size_t i = 0; i < dst_buffers.size(); ++i) {
      torch::Tensor dst = dst_buffers[i].value();
      if (options_.average_buffers() && dst.is_floating_point()) {
        average(dst, src_buffers[i].value(), d);
      } else {
        dst.copy_(src_buffers[i].value());
      }
    }
    ++updates_;
  }

  /// Same, from the model's holder or pointer.
  void update(const Model& model) { update(*model); }

  /// The averaged model, for evaluation (eval mode, no grad).
  Model& module() { return ema_; }
  const Model& module() const { return ema_; }

  /// Updates made so far (restored by load()).
  int64_t updates() const { return updates_; }

  /// d_n, the decay update number `n` (1-based) uses: decay * (1 - exp(-n / warmup)).
  double decay_at(int64_t n) const {
    if (options_.warmup() == 0) return options_.decay();
    return options_.decay() *
           (1.0 - std::exp(-static_cast<double>(n) / options_.warmup()));
  }

  const ModelEmaOptions& options() const { return options_; }

  /// Writes the update count, the options and the averaged weights (tensors on their device,
  /// as Module::save does). Example: `OutputArchive a; ema.save(a); out.write("ema", a);`
  void save(torch::serialize::OutputArchive& archive) const {
    archive.write("updates", c10::IValue(updates_));
    archive.write("decay", c10::IValue(options_.decay()));
    archive.write("warmup", c10::IValue(options_.warmup()));
    archive.write("average_buffers", c10::IValue(options_.average_buffers()));
    torch::serialize::OutputArchive weights(archive.compilation_unit());
    detail::write_ema_state(*ema_, weights);
    archive.write("module", weights);
  }

  /// Restores what save() wrote, values copied into the existing copy (its devices and memory
  /// formats stay). Throws c10::Error, leaving the EMA unchanged, when the archive lacks a
  /// field, its tensors do not match the model, or it was saved with other decay / warmup /
  /// average_buffers (resuming exactly needs the same formula).
  void load(torch::serialize::InputArchive& archive) {
    auto read = [&](const char* key) {
      c10::IValue v;
      TORCH_CHECK(archive.try_read(key, v), "ModelEma::load: the archive has no '", key,
                  "' (not written by ModelEma::save)");
      return v;
    };
    const int64_t updates = read("updates").toInt();
    const double decay = read("decay").toDouble();
    const double warmup = read("warmup").toDouble();
    const bool average_buffers = read("average_buffers").toBool();
    TORCH_CHECK(decay == options_.decay() && warmup == options_.warmup() &&
                    average_buffers == options_.average_buffers(),
                "ModelEma::load: saved with decay ", decay, ", warmup ", warmup,
                ", average_buffers ", average_buffers, " but this ModelEma has decay ",
                options_.decay(), ", warmup ", options_.warmup(), ", average_buffers ",
                options_.average_buffers());
    torch::serialize::InputArchive weights;
    TORCH_CHECK(archive.try_read("module", weights),
                "ModelEma::load: the archive has no 'module' (not written by ModelEma::save)");
    std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
    detail::read_ema_state(*ema_, weights, "", copies);
    torch::NoGradGuard no_grad;
    for (auto& [dst, value] : copies) dst.copy_(value);
    updates_ = updates;
  }

 private:
  static Model clone_model(const Model& model, const std::optional<torch::Device>& device) {
    // Module::clone takes c10::optional, which is std::optional only from 2.x.
    std::shared_ptr<torch::nn::Module> copy =
        device ? model->clone(*device) : model->clone();
    if constexpr (torch::detail::is_module_holder<Model>::value) {
      using Impl = typename Model::ContainedType;
      return Model(std::dynamic_pointer_cast<Impl>(copy));
    } else {
      using Impl = typename Model::element_type;
      return std::dynamic_pointer_cast<Impl>(copy);
    }
  }

  static void average(torch::Tensor dst, const torch::Tensor& src, double d) {
    const torch::Tensor w = src.device() == dst.device() && src.scalar_type() == dst.scalar_type()
                                ? src
                                : src.to(dst.device(), dst.scalar_type());
    dst.mul_(d).add_(w, 1.0 - d);
  }

  static void check_same(const torch::OrderedDict<std::string, torch::Tensor>& src,
                         const torch::OrderedDict<std::string, torch::Tensor>& dst,
                         const char* what) {
    TORCH_CHECK(src.size() == dst.size(), "ModelEma::update: the model has ", src.size(), " ",
                what, ", the EMA copy ", dst.size(), " (not the model the EMA was made from)");
    for (size_t i = 0; i < src.size(); ++i) {
      TORCH_CHECK(src[i].key() == dst[i].key() && src[i].value().sizes() == dst[i].value().sizes(),
                  "ModelEma::update: the model's ", what, " '", src[i].key(), "' ",
                  src[i].value().sizes(), " does not match the EMA copy's '", dst[i].key(), "' ",
                  dst[i].value().sizes());
    }
  }

  ModelEmaOptions options_;
  Model ema_{nullptr};
  int64_t updates_ = 0;
};

}  // namespace mobilenet
