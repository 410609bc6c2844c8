#pragma once
/// \file trainer.hpp
/// The training loop, once, in the library: epochs with exact mid-epoch resume, stop requests
/// agreed across ranks, non-finite handling, evaluation gathered over ranks, metrics.csv
/// (MetricsLog), checkpoints (`last.pt` every epoch, `best.pt` by a chosen score), a resume
/// contract, and callbacks. Programs are flags plus wiring:
/// \code
///   mobilenet::Trainer trainer(model, spec, std::move(optimizer), loss,
///                              mobilenet::TrainerOptions("runs/demo").epochs(10));
///   auto result = trainer.fit(*mobilenet::batch_source(train_loader),
///                             *mobilenet::batch_source(val_loader));
/// \endcode

#include <mobilenet/models/factory.hpp>
#include <mobilenet/train/amp.hpp>
#include <mobilenet/train/batch_source.hpp>
#include <mobilenet/train/checkpoint.hpp>
#include <mobilenet/train/collectives.hpp>
#include <mobilenet/train/ema.hpp>
#include <mobilenet/train/evaluate.hpp>
#include <mobilenet/train/metrics_log.hpp>
#include <mobilenet/train/progress.hpp>
#include <mobilenet/train/schedule.hpp>
#include <mobilenet/train/train_step.hpp>

#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace mobilenet {

/// After each optimizer step (on every rank).
struct StepEvent {
  int64_t epoch = 0;  ///< 0-based epoch being trained
  int64_t step = 0;   ///< optimizer steps taken so far (after this one)
  int64_t batch = 0;  ///< 0-based batch index in the epoch
  double loss = 0;    ///< this step's loss
  bool finite = true;
  double lr = 0;
};

/// After each epoch's evaluation and checkpoints (on every rank; metrics are global).
struct EpochEvent {
  int64_t epoch = 0;  ///< epochs completed
  double train_loss = 0;
  const Evaluation* val = nullptr;  ///< raw weights
  const Evaluation* ema = nullptr;  ///< EMA weights, when the trainer keeps an EMA
  bool best = false;                ///< this epoch became best.pt
};

/// How Trainer::fit ended.
enum class FitStatus {
  completed,    ///< all epochs trained
  interrupted,  ///< a stop request (Ctrl-C): last.pt holds the exact position
  non_finite    ///< the loss became inf/NaN without a loss scaler: last.pt is the last good state
};

/// What fit() returns.
struct FitResult {
  FitStatus status = FitStatus::completed;
  TrainingState state;          ///< where training stands (as in last.pt)
  int64_t steps_run = 0;        ///< optimizer steps made by this call
  std::optional<Evaluation> last;  ///< the final epoch's evaluation of the raw weights
  std::string message;          ///< one line for the user
};

/// Names and values that must match on resume and across ranks.
using RunContract = std::map<std::string, std::string>;

/// Trainer options. Example:
/// `TrainerOptions("runs/coco").epochs(10).device(torch::kCUDA).amp(true).select_by("map")`.
struct TrainerOptions {
  using StopFlag = const std::atomic<bool>*;
  using Stream = std::ostream*;
  explicit TrainerOptions(std::string out_dir) : out_dir_(std::move(out_dir)) {}
  /// Folder for last.pt, best.pt, metrics.csv, per_class.csv, plots.gp.
  TORCH_ARG(std::string, out_dir);
  /// Epochs to train in total (a resumed run continues up to this). Default 1.
  TORCH_ARG(int64_t, epochs) = 1;
  /// Device of the model and batches. Default CPU.
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  /// Mixed precision: fp16 with loss scaling on CUDA, bf16 on CPU. Default false.
  TORCH_ARG(bool, amp) = false;
  /// Train on channels-last (NHWC) batches; false converts batches to contiguous NCHW first.
  /// Default false: on the CPU, LibTorch 1.13's channels-last training kernels give gradients
  /// about 13x further from a float64 reference than NCHW (median relative error 1.7e-2 vs
  /// 1.3e-3 for MobileNetV2; tests/python/channels_last_gradients.py), and models trained
  /// that way reached a lower mAP in the learning-parity runs. Default false.
  TORCH_ARG(bool, channels_last) = false;
  /// Clip the global gradient norm (0: off). Default 0.
  TORCH_ARG(double, clip_grad_norm) = 0.0;
  /// LR schedule over the whole run; its total_steps and warmup_steps are set from `epochs`,
  /// `warmup_epochs` and the batches per epoch. Default: none (the optimizer's lr stays).
  TORCH_ARG(std::optional<LrScheduleOptions>, schedule) = std::nullopt;
  /// Keep an EMA of the weights (updated after every step, evaluated every epoch beside the
  /// raw weights; best.pt keeps whichever scores better). Default: none.
  TORCH_ARG(std::optional<ModelEmaOptions>, ema) = std::nullopt;
  /// Linear warm-up length in epochs (cosine schedule). Default 0.
  TORCH_ARG(double, warmup_epochs) = 0.0;
  /// Continue from out_dir/last.pt. Default false.
  TORCH_ARG(bool, resume) = false;
  /// Seeds torch's default generator at the start of a fresh run (a resumed run restores the
  /// generator from last.pt instead), so dropout masks depend on this seed alone and not on
  /// how many draws building the model took: `torch.manual_seed(seed)` just before the first
  /// step of a Python loop gives the same masks. Default: not seeded.
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;
  /// Start afresh even if out_dir holds a run. Default false (a non-empty out_dir is refused).
  TORCH_ARG(bool, overwrite) = false;
  /// Score that picks best.pt: "map", "f1" (tuned macro F1) or "loss" (lowest val loss).
  /// Default "map".
  TORCH_ARG(std::string, select_by) = "map";
  /// Evaluate the untrained model first (epoch 0 row of metrics.csv). Default true.
  TORCH_ARG(bool, evaluate_untrained) = true;
  /// Data-parallel job (distributed/communicator.hpp's Communicator). Default: one process.
  TORCH_ARG(std::shared_ptr<Collectives>, collectives) = single_process();
  /// Runs after backward, before clipping and the step: DistributedDataParallel::synchronize.
  TORCH_ARG(std::function<void()>, after_backward) = nullptr;
  /// What must match on resume and across ranks (data fingerprint, image size, batch size,
  /// world size, recipe, ...): name -> value. Default empty.
  TORCH_ARG(RunContract, contract);
  /// Contract names allowed to differ on resume (e.g. "lr", "epochs"). Default none.
  TORCH_ARG(std::set<std::string>, allow_changes);
  /// Free text stored in checkpoints (the run's flags). Default empty.
  TORCH_ARG(std::string, config);
  /// Set from a signal handler to stop after the current step (checkpointed). Default none.
  TORCH_ARG(StopFlag, stop_flag) = nullptr;
  /// Called at the start of every epoch after model.train() (freezing schedules hook here).
  TORCH_ARG(std::function<void(int64_t epoch)>, on_epoch_start) = nullptr;
  /// Called after every optimizer step.
  TORCH_ARG(std::function<void(const StepEvent&)>, on_step) = nullptr;
  /// Called after every epoch's evaluation and checkpoints.
  TORCH_ARG(std::function<void(const EpochEvent&)>, on_epoch_end) = nullptr;
  /// Progress bar and messages (rank 0 only); results go to `out`. Default std::cerr.
  TORCH_ARG(Stream, log) = &std::cerr;
  /// Per-epoch result lines and the final report (rank 0 only). Default std::cout.
  TORCH_ARG(Stream, out) = &std::cout;
  /// Draw the progress bar. Default true.
  TORCH_ARG(bool, progress) = true;
};

/// Trains a Classifier. See the file comment for an example.
class Trainer {
 public:
  Trainer(Classifier model, ModelSpec spec, std::unique_ptr<torch::optim::Optimizer> optimizer,
          LossFunction loss, TrainerOptions options)
      : model_(std::move(model)),
        spec_(std::move(spec)),
        optimizer_(std::move(optimizer)),
        loss_(std::move(loss)),
        o_(std::move(options)),
        scaler_(GradScalerOptions().enabled(o_.amp() && o_.device().is_cuda())) {
    TORCH_CHECK(model_.defined(), "Trainer: no model");
    TORCH_CHECK(optimizer_ != nullptr, "Trainer: no optimizer");
    TORCH_CHECK(loss_ != nullptr, "Trainer: no loss function");
    TORCH_CHECK(!o_.out_dir().empty(), "Trainer: out_dir must be set");
    TORCH_CHECK(o_.epochs() >= 1, "Trainer: epochs must be >= 1, got ", o_.epochs());
    TORCH_CHECK(o_.select_by() == "map" || o_.select_by() == "f1" || o_.select_by() == "loss",
                "Trainer: select_by must be map, f1 or loss, got '", o_.select_by(), "'");
    TORCH_CHECK(std::isfinite(o_.clip_grad_norm()) && o_.clip_grad_norm() >= 0,
                "Trainer: clip_grad_norm must be finite and >= 0, got ", o_.clip_grad_norm());
    TORCH_CHECK(std::isfinite(o_.warmup_epochs()) && o_.warmup_epochs() >= 0,
                "Trainer: warmup_epochs must be finite and >= 0, got ", o_.warmup_epochs());
    TORCH_CHECK(!(o_.resume() && o_.overwrite()), "Trainer: resume and overwrite exclude each other");
    TORCH_CHECK(o_.collectives() != nullptr, "Trainer: collectives must not be null");
    state_.config = o_.config();
    state_.contract = o_.contract();
    if (o_.ema()) {
      ema_ = std::make_unique<Ema>(model_.ptr(), *o_.ema());
      ema_model_ = Classifier::from_module(ema_->module());
    }
  }

  Classifier& model() { return model_; }
  /// The EMA of the weights (undefined without TrainerOptions::ema).
  Classifier& ema_model() { return ema_model_; }
  const ModelSpec& spec() const { return spec_; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  const TrainingState& state() const { return state_; }
  std::string last_path() const { return path("last.pt"); }
  std::string best_path() const { return path("best.pt"); }
  std::string metrics_path() const { return path("metrics.csv"); }

  /// Trains until `epochs` (or a stop request / non-finite loss), evaluating on `val` after
  /// every epoch. Every rank calls it with its own shard of the data.
  FitResult fit(BatchSource& train, BatchSource& val) {
    auto& world = *o_.collectives();
    const bool main = world.is_main();
    std::ostream silent(nullptr);
    std::ostream& log = main && o_.log() ? *o_.log() : silent;
    std::ostream& out = main && o_.out() ? *o_.out() : silent;
    const int64_t steps_per_epoch = train.batches_per_epoch();
    TORCH_CHECK(world.sum(steps_per_epoch > 0 ? 0.0 : 1.0) == 0,
                "Trainer: the training set gives no batch on some rank (empty training set?)");
    agree_on_contract(world);
    prepare_run_dir(world);
    if (o_.resume()) resume(world, log);
    else if (o_.seed()) torch::manual_seed(*o_.seed());
    MetricsLog metrics(metrics_path());
    if (main) metrics.start(o_.resume() ? state_.epoch : -1);
    const std::optional<LrSchedule> schedule = make_schedule(steps_per_epoch);

    TrainStepOptions step_options(o_.device());
    step_options.amp(o_.amp()).clip_grad_norm(o_.clip_grad_norm());
    if (o_.after_backward()) step_options.after_backward(o_.after_backward());
    if (world.distributed()) {
      step_options.finite_consensus([&world](bool finite) { return world.sum(finite ? 0.0 : 1.0) == 0; });
    }
    FitResult result;
    if (!o_.resume() && o_.evaluate_untrained()) {
      const Evaluation e = evaluate_now(val, 0);
      EpochRecord r;
      r.val = &e;
      if (main) metrics.append(r);
      print_epoch(out, 0, r);
    }
    double lr = 0;
    for (int64_t epoch = state_.epoch; epoch < o_.epochs(); ++epoch) {
      model_.module().train();
      if (o_.on_epoch_start()) o_.on_epoch_start()(epoch);
      ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o_.epochs()),
                      steps_per_epoch);
      // A resumed interrupted epoch continues where it stopped: same order, later batches.
      const int64_t skip = state_.step - epoch * steps_per_epoch;
      int64_t index = 0, images = 0, loss_n = 0;
      double loss_sum = 0;
      bool stop = false, non_finite = false;
      train.for_each(epoch, [&](const BatchView& batch) {
        if (index++ < skip) return true;
        // One collective per step carries both the stop request and "some rank has an empty
        // batch" (all ranks must skip together: the step's collectives must match).
        const bool empty = batch.images.size(0) == 0;
        const double flags = agree((stop_requested() ? 1.0 : 0.0) + (empty ? 1000.0 : 0.0));
        stop = std::fmod(flags, 1000.0) > 0;  // a stop request: no new step
        if (stop || flags >= 1000.0) return !stop;
        auto x = batch.images.to(o_.device(), /*non_blocking=*/true)
                     .contiguous(o_.channels_last() ? at::MemoryFormat::ChannelsLast
                                                    : at::MemoryFormat::Contiguous);
        auto y = batch.targets.to(o_.device(), /*non_blocking=*/true);
        if (schedule) {
          schedule->apply(*optimizer_, state_.step);
          lr = schedule->lr(state_.step);
        }
        const StepResult r = train_step(model_, *optimizer_, scaler_, loss_, x, y, step_options);
        if (!r.finite && !scaler_.enabled()) {
          non_finite = true;
          result.message = "loss became " + std::to_string(r.loss) + " at epoch " +
                           std::to_string(epoch + 1) + ", step " + std::to_string(state_.step) +
                           ": stopped; " +
                           (state_.epoch > 0 ? last_path() + " keeps the last good state"
                                             : "no checkpoint was written (no epoch finished)");
          return false;
        }
        if (ema_ && !r.skipped) ema_->update(model_.module());
        ++state_.step;
        ++result.steps_run;
        images += x.size(0);
        if (r.finite) {
          loss_sum += r.loss;
          ++loss_n;
        }
        if (o_.on_step()) {
          o_.on_step()(StepEvent{epoch, state_.step, index - 1, r.loss, r.finite, lr});
        }
        if (main && o_.progress()) {
          std::ostringstream extra;
          extra << "loss " << std::fixed << std::setprecision(4)
                << (loss_n ? loss_sum / double(loss_n) : 0.0) << " lr " << std::scientific
                << std::setprecision(2) << lr;
          bar.update(index - skip, images * world.world_size(), extra.str());
        }
        return true;
      });
      state_.scaler = scaler_.state();
      if (non_finite) {
        log << "\n" << result.message << "\n";
        result.status = FitStatus::non_finite;
        result.state = state_;
        return result;
      }
      if (stop) {
        train.stop();
        checkpoint(last_path(), true);
        result.status = FitStatus::interrupted;
        result.message = "interrupted: checkpoint written to " + last_path() +
                         " (continue with --resume)";
        log << "\n" << result.message << "\n";
        result.state = state_;
        return result;
      }
      const double trained = world.sum(double(images));
      TORCH_CHECK(trained > 0 || skip >= steps_per_epoch, "epoch ", epoch + 1,
                  ": no training step was made: every batch was empty (are all training "
                  "images unreadable?)");
      const double train_loss =
          world.sum(loss_n ? loss_sum / double(loss_n) : 0.0) /
          std::max(1.0, world.sum(loss_n ? 1.0 : 0.0));
      if (main && o_.progress()) bar.finish(images * world.world_size());
      state_.epoch = epoch + 1;
      const Evaluation e = evaluate_now(val, epoch + 1);
      std::optional<Evaluation> e_ema;
      if (ema_) e_ema = evaluate_now(val, epoch + 1, ema_model_);
      state_.thresholds = e.thresholds;
      EpochRecord r;
      r.epoch = epoch + 1;
      r.train_loss = loss_n || world.distributed() ? train_loss : std::nan("");
      r.lr = lr;
      r.seconds = bar.elapsed();
      r.val = &e;
      r.ema = e_ema ? &*e_ema : nullptr;
      if (main) metrics.append(r);
      print_epoch(out, epoch + 1, r);
      // best.pt: the better of the raw and the EMA weights, by the chosen score.
      const double raw_score = score(e);
      const bool ema_better = e_ema && score(*e_ema) > raw_score;
      const double epoch_score = ema_better ? score(*e_ema) : raw_score;
      const bool best = std::isfinite(epoch_score) && epoch_score > state_.best_score;
      if (best) {
        state_.best_score = epoch_score;
        state_.best_epoch = epoch + 1;
        state_.best_source = ema_better ? "ema" : "model";
      }
      checkpoint(last_path(), true);
      if (best) save_best(ema_better ? ema_model_ : model_, ema_better ? *e_ema : e);
      if (o_.on_epoch_end()) o_.on_epoch_end()(EpochEvent{epoch + 1, r.train_loss, &e, r.ema, best});
      result.last = e;
      if (state_.epoch == o_.epochs()) {
        write_final_report(out, e);
      } else if (agree(stop_requested() ? 1.0 : 0.0) > 0) {
        result.status = FitStatus::interrupted;
        result.message = "interrupted between epochs: " + last_path() + " is up to date";
        log << result.message << "\n";
        result.state = state_;
        return result;
      }
    }
    result.state = state_;
    result.message = state_.best_epoch > 0
                         ? "best epoch " + std::to_string(state_.best_epoch) + " (" +
                               o_.select_by() + " " + format_score(state_.best_score) + ", " +
                               (state_.best_source == "ema" ? "EMA" : "raw") + " weights): " +
                               best_path()
                         : "no epoch had a finite " + o_.select_by() + ": best.pt not written";
    return result;
  }

  /// Templated convenience: anything with batches_per_epoch() / epoch(e) / stop(), such as
  /// mobilenet::DataLoader.
  template <typename TrainLoader, typename ValLoader,
            typename = std::enable_if_t<!std::is_base_of<BatchSource, TrainLoader>::value>>
  FitResult fit(TrainLoader& train, ValLoader& val) {
    auto t = batch_source(train);
    auto v = batch_source(val);
    return fit(*t, *v);
  }

 private:
  std::string path(const std::string& name) const {
    return (std::filesystem::path(o_.out_dir()) / name).string();
  }

  bool stop_requested() const { return o_.stop_flag() && o_.stop_flag()->load(); }

  // Sum over ranks (a plain value with one process).
  double agree(double v) { return o_.collectives()->sum(v); }

  std::optional<LrSchedule> make_schedule(int64_t steps_per_epoch) const {
    if (!o_.schedule()) return std::nullopt;
    LrScheduleOptions s = *o_.schedule();
    const int64_t total = o_.epochs() * steps_per_epoch;
    s.total_steps(total);
    s.warmup_steps(std::min<int64_t>(total, int64_t(o_.warmup_epochs() * double(steps_per_epoch))));
    return LrSchedule(s);
  }

  double score(const Evaluation& e) const {
    return o_.select_by() == "map" ? e.ap.mean : o_.select_by() == "f1" ? e.tuned.macro_f1 : -e.loss;
  }

  Evaluation evaluate_now(BatchSource& val, int64_t epoch) { return evaluate_now(val, epoch, model_); }
  Evaluation evaluate_now(BatchSource& val, int64_t epoch, Classifier& model) {
    return evaluate(model, val, loss_, epoch,
                    EvaluateOptions()
                        .device(o_.device())
                        .amp(o_.amp())
                        .collectives(o_.collectives())
                        .class_names(spec_.class_names()));
  }

  // Rank 0 writes; the others wait so nobody races ahead of a checkpoint.
  void checkpoint(const std::string& file, bool with_optimizer) {
    auto& world = *o_.collectives();
    if (world.is_main()) {
      ArchiveWriter ema;
      if (ema_ && with_optimizer) ema = [this](torch::serialize::OutputArchive& a) { ema_->save(a); };
      save_checkpoint(file, model_.module(), spec_, state_, with_optimizer ? optimizer_.get() : nullptr,
                      ema);
    }
    world.barrier();
  }

  // best.pt holds the chosen weights as "the model" (so a Predictor needs nothing else), with
  // the thresholds tuned for them; state.best_source says which weights they were.
  void save_best(Classifier& weights, const Evaluation& e) {
    auto& world = *o_.collectives();
    if (world.is_main()) {
      TrainingState s = state_;
      s.thresholds = e.thresholds;
      save_checkpoint(best_path(), weights.module(), spec_, s, nullptr);
    }
    world.barrier();
  }

  // Every rank must run the same configuration: rank 0's contract is broadcast and each rank
  // names what differs; then all fail together.
  void agree_on_contract(Collectives& world) {
    if (!world.distributed()) return;
    std::string mine = encode(state_.contract);
    std::vector<torch::Tensor> size{torch::tensor({int64_t(mine.size())})};
    world.broadcast(size);
    auto bytes = world.is_main() ? torch::from_blob(mine.data(), {int64_t(mine.size())}, torch::kChar).clone()
                                 : torch::zeros({size[0].item<int64_t>()}, torch::kChar);
    std::vector<torch::Tensor> payload{bytes};
    world.broadcast(payload);
    const std::string theirs(static_cast<const char*>(payload[0].data_ptr()), size_t(payload[0].numel()));
    const std::string diff = describe_differences(decode(theirs), state_.contract, "rank 0", "this rank", {});
    const double bad = world.sum(diff.empty() ? 0.0 : 1.0);
    TORCH_CHECK(bad == 0, "ranks were started with different configurations",
                diff.empty() ? std::string(" (on another rank)") : ": " + diff);
  }

  void prepare_run_dir(Collectives& world) {
    namespace fs = std::filesystem;
    double refuse = 0;
    if (world.is_main()) {
      std::error_code ec;
      fs::create_directories(o_.out_dir(), ec);
      TORCH_CHECK(!ec, "cannot create output folder '", o_.out_dir(), "': ", ec.message());
      const bool has_run = fs::exists(last_path()) || fs::exists(metrics_path()) || fs::exists(best_path());
      if (!o_.resume() && !o_.overwrite() && has_run) refuse = 1;
      if (o_.overwrite()) {
        for (const auto& name : {"last.pt", "best.pt", "metrics.csv", "per_class.csv"}) {
          fs::remove(path(name), ec);
        }
      }
    }
    TORCH_CHECK(world.sum(refuse) == 0, "output folder '", o_.out_dir(),
                "' already holds a run (last.pt / best.pt / metrics.csv): continue it with "
                "--resume, or start afresh with --overwrite");
  }

  void resume(Collectives& world, std::ostream& log) {
    TORCH_CHECK(std::filesystem::exists(last_path()), "resume: no checkpoint at '", last_path(), "'");
    // The contract first: another architecture, optimizer or EMA setting would otherwise fail
    // inside the weight or state loading, with a message that does not name the setting.
    const std::string diff = describe_differences(read_contract(last_path()), state_.contract,
                                                  "checkpoint", "now", o_.allow_changes());
    TORCH_CHECK(diff.empty(), "resume: '", last_path(), "' was written by a different run: ", diff,
                " (start afresh with --overwrite, or allow intended changes explicitly)");
    ArchiveReader ema;
    if (ema_) ema = [this](torch::serialize::InputArchive& a) { ema_->load(a); };
    TrainingState loaded =
        load_checkpoint(last_path(), model_.module(), spec_, optimizer_.get(), /*restore_rng=*/true, ema);
    if (!loaded.scaler.empty()) scaler_.load_state(loaded.scaler);
    const std::string config = state_.config;
    const auto contract = state_.contract;
    state_ = loaded;
    state_.config = config;
    state_.contract = contract;
    if (world.distributed()) {
      // Each rank read last.pt from its own disk: make sure they read the same one.
      double checksum = double(state_.step) * 1e3 + double(state_.epoch);
      {
        torch::NoGradGuard no_grad;
        for (const auto& p : model_.module().parameters()) checksum += p.to(torch::kDouble).sum().item<double>();
      }
      std::vector<torch::Tensor> v{torch::tensor({checksum}, torch::kDouble)};
      world.broadcast(v);
      const double differs = world.sum(std::abs(v[0].item<double>() - checksum) > 1e-9 * std::abs(checksum) ? 1.0 : 0.0);
      TORCH_CHECK(differs == 0, "resume: ranks loaded different checkpoints from '", last_path(),
                  "' (each rank reads it from its own disk: put the run folder on shared storage "
                  "or copy rank 0's last.pt to every machine)");
    }
    log << "resumed from " << last_path() << " at epoch " << state_.epoch << ", step "
        << state_.step << "\n";
  }

  static std::string encode(const std::map<std::string, std::string>& m) {
    std::string s;
    for (const auto& kv : m) s += kv.first + '\x1f' + kv.second + '\x1e';
    return s;
  }
  static std::map<std::string, std::string> decode(const std::string& s) {
    std::map<std::string, std::string> m;
    size_t pos = 0;
    while (pos < s.size()) {
      const size_t sep = s.find('\x1f', pos), end = s.find('\x1e', pos);
      if (sep == std::string::npos || end == std::string::npos || sep > end) break;
      m[s.substr(pos, sep - pos)] = s.substr(sep + 1, end - sep - 1);
      pos = end + 1;
    }
    return m;
  }

  // "image_size: checkpoint 64, now 96; lr: ..." for every name whose values differ.
  static std::string describe_differences(const std::map<std::string, std::string>& a,
                                          const std::map<std::string, std::string>& b,
                                          const std::string& a_name, const std::string& b_name,
                                          const std::set<std::string>& allowed) {
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

  static std::string format_score(double v) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(4) << v;
    return s.str();
  }

  void print_epoch(std::ostream& out, int64_t epoch, const EpochRecord& r) const {
    const Evaluation& m = *r.val;
    out << std::fixed << std::setprecision(4) << "epoch " << epoch << " | train loss "
        << r.train_loss << " | val loss " << m.loss << " | acc " << m.at_half.element_accuracy
        << " | P/R/F1@0.5 micro " << m.at_half.micro_precision << "/" << m.at_half.micro_recall
        << "/" << m.at_half.micro_f1 << " macro " << m.at_half.macro_precision << "/"
        << m.at_half.macro_recall << "/" << m.at_half.macro_f1 << " | tuned F1 micro "
        << m.tuned.micro_f1 << " macro " << m.tuned.macro_f1 << " | CF1/OF1 "
        << m.paper.all.class_f1 << "/" << m.paper.all.overall_f1 << " | mAP " << m.ap.mean;
    if (r.ema) out << " | EMA mAP " << r.ema->ap.mean;
    out << std::endl;
  }

  void write_final_report(std::ostream& out, const Evaluation& e) const {
    if (!o_.collectives()->is_main()) return;
    out << "\n" << e.report;
    std::ofstream per_class(path("per_class.csv"));
    per_class << "class,ap,threshold\n";
    for (size_t k = 0; k < e.thresholds.size(); ++k) {
      per_class << (k < spec_.class_names().size() ? spec_.class_names()[k] : std::to_string(k))
                << "," << e.ap.per_class[k] << "," << e.thresholds[k] << "\n";
    }
    // Relative names: gnuplot runs in the run folder, whatever characters its path holds.
    std::ofstream(path("plots.gp")) << MetricsLog::gnuplot_script("metrics.csv", "per_class.csv",
                                                                  /*with_ema=*/ema_ != nullptr);
  }

  Classifier model_;
  ModelSpec spec_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  LossFunction loss_;
  TrainerOptions o_;
  GradScaler scaler_;
  TrainingState state_;
  using Ema = ModelEma<std::shared_ptr<torch::nn::Module>>;
  std::unique_ptr<Ema> ema_;
  Classifier ema_model_;
};

}  // namespace mobilenet
