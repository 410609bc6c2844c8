// Every coco_train flag, declared once: name, default, help, the Config field it sets, and
// whether it changes the trained result. The parser, --help, --list-flags and the run
// contract (contract.hpp) are all read off this table, so a new flag cannot be parsed but
// forgotten by the contract, as momentum, warm-up and the loss parameters once were.
#pragma once

#include "config.hpp"

#include <mobilenet/data.hpp>

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace coco_train {

// Seed model's input resolution; the README's demo uses a smaller one.
constexpr int64_t kSeedImageSize = 256;

/// Whether a flag can change what training produces (weights, metrics, best.pt). Those that
/// can go into the run contract: --resume refuses a run whose recorded value differs.
enum class Effect { changes_result, does_not_change_result };

inline const char* to_string(Effect e) {
  return e == Effect::changes_result ? "changes_result" : "does_not_change_result";
}

/// One row of the table.
struct Flag {
  std::string name;  ///< "--weight-decay"
  std::string help;
  Effect effect;
  /// Sets the field to its default and registers the flag with the parser.
  std::function<CLI::Option*(CLI::App&, Config&)> add;
  /// The field's value as the run contract records it.
  std::function<std::string(const Config&)> value;
  /// The contract's name for the flag (what --allow-change takes): "--weight-decay" -> "weight_decay".
  std::string key() const {
    std::string k = name.substr(2);
    for (char& ch : k) ch = ch == '-' ? '_' : ch;
    return k;
  }
};

namespace table {

template <class T>
struct Same { using type = T; };  // keeps a default's literal type out of deduction

template <class T>
std::string text(const T& v) {
  std::ostringstream s;  // default precision: the contract's format since its first version
  s << v;
  return s.str();
}
inline std::string text(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

// CLI::Range lets NaN through (every comparison with it is false): numbers must be finite.
inline const CLI::Validator& finite() {
  static const CLI::Validator v(
      [](std::string& s) -> std::string {
        return std::isfinite(std::strtod(s.c_str(), nullptr)) ? "" : "must be a finite number, got " + s;
      },
      "FINITE");
  return v;
}

// 0 (off) or strictly between 0 and 1: an EMA decay.
inline const CLI::Validator& off_or_fraction() {
  static const CLI::Validator v(
      [](std::string& s) -> std::string {
        const double d = std::strtod(s.c_str(), nullptr);
        return d == 0 || (d > 0 && d < 1) ? "" : "must be 0 (off) or in (0, 1), got " + s;
      },
      "0 or (0, 1)");
  return v;
}

template <class T>
Flag option(std::string name, T Config::*field, typename Same<T>::type def, Effect effect,
            std::string help, std::vector<CLI::Validator> checks = {}) {
  Flag f{name, help, effect, nullptr, [field](const Config& c) { return text(c.*field); }};
  f.add = [=](CLI::App& app, Config& c) {
    c.*field = def;
    CLI::Option* o = app.add_option(name, c.*field, help)->capture_default_str();
    if constexpr (std::is_floating_point<T>::value) o->check(finite());
    for (const auto& check : checks) o->check(check);
    return o;
  };
  return f;
}

// A switch; `negatable` adds --no-NAME.
inline Flag switch_(std::string name, bool Config::*field, bool def, Effect effect, std::string help,
                    bool negatable) {
  Flag f{name, help, effect, nullptr, [field](const Config& c) { return text(c.*field); }};
  f.add = [=](CLI::App& app, Config& c) {
    c.*field = def;
    return app.add_flag(negatable ? name + ",!--no-" + name.substr(2) : name, c.*field, help);
  };
  return f;
}

}  // namespace table

/// The table, in --help's order.
inline const std::vector<Flag>& flags() {
  using table::option;
  using table::switch_;
  using I = int64_t;
  constexpr Effect R = Effect::changes_result, N = Effect::does_not_change_result;
  static const std::vector<Flag> all{
      // Paths are not the data's identity: the contract holds the data sets' fingerprints
      // (train_data, val_data), so a moved data folder still resumes.
      option("--coco-root", &Config::coco_root, "", N,
             "COCO folder: train2017/, val2017/, annotations/instances_*2017.json"),
      option("--train-ann", &Config::train_ann, "", N, "training annotation file (COCO format)"),
      option("--train-images", &Config::train_images, "", N, "training image folder"),
      option("--val-ann", &Config::val_ann, "", N, "validation annotation file"),
      option("--val-images", &Config::val_images, "", N, "validation image folder"),
      option("--arch", &Config::arch, "mobilenet_v2", R, "mobilenet_v2 or mobilenet_v1",
             {CLI::IsMember({"mobilenet_v2", "mobilenet_v1"})}),
      option("--output-stride", &Config::output_stride, 16, R, "32, 16 or 8", {CLI::IsMember({8, 16, 32})}),
      option("--width-mult", &Config::width_mult, 1.0, R, "channel multiplier", {CLI::Range(0.05, 4.0)}),
      option("--init", &Config::init, "torchvision", R, "classifier init: torchvision (N(0, 0.01)) or seed (N(0, 1))",
             {CLI::IsMember({"torchvision", "seed"})}),
      option("--weights", &Config::weights, "", R,
             "torchvision weights to fine-tune from (other class counts: head skipped)"),
      option("--loss", &Config::loss, "bce", R, "bce, focal, asl or soft_f1",
             {CLI::IsMember({"bce", "focal", "asl", "soft_f1"})}),
      option("--focal-alpha", &Config::focal_alpha, 0.25, R, "focal: positive weight (<0: none)", {CLI::Range(-1.0, 1.0)}),
      option("--focal-gamma", &Config::focal_gamma, 2.0, R, "focal: focusing exponent", {CLI::Range(0.0, 10.0)}),
      option("--asl-gamma-neg", &Config::asl_gamma_neg, 4.0, R, "asl: negative focusing", {CLI::Range(0.0, 10.0)}),
      option("--asl-gamma-pos", &Config::asl_gamma_pos, 1.0, R, "asl: positive focusing", {CLI::Range(0.0, 10.0)}),
      option("--asl-clip", &Config::asl_clip, 0.05, R, "asl: probability margin", {CLI::Range(0.0, 0.5)}),
      option("--optimizer", &Config::optimizer, "adamw", R, "adamw or sgd (nesterov)", {CLI::IsMember({"adamw", "sgd"})}),
      option("--lr", &Config::lr, 1e-3, R, "peak learning rate", {CLI::Range(1e-12, 10.0)}),
      option("--weight-decay", &Config::weight_decay, 1e-4, R, "not applied to BN and biases", {CLI::Range(0.0, 1.0)}),
      option("--momentum", &Config::momentum, 0.9, R, "sgd momentum", {CLI::Range(0.0, 1.0)}),
      option("--schedule", &Config::schedule, "cosine", R, "cosine (with warm-up), onecycle or constant",
             {CLI::IsMember({"cosine", "onecycle", "constant"})}),
      option("--warmup-epochs", &Config::warmup_epochs, 1.0, R, "cosine: linear warm-up length", {CLI::Range(0.0, 1e6)}),
      option("--epochs", &Config::epochs, 10, R, "training epochs", {CLI::Range(I(1), I(1000000))}),
      option("--batch-size", &Config::batch_size, 32, R, "images per step (all processes)", {CLI::Range(I(1), I(1) << 20)}),
      option("--image-size", &Config::image_size, kSeedImageSize, R, "training/eval resolution",
             {CLI::Range(I(8), I(4096))}),
      option("--train-crop", &Config::train_crop, "squish", R,
             "squish (whole image resized to a square, multi-label default) or rrc (RandomResizedCrop)",
             {CLI::IsMember({"squish", "rrc"})}),
      option("--eval-resize", &Config::eval_resize, "squish", R,
             "squish (whole image) or center (ImageNet resize + center crop)", {CLI::IsMember({"squish", "center"})}),
      option("--min-crop-scale", &Config::min_crop_scale, 0.5, R, "rrc: smallest area fraction kept",
             {CLI::Range(0.01, 1.0)}),
      option("--recipe", &Config::recipe, "default", R,
             "default, or asl (Alibaba-MIIL/ASL: asl loss 4/0/0.05, adamw 2e-4 onecycle 0.2, wd 1e-4, "
             "EMA 0.9997, cutout 0.5, randaugment 2/9); explicit flags override the recipe",
             {CLI::IsMember({"default", "asl"})}),
      option("--ema-decay", &Config::ema_decay, 0.0, R, "EMA of the weights, evaluated beside them (0: off)",
             {table::off_or_fraction()}),
      option("--ema-warmup", &Config::ema_warmup, 2000.0, R, "EMA warm-up in updates: decay * (1 - exp(-n / warmup))",
             {CLI::Range(0.0, 1e9)}),
      option("--cutout", &Config::cutout, 0.0, R, "Cutout rectangle side as a fraction of the image side (0: off)",
             {CLI::Range(0.0, 1.0)}),
      option("--randaugment-n", &Config::randaugment_n, 0, R, "RandAugment: ops per image (0: off)",
             {CLI::Range(I(0), I(16))}),
      option("--randaugment-m", &Config::randaugment_m, 9, R, "RandAugment: magnitude on the 0..30 scale",
             {CLI::Range(I(0), mobilenet::kRandAugmentMaxMagnitude)}),
      option("--pct-start", &Config::pct_start, 0.3, R, "onecycle: fraction of steps spent warming up",
             {CLI::Range(0.0, 1.0)}),
      switch_("--amp", &Config::amp, false, R, "mixed precision: fp16 + loss scaling on CUDA, bf16 on CPU", true),
      option("--freeze", &Config::freeze, "none", R, "feature blocks to freeze, e.g. 0-6 (inclusive), or none"),
      option("--unfreeze-epoch", &Config::unfreeze_epoch, 0, R,
             "make the --freeze blocks trainable from this epoch on (0: never)", {CLI::NonNegativeNumber}),
      // Threads and device move the last bits of the floating-point sums only; a resumed run
      // may move to another machine.
      option("--threads", &Config::threads, 0, N, "intra-op threads (0: all cores)", {CLI::Range(I(0), I(4096))}),
      option("--workers", &Config::workers, 2, N, "data loading threads", {CLI::Range(I(1), I(256))}),
      option("--device", &Config::device, "", N, "cpu or cuda (default: cuda when available)",
             {CLI::IsMember({"", "cpu", "cuda"})}),
      switch_("--channels-last", &Config::channels_last, false, R,
              "train in channels-last memory format (faster on CPU, but LibTorch 1.13's channels-last "
              "training gradients are less accurate: see the README)",
              true),
      switch_("--normalize", &Config::normalize, true, R, "ImageNet mean/std input normalization", true),
      switch_("--ignore-crowd", &Config::ignore_crowd, false, R, "do not count crowd annotations as labels", false),
      option("--out", &Config::out, "runs/coco", N, "output folder: checkpoints, metrics.csv, plots"),
      option("--evaluate", &Config::evaluate, "", N,
             "only evaluate this checkpoint on the validation set (eval transform: the checkpoint's, "
             "or --eval-resize when given) and print the metrics"),
      switch_("--resume", &Config::resume, false, N, "continue the run in --out from last.pt", false),
      switch_("--overwrite", &Config::overwrite, false, N, "start afresh even if --out holds a run", false),
      option("--allow-change", &Config::allow_changes, {}, N,
             "on --resume, contract settings allowed to differ (lr, epochs, ...: --list-flags)"),
      switch_("--sync-bn", &Config::sync_bn, false, R, "data-parallel: BatchNorm statistics over the global batch",
              false),
      option("--seed", &Config::seed, 0, R, "seeds init, shuffling, augmentation and dropout",
             {CLI::NonNegativeNumber}),  // an unsigned parse would wrap -1 around
      option("--select-by", &Config::select_by, "map", R, "which epoch is best.pt: map, f1 (tuned macro) or loss",
             {CLI::IsMember({"map", "f1", "loss"})}),
      option("--clip-grad", &Config::clip_grad, 0.0, R, "clip the gradient norm (0: off)", {CLI::Range(0.0, 1e12)}),
      // The number of processes is contracted as world_size (torchrun starts --nproc 1 ranks).
      option("--nproc", &Config::nproc, 1, N, "data-parallel processes on this machine (Gloo on CPU, NCCL on CUDA)",
             {CLI::Range(I(1), I(1024))}),
      option("--dist-timeout", &Config::dist_timeout_s, 300.0, N, "seconds a rank waits for the others (rendezvous too)",
             {CLI::Range(1.0, 86400.0 * 7)}),
      option("--max-image-pixels", &Config::max_image_pixels, mobilenet::DecodeOptions().max_pixels(), R,
             "refuse images with more pixels (read from the header; 11 bytes/pixel at most per worker)",
             {CLI::Range(I(1), I(1) << 40)}),
      option("--max-train-images", &Config::max_train_images, 0, R, "use only the first N training images (0: all)",
             {CLI::NonNegativeNumber}),
      option("--max-val-images", &Config::max_val_images, 0, R, "use only the first N validation images (0: all)",
             {CLI::NonNegativeNumber}),
      option("--export-onnx", &Config::export_onnx, "", N,
             "after training, export best.pt as ONNX to this file (docs/deploy.md)"),
      switch_("--list-flags", &Config::list_flags, false, N,
              "print every flag, whether it changes the result, and its run-contract name", false),
  };
  return all;
}

inline const char* group(Effect e) {
  return e == Effect::changes_result ? "Settings that change the result (in the run contract)"
                                     : "Settings that do not change the result";
}

/// Registers the table with `app`; every field of `c` gets its default.
inline void add_flags(CLI::App& app, Config& c) {
  for (const auto& f : flags()) f.add(app, c)->group(group(f.effect));
}

/// --list-flags: one line per flag, "NAME TAG CONTRACT-NAME" ("-" when not contracted).
inline void list_flags(std::ostream& out) {
  for (const auto& f : flags()) {
    char line[160];
    std::snprintf(line, sizeof line, "%-20s %-22s %s\n", f.name.c_str(), to_string(f.effect),
                  f.effect == Effect::changes_result ? f.key().c_str() : "-");
    out << line;
  }
}

}  // namespace coco_train
