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
#include <mobilenet/train/run_contract.hpp>
#include <mobilenet/train/run_dir.hpp>
#include <mobilenet/train/schedule.hpp>
#include <mobilenet/train/select_by.hpp>
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

/// Trainer options. Example:
/// `TrainerOptions("runs/coco").epochs(10).device(torch::kCUDA).amp(true).select_by(SelectBy::f1)`.
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
  /// Score that picks best.pt (select_by.hpp). Default SelectBy::map.
  TORCH_ARG(SelectBy, select_by) = SelectBy::map;
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
        dir_(required_out_dir(o_)),
        scaler_(GradScalerOptions().enabled(o_.amp() && o_.device().is_cuda())) {
    TORCH_CHECK(model_.defined(), "Trainer: no model");
    TORCH_CHECK(optimizer_ != nullptr, "Trainer: no optimizer");
    TORCH_CHECK(loss_ != nullptr, "Trainer: no loss function");
    TORCH_CHECK(o_.epochs() >= 1, "Trainer: epochs must be >= 1, got ", o_.epochs());
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
  /// The run folder and its files.
  const RunDir& run_dir() const { return dir_; }
  std::string last_path() const { return dir_.last(); }
  std::string best_path() const { return dir_.best(); }
  std::string metrics_path() const { return dir_.metrics(); }

  /// Trains until `epochs` (or a stop request / non-finite loss), evaluating on `val` after
  /// every epoch. Every rank calls it with its own shard of the data.
  FitResult fit(BatchSource& train, BatchSource& val) {
    auto& world = *o_.collectives();
    const int64_t steps_per_epoch = train.batches_per_epoch();
    TORCH_CHECK(world.all_reduce(steps_per_epoch > 0 ? 0.0 : 1.0) == 0,
                "Trainer: the training set gives no batch on some rank (empty training set?)");
    begin_run(world);
    MetricsLog metrics(dir_.metrics());
    if (world.is_main()) metrics.start(o_.resume() ? state_.epoch : -1);
    const EpochPlan plan{steps_per_epoch, make_schedule(steps_per_epoch), make_step_options(world)};
    FitResult result;
    if (!o_.resume() && o_.evaluate_untrained()) {
      const Evaluation e = evaluate_model(val, 0, model_);
      EpochRecord r;
      r.val = &e;
      if (world.is_main()) metrics.append(r);
      print_epoch(out(), 0, r);
    }
    for (int64_t epoch = state_.epoch; epoch < o_.epochs(); ++epoch) {
      const EpochTraining t = train_epoch(train, epoch, plan, result);
      if (t.end == EpochEnd::non_finite) return end_fit(result, FitStatus::non_finite, t.message);
      if (t.end == EpochEnd::stopped) {
        train.stop();
        checkpoint(dir_.last(), true);
        return end_fit(result, FitStatus::interrupted,
                       "interrupted: checkpoint written to " + dir_.last() + " (continue with --resume)");
      }
      result.last = end_epoch(val, epoch, t, metrics);
      if (state_.epoch == o_.epochs()) {
        write_final_report(*result.last);
      } else if (agree_step(stop_requested(), false).stop) {
        return end_fit(result, FitStatus::interrupted,
                       "interrupted between epochs: " + dir_.last() + " is up to date");
      }
    }
    result.state = state_;
    result.message = state_.best_epoch > 0
                         ? "best epoch " + std::to_string(state_.best_epoch) + " (" +
                               to_string(o_.select_by()) + " " + format_score(state_.best_score) +
                               ", " + (state_.best_source == "ema" ? "EMA" : "raw") +
                               " weights): " + dir_.best()
                         : std::string("no epoch had a finite ") + to_string(o_.select_by()) +
                               ": best.pt not written";
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
  // Checked before dir_ is built from it, so the message names the Trainer's option.
  static const std::string& required_out_dir(const TrainerOptions& o) {
    TORCH_CHECK(!o.out_dir().empty(), "Trainer: out_dir must be set");
    return o.out_dir();
  }

  // What every epoch of one fit() shares.
  struct EpochPlan {
    int64_t steps_per_epoch = 0;
    std::optional<LrSchedule> schedule;
    TrainStepOptions step_options;
  };

  enum class EpochEnd { completed, stopped, non_finite };

  // One epoch's training, before its evaluation.
  struct EpochTraining {
    EpochEnd end = EpochEnd::completed;
    double train_loss = std::nan("");  // mean over ranks of each rank's mean step loss
    double lr = 0;                     // at the epoch's last step
    double seconds = 0;
    std::string message;               // why it ended early
  };

  // What all ranks decide together before a step, in one collective: a stop request on any
  // rank stops all; an empty batch on any rank makes all skip the step (its collectives must
  // match on every rank).
  struct StepAgreement {
    bool stop = false;
    bool skip = false;
  };

  StepAgreement agree_step(bool stop_requested, bool empty_batch) {
    auto& world = *o_.collectives();
    if (!world.distributed()) return {stop_requested, empty_batch};
    auto flags = torch::tensor({stop_requested ? 1.0 : 0.0, empty_batch ? 1.0 : 0.0}, torch::kDouble);
    world.all_reduce(flags, ReduceOp::Max);
    return {flags[0].item<double>() > 0, flags[1].item<double>() > 0};
  }

  bool stop_requested() const { return o_.stop_flag() && o_.stop_flag()->load(); }

  // Progress and messages on rank 0 only; results likewise. Other ranks write to a stream
  // without a buffer, which drops everything.
  static std::ostream& silent() {
    static std::ostream none(nullptr);
    return none;
  }
  std::ostream& log() { return o_.collectives()->is_main() && o_.log() ? *o_.log() : silent(); }
  std::ostream& out() { return o_.collectives()->is_main() && o_.out() ? *o_.out() : silent(); }

  // The contract agreed over ranks, the run folder prepared, then a resume or a seed.
  void begin_run(Collectives& world) {
    agree_on_contract(world, state_.contract);
    dir_.prepare(world, o_.resume(), o_.overwrite());
    if (o_.resume()) resume(world);
    else if (o_.seed()) torch::manual_seed(*o_.seed());
  }

  TrainStepOptions make_step_options(Collectives& world) const {
    TrainStepOptions s(o_.device());
    s.amp(o_.amp()).clip_grad_norm(o_.clip_grad_norm());
    if (o_.after_backward()) s.after_backward(o_.after_backward());
    if (world.distributed()) {
      s.finite_consensus([&world](bool finite) { return world.all_reduce(finite ? 0.0 : 1.0) == 0; });
    }
    return s;
  }

  // Trains one epoch; a resumed interrupted epoch continues where it stopped (same order,
  // later batches).
  EpochTraining train_epoch(BatchSource& train, int64_t epoch, const EpochPlan& plan, FitResult& result) {
    auto& world = *o_.collectives();
    model_.module().train();
    if (o_.on_epoch_start()) o_.on_epoch_start()(epoch);
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o_.epochs()),
                    plan.steps_per_epoch);
    const int64_t skip = state_.step - epoch * plan.steps_per_epoch;
    int64_t index = 0, images = 0, loss_n = 0;
    double loss_sum = 0;
    EpochTraining t;
    train.for_each(epoch, [&](const BatchView& batch) {
      if (index++ < skip) return true;
      const StepAgreement agreed = agree_step(stop_requested(), batch.images.size(0) == 0);
      if (agreed.stop) {
        t.end = EpochEnd::stopped;
        return false;
      }
      if (agreed.skip) return true;
      auto x = batch.images.to(o_.device(), /*non_blocking=*/true)
                   .contiguous(o_.channels_last() ? at::MemoryFormat::ChannelsLast
                                                  : at::MemoryFormat::Contiguous);
      auto y = batch.targets.to(o_.device(), /*non_blocking=*/true);
      if (plan.schedule) {
        plan.schedule->apply(*optimizer_, state_.step);
        t.lr = plan.schedule->lr(state_.step);
      }
      const StepResult r = train_step(model_, *optimizer_, scaler_, loss_, x, y, plan.step_options);
      if (!r.finite && !scaler_.enabled()) {
        t.end = EpochEnd::non_finite;
        t.message = "loss became " + std::to_string(r.loss) + " at epoch " + std::to_string(epoch + 1) +
                    ", step " + std::to_string(state_.step) + ": stopped; " +
                    (state_.epoch > 0 ? dir_.last() + " keeps the last good state"
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
      if (o_.on_step()) o_.on_step()(StepEvent{epoch, state_.step, index - 1, r.loss, r.finite, t.lr});
      if (world.is_main() && o_.progress()) {
        std::ostringstream extra;
        extra << "loss " << std::fixed << std::setprecision(4)
              << (loss_n ? loss_sum / double(loss_n) : 0.0) << " lr " << std::scientific
              << std::setprecision(2) << t.lr;
        bar.update(index - skip, images * world.world_size(), extra.str());
      }
      return true;
    });
    state_.scaler = scaler_.state();
    if (t.end != EpochEnd::completed) return t;
    const double trained = world.all_reduce(double(images));
    TORCH_CHECK(trained > 0 || skip >= plan.steps_per_epoch, "epoch ", epoch + 1,
                ": no training step was made: every batch was empty (are all training "
                "images unreadable?)");
    const double mean = world.all_reduce(loss_n ? loss_sum / double(loss_n) : 0.0) /
                        std::max(1.0, world.all_reduce(loss_n ? 1.0 : 0.0));
    if (loss_n || world.distributed()) t.train_loss = mean;
    if (world.is_main() && o_.progress()) bar.finish(images * world.world_size());
    t.seconds = bar.elapsed();
    return t;
  }

  // Evaluates the raw (and EMA) weights, logs the epoch, writes last.pt and, when the epoch
  // scores best, best.pt; then the callback. Returns the raw weights' evaluation.
  Evaluation end_epoch(BatchSource& val, int64_t epoch, const EpochTraining& t, MetricsLog& metrics) {
    state_.epoch = epoch + 1;
    const Evaluation e = evaluate_model(val, epoch + 1, model_);
    std::optional<Evaluation> e_ema;
    if (ema_) e_ema = evaluate_model(val, epoch + 1, ema_model_);
    state_.thresholds = e.thresholds;
    EpochRecord r;
    r.epoch = epoch + 1;
    r.train_loss = t.train_loss;
    r.lr = t.lr;
    r.seconds = t.seconds;
    r.val = &e;
    r.ema = e_ema ? &*e_ema : nullptr;
    if (o_.collectives()->is_main()) metrics.append(r);
    print_epoch(out(), epoch + 1, r);
    // best.pt: the better of the raw and the EMA weights, by the chosen score.
    const double raw_score = selection_score(o_.select_by(), e);
    const bool ema_better = e_ema && selection_score(o_.select_by(), *e_ema) > raw_score;
    const double epoch_score = ema_better ? selection_score(o_.select_by(), *e_ema) : raw_score;
    const bool best = std::isfinite(epoch_score) && epoch_score > state_.best_score;
    if (best) {
      state_.best_score = epoch_score;
      state_.best_epoch = epoch + 1;
      state_.best_source = ema_better ? "ema" : "model";
    }
    checkpoint(dir_.last(), true);
    if (best) save_best(ema_better ? ema_model_ : model_, ema_better ? *e_ema : e);
    if (o_.on_epoch_end()) o_.on_epoch_end()(EpochEvent{epoch + 1, r.train_loss, &e, r.ema, best});
    return e;
  }

  FitResult& end_fit(FitResult& result, FitStatus status, std::string message) {
    result.status = status;
    result.message = std::move(message);
    result.state = state_;
    log() << "\n" << result.message << "\n";
    return result;
  }

  std::optional<LrSchedule> make_schedule(int64_t steps_per_epoch) const {
    if (!o_.schedule()) return std::nullopt;
    LrScheduleOptions s = *o_.schedule();
    const int64_t total = o_.epochs() * steps_per_epoch;
    s.total_steps(total);
    s.warmup_steps(std::min<int64_t>(total, int64_t(o_.warmup_epochs() * double(steps_per_epoch))));
    return LrSchedule(s);
  }

  Evaluation evaluate_model(BatchSource& val, int64_t epoch, Classifier& model) {
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
      save_checkpoint(dir_.best(), weights.module(), spec_, s, nullptr);
    }
    world.barrier();
  }

  void resume(Collectives& world) {
    TORCH_CHECK(std::filesystem::exists(last_path()), "resume: no checkpoint at '", last_path(), "'");
    // The contract first: another architecture, optimizer or EMA setting would otherwise fail
    // inside the weight or state loading, with a message that does not name the setting.
    const std::string diff = contract_differences(read_contract(dir_.last()), state_.contract,
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
      const double differs = world.all_reduce(std::abs(v[0].item<double>() - checksum) > 1e-9 * std::abs(checksum) ? 1.0 : 0.0);
      TORCH_CHECK(differs == 0, "resume: ranks loaded different checkpoints from '", last_path(),
                  "' (each rank reads it from its own disk: put the run folder on shared storage "
                  "or copy rank 0's last.pt to every machine)");
    }
    log() << "resumed from " << dir_.last() << " at epoch " << state_.epoch << ", step "
          << state_.step << "\n";
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

  void write_final_report(const Evaluation& e) {
    if (!o_.collectives()->is_main()) return;
    out() << "\n" << e.report;
    std::ofstream per_class(dir_.per_class());
    per_class << "class,ap,threshold\n";
    for (size_t k = 0; k < e.thresholds.size(); ++k) {
      per_class << (k < spec_.class_names().size() ? spec_.class_names()[k] : std::to_string(k))
                << "," << e.ap.per_class[k] << "," << e.thresholds[k] << "\n";
    }
    // Relative names: gnuplot runs in the run folder, whatever characters its path holds.
    std::ofstream(dir_.plots()) << MetricsLog::gnuplot_script("metrics.csv", "per_class.csv",
                                                                  /*with_ema=*/ema_ != nullptr);
  }

  Classifier model_;
  ModelSpec spec_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  LossFunction loss_;
  TrainerOptions o_;
  RunDir dir_;
  GradScaler scaler_;
  TrainingState state_;
  using Ema = ModelEma<std::shared_ptr<torch::nn::Module>>;
  std::unique_ptr<Ema> ema_;
  Classifier ema_model_;
};

}  // namespace mobilenet
