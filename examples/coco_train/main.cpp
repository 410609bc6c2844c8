// Trains the seed model (dilated MobileNetV2) as a multi-label classifier on COCO or any
// COCO-format data set, evaluating every epoch; resumable, interruptible, with plots.
#include <mobilenet/data.hpp>
#include <mobilenet/distributed.hpp>
#include <mobilenet/nn/losses.hpp>
#include <mobilenet/metrics/metrics.hpp>
#include <mobilenet/metrics/metrics_torch.hpp>
#include <mobilenet/mobilenet.hpp>
#include <mobilenet/train/progress.hpp>

#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <thread>

#include "plots.hpp"

namespace fs = std::filesystem;

namespace {

// Set by SIGINT/SIGTERM: finish the step, checkpoint, exit.
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop = true; }

struct Config {
  std::string coco_root, train_ann, train_images, val_ann, val_images;
  int64_t output_stride = 16;
  double width_mult = 1.0;
  std::string init = "torchvision";
  std::string weights;
  std::string loss = "bce";
  double focal_alpha = 0.25, focal_gamma = 2.0;
  double asl_gamma_neg = 4.0, asl_gamma_pos = 1.0, asl_clip = 0.05;
  std::string optimizer = "adamw";
  double lr = 1e-3, weight_decay = 1e-4, momentum = 0.9;
  std::string schedule = "cosine";
  double warmup_epochs = 1.0;
  int64_t epochs = 10, batch_size = 32, image_size = 256;
  bool amp = false;
  std::string freeze = "none";
  int64_t unfreeze_epoch = 0;
  int64_t threads = 0, workers = 2;
  std::string device;
  bool channels_last = true;
  bool normalize = true;
  bool ignore_crowd = false;
  std::string out = "runs/coco";
  bool resume = false;
  uint64_t seed = 0;
  std::string select_by = "map";
  double clip_grad = 0.0;
  double min_crop_scale = 0.5;
  int64_t max_train_images = 0, max_val_images = 0;
  int64_t nproc = 1;
  double dist_timeout_s = 300;
};

std::string describe(const Config& c) {
  std::ostringstream s;
  s << "train=" << c.train_ann << " val=" << c.val_ann << " output_stride=" << c.output_stride
    << " width_mult=" << c.width_mult << " init=" << c.init << " loss=" << c.loss
    << " optimizer=" << c.optimizer << " lr=" << c.lr << " weight_decay=" << c.weight_decay
    << " schedule=" << c.schedule << " epochs=" << c.epochs << " batch_size=" << c.batch_size
    << " image_size=" << c.image_size << " amp=" << c.amp << " freeze=" << c.freeze
    << " normalize=" << c.normalize << " seed=" << c.seed << " select_by=" << c.select_by;
  return s.str();
}

mobilenet::LossFunction make_loss(const Config& c) {
  using namespace mobilenet;
  if (c.loss == "bce") {
    return [](const torch::Tensor& x, const torch::Tensor& y) { return bce_with_logits_loss(x, y); };
  }
  if (c.loss == "focal") {
    auto o = SigmoidFocalLossOptions().alpha(c.focal_alpha).gamma(c.focal_gamma);
    return [o](const torch::Tensor& x, const torch::Tensor& y) { return sigmoid_focal_loss(x, y, o); };
  }
  if (c.loss == "asl") {
    auto o = AsymmetricLossOptions()
                 .gamma_neg(c.asl_gamma_neg)
                 .gamma_pos(c.asl_gamma_pos)
                 .clip(c.asl_clip);
    return [o](const torch::Tensor& x, const torch::Tensor& y) { return asymmetric_loss(x, y, o); };
  }
  return [](const torch::Tensor& x, const torch::Tensor& y) { return soft_f1_loss(x, y); };
}

/// Validation metrics of one epoch: at threshold 0.5 and at per-class thresholds tuned on
/// this same set for F1 (so the tuned figures are optimistic; the thresholds are what a
/// deployed model carries).
struct EpochMetrics {
  mobilenet::ThresholdMetrics at_half, tuned;
  mobilenet::AveragePrecision ap;
  std::vector<float> thresholds;
  std::string report;
};

EpochMetrics evaluate_multilabel(const torch::Tensor& scores, const torch::Tensor& targets,
                                 const std::vector<std::string>& names) {
  mobilenet::MetricsAccumulator acc(scores.size(1));
  mobilenet::accumulate(acc, scores, targets);
  EpochMetrics m;
  m.at_half = acc.at_threshold(0.5f);
  m.thresholds = acc.tune_thresholds();
  m.tuned = acc.at_threshold(m.thresholds);
  m.ap = acc.average_precision();
  m.report = acc.report(names, m.thresholds);
  return m;
}

/// Validation pass: mean loss, sigmoid scores and targets.
struct EvalOutput {
  double loss = 0;
  torch::Tensor scores, targets;
};

EvalOutput run_eval(mobilenet::MobileNetV2& model, mobilenet::DataLoader& loader,
                    const mobilenet::LossFunction& loss_fn, const torch::Device& device,
                    bool amp, int64_t epoch, int64_t num_classes) {
  model->eval();
  torch::NoGradGuard no_grad;
  EvalOutput out;
  std::vector<torch::Tensor> scores, targets;
  double loss_sum = 0;
  int64_t n = 0;
  for (auto& batch : loader.epoch(epoch)) {
    auto images = batch.images.to(device, /*non_blocking=*/true);
    auto y = batch.targets.to(device);
    torch::Tensor logits;
    {
      mobilenet::AutocastGuard autocast(device, amp);
      logits = model(images);
    }
    logits = logits.to(torch::kFloat);
    loss_sum += loss_fn(logits, y).item<double>() * static_cast<double>(y.size(0));
    n += y.size(0);
    scores.push_back(torch::sigmoid(logits).cpu());
    targets.push_back(batch.targets);
  }
  // With several ranks a shard may be empty; the caller gathers.
  out.loss = n > 0 ? loss_sum / static_cast<double>(n) : 0.0;
  out.scores = n > 0 ? torch::cat(scores) : torch::zeros({0, num_classes});
  out.targets = n > 0 ? torch::cat(targets) : torch::zeros({0, num_classes});
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // Seed model's input resolution; the README's demo uses a smaller one.
  constexpr int64_t kSeedImageSize = 256;
  Config c;
  c.image_size = kSeedImageSize;
  CLI::App app{"Train a MobileNetV2 multi-label classifier on COCO-format data"};
  app.add_option("--coco-root", c.coco_root,
                 "COCO folder with train2017/, val2017/, annotations/instances_{train,val}2017.json");
  app.add_option("--train-ann", c.train_ann, "training annotation file (COCO format)");
  app.add_option("--train-images", c.train_images, "training image folder");
  app.add_option("--val-ann", c.val_ann, "validation annotation file");
  app.add_option("--val-images", c.val_images, "validation image folder");
  app.add_option("--output-stride", c.output_stride, "32, 16 or 8")
      ->check(CLI::IsMember({8, 16, 32}))->capture_default_str();
  app.add_option("--width-mult", c.width_mult, "channel multiplier")->capture_default_str();
  app.add_option("--init", c.init,
                 "classifier init: torchvision (Linear N(0, 0.01)) or seed (N(0, 1.0), the "
                 "seed project's, trains worse)")
      ->check(CLI::IsMember({"torchvision", "seed"}))->capture_default_str();
  app.add_option("--weights", c.weights,
                 "torchvision weights to fine-tune from (scripts/export_torchvision_weights.py); "
                 "a classifier of another class count is skipped");
  app.add_option("--loss", c.loss, "bce, focal, asl or soft_f1")
      ->check(CLI::IsMember({"bce", "focal", "asl", "soft_f1"}))->capture_default_str();
  app.add_option("--focal-alpha", c.focal_alpha, "focal: positive weight (<0: none)")->capture_default_str();
  app.add_option("--focal-gamma", c.focal_gamma, "focal: focusing exponent")->capture_default_str();
  app.add_option("--asl-gamma-neg", c.asl_gamma_neg, "asl: negative focusing")->capture_default_str();
  app.add_option("--asl-gamma-pos", c.asl_gamma_pos, "asl: positive focusing")->capture_default_str();
  app.add_option("--asl-clip", c.asl_clip, "asl: probability margin")->capture_default_str();
  app.add_option("--optimizer", c.optimizer, "adamw or sgd (nesterov)")
      ->check(CLI::IsMember({"adamw", "sgd"}))->capture_default_str();
  app.add_option("--lr", c.lr, "peak learning rate")->capture_default_str();
  app.add_option("--weight-decay", c.weight_decay, "not applied to BN and biases")->capture_default_str();
  app.add_option("--momentum", c.momentum, "sgd momentum")->capture_default_str();
  app.add_option("--schedule", c.schedule, "cosine (with warm-up), onecycle or constant")
      ->check(CLI::IsMember({"cosine", "onecycle", "constant"}))->capture_default_str();
  app.add_option("--warmup-epochs", c.warmup_epochs, "cosine: linear warm-up length")->capture_default_str();
  app.add_option("--epochs", c.epochs, "training epochs")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch-size", c.batch_size, "images per step")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--image-size", c.image_size, "training/eval resolution")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_flag("--amp,!--no-amp", c.amp, "mixed precision: fp16 + loss scaling on CUDA, bf16 on CPU")->capture_default_str();
  app.add_option("--freeze", c.freeze, "feature blocks to freeze, e.g. 0-6 or 14-18 (inclusive), or none")->capture_default_str();
  app.add_option("--unfreeze-epoch", c.unfreeze_epoch,
                 "make the --freeze blocks trainable from this epoch on (0: never)")
      ->capture_default_str();
  app.add_option("--threads", c.threads, "intra-op threads (default: all cores)");
  app.add_option("--workers", c.workers, "data loading threads")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--device", c.device, "cpu or cuda (default: cuda when available)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_flag("--channels-last,!--no-channels-last", c.channels_last, "channels-last memory format")->capture_default_str();
  app.add_flag("--normalize,!--no-normalize", c.normalize, "ImageNet mean/std input normalization")->capture_default_str();
  app.add_flag("--ignore-crowd", c.ignore_crowd, "do not count crowd annotations as labels")->capture_default_str();
  app.add_option("--out", c.out, "output folder: checkpoints, metrics.csv, plots")->capture_default_str();
  app.add_flag("--resume", c.resume, "continue from OUT/last.pt");
  app.add_option("--seed", c.seed, "seeds init, shuffling and augmentation")->capture_default_str();
  app.add_option("--select-by", c.select_by, "which epoch is kept as best.pt: map, f1 (tuned macro) or loss")
      ->check(CLI::IsMember({"map", "f1", "loss"}))->capture_default_str();
  app.add_option("--min-crop-scale", c.min_crop_scale,
                 "smallest area fraction RandomResizedCrop keeps (torchvision: 0.08; small crops "
                 "cut objects out and so make multi-label targets wrong)")
      ->check(CLI::Range(0.01, 1.0))->capture_default_str();
  app.add_option("--clip-grad", c.clip_grad, "clip the gradient norm (0: off)")->capture_default_str();
  app.add_option("--nproc", c.nproc,
                 "data-parallel processes on this machine (Gloo on CPU, NCCL on CUDA); for "
                 "several machines launch ranks with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--dist-timeout", c.dist_timeout_s,
                 "seconds a rank waits for the others before failing (dead or hung peer)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-train-images", c.max_train_images, "use only the first N training images (0: all)");
  app.add_option("--max-val-images", c.max_val_images, "use only the first N validation images (0: all)");
  CLI11_PARSE(app, argc, argv);

  try {
    if (c.nproc > 1 && !std::getenv("RANK")) {
      // Parent of a local data-parallel job: re-run this program as nproc ranks and wait.
      std::signal(SIGINT, SIG_IGN);  // the ranks get Ctrl-C themselves and checkpoint
      mobilenet::launch_local(mobilenet::LaunchOptions(c.nproc), argc, argv);
      return 0;
    }
    auto comm = mobilenet::init_distributed(mobilenet::DistributedOptions().timeout(
        std::chrono::milliseconds(static_cast<int64_t>(c.dist_timeout_s * 1000))));
    const bool main_rank = comm->is_main();
    const int64_t world = comm->world_size();
    TORCH_CHECK(c.batch_size % world == 0, "--batch-size ", c.batch_size,
                " must be divisible by the number of processes (", world, ")");
    // Only rank 0 talks and writes; the others stay silent unless they fail.
    std::ostream silent(nullptr);
    std::ostream& log = main_rank ? std::cerr : silent;
    std::ostream& out = main_rank ? std::cout : silent;
    if (!c.coco_root.empty()) {
      const fs::path root(c.coco_root);
      if (c.train_ann.empty()) c.train_ann = (root / "annotations/instances_train2017.json").string();
      if (c.train_images.empty()) c.train_images = (root / "train2017").string();
      if (c.val_ann.empty()) c.val_ann = (root / "annotations/instances_val2017.json").string();
      if (c.val_images.empty()) c.val_images = (root / "val2017").string();
    }
    TORCH_CHECK(!c.train_ann.empty() && !c.val_ann.empty(),
                "give --coco-root, or --train-ann/--train-images/--val-ann/--val-images");
    const torch::Device device(c.device.empty() ? (torch::cuda::is_available() ? "cuda" : "cpu")
                                                : c.device);
    int threads = static_cast<int>(std::thread::hardware_concurrency());
    if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && world > 1) threads = std::atoi(omp);
    if (c.threads > 0) threads = static_cast<int>(c.threads);
    torch::set_num_threads(std::max(1, threads));
    torch::manual_seed(c.seed);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    if (main_rank) fs::create_directories(c.out);

    // Data.
    auto options = mobilenet::CocoOptions().ignore_crowd(c.ignore_crowd);
    log << "loading " << c.train_ann << " and " << c.val_ann << "\n";
    const auto train_set = mobilenet::load_coco(c.train_ann, options);
    const auto val_set = mobilenet::load_coco(c.val_ann, options);
    TORCH_CHECK(train_set.class_names() == val_set.class_names(), "'", c.train_ann, "' and '",
                c.val_ann, "' define different categories");
    auto train_samples = train_set.samples(c.train_images);
    auto val_samples = val_set.samples(c.val_images);
    if (c.max_train_images > 0 && int64_t(train_samples.size()) > c.max_train_images)
      train_samples.resize(static_cast<size_t>(c.max_train_images));
    if (c.max_val_images > 0 && int64_t(val_samples.size()) > c.max_val_images)
      val_samples.resize(static_cast<size_t>(c.max_val_images));
    const int64_t num_classes = train_set.num_classes();
    const auto class_names = train_set.class_names();
    log << train_samples.size() << " training and " << val_samples.size()
              << " validation images, " << num_classes << " classes\n";
    mobilenet::Transform train_transform;
    train_transform
        .random_resized_crop(c.image_size,
                             mobilenet::RandomResizedCropOptions().scale_min(c.min_crop_scale))
        .horizontal_flip(0.5);
    if (c.normalize) train_transform.normalize(mobilenet::kImageNetMean, mobilenet::kImageNetStd);
    mobilenet::DataLoader train_loader(
        train_samples, train_transform,
        mobilenet::LoaderOptions(c.batch_size / world)
            .workers(c.workers)
            .seed(c.seed)
            .rank(comm->rank())
            .world_size(world)
            .even_shards(true)  // equal step counts on every rank
            .drop_last(int64_t(train_samples.size()) > c.batch_size));
    mobilenet::DataLoader val_loader(
        val_samples, mobilenet::eval_transform(c.image_size, c.normalize),
        mobilenet::LoaderOptions(c.batch_size / world)
            .workers(c.workers)
            .shuffle(false)
            .rank(comm->rank())
            .world_size(world));

    // Model.
    mobilenet::ModelSpec spec{"mobilenet_v2", num_classes, c.width_mult, c.output_stride,
                              c.image_size, c.normalize, class_names};
    mobilenet::MobileNetV2 model(mobilenet::MobileNetV2Options()
                                     .num_classes(num_classes)
                                     .width_mult(c.width_mult)
                                     .output_stride(c.output_stride));
    mobilenet::init_model(*model, mobilenet::init_policy(c.init));
    if (!c.weights.empty()) {
      auto report = mobilenet::load_weights(*model, c.weights, mobilenet::LoadOptions().strict(false));
      log << "loaded " << report.loaded << " tensors from " << c.weights << "\n"
                << report.describe();
    }
    model->to(device);
    if (c.channels_last) mobilenet::to_channels_last(*model);
    mobilenet::Freezer freezer(model->features, mobilenet::parse_block_range(c.freeze));

    const int64_t steps_per_epoch = train_loader.batches_per_epoch();
    TORCH_CHECK(steps_per_epoch > 0, "the training set is empty");
    auto optimizer = mobilenet::make_optimizer(
        *model, mobilenet::OptimizerOptions(c.optimizer, c.lr)
                    .weight_decay(c.weight_decay)
                    .momentum(c.momentum));
    const mobilenet::LrSchedule schedule(
        mobilenet::LrScheduleOptions(c.schedule, c.lr, c.epochs * steps_per_epoch)
            .warmup_steps(std::min<int64_t>(c.epochs * steps_per_epoch,
                                            int64_t(c.warmup_epochs * steps_per_epoch))));
    mobilenet::GradScaler scaler(mobilenet::GradScalerOptions().enabled(c.amp && device.is_cuda()));
    const auto loss_fn = make_loss(c);
    auto step_options = mobilenet::TrainStepOptions(device).amp(c.amp).clip_grad_norm(c.clip_grad);

    const std::string last_path = (fs::path(c.out) / "last.pt").string();
    const std::string best_path = (fs::path(c.out) / "best.pt").string();
    const std::string csv_path = (fs::path(c.out) / "metrics.csv").string();
    mobilenet::TrainingState state;
    state.config = describe(c);
    if (c.resume) {
      TORCH_CHECK(fs::exists(last_path), "--resume: no checkpoint at '", last_path, "'");
      state = mobilenet::load_checkpoint(last_path, *model, spec, optimizer.get());
      if (!state.scaler.empty()) scaler.load_state(state.scaler);
      log << "resumed from " << last_path << " at epoch " << state.epoch << ", step "
                << state.step << "\n";
    } else if (main_rank) {
      std::ofstream(csv_path) << "epoch,train_loss,val_loss,accuracy,micro_precision,"
                                 "micro_recall,micro_f1,macro_precision,macro_recall,macro_f1,"
                                 "tuned_micro_f1,tuned_macro_f1,map,seconds\n";
    }

    // After resume, so every rank starts from the same weights (rank 0's are broadcast).
    std::unique_ptr<mobilenet::DistributedDataParallel> ddp;
    if (comm->distributed()) {
      ddp = std::make_unique<mobilenet::DistributedDataParallel>(model, comm);
      step_options.after_backward([&] { ddp->synchronize(); });
      step_options.finite_consensus(
          [&](bool finite) { return comm->all_reduce_sum<int64_t>(finite ? 0 : 1) == 0; });
      log << "data parallel: " << world << " processes (" << comm->backend() << "), "
          << c.batch_size / world << " images per process and step\n";
    }

    auto evaluate_and_log = [&](int64_t epoch, double train_loss, double seconds) {
      auto eval = run_eval(model, val_loader, loss_fn, device, c.amp, epoch, num_classes);
      if (comm->distributed()) {  // every rank saw a shard: gather scores, average the loss
        const double n = static_cast<double>(eval.scores.size(0));
        const double total = comm->all_reduce_sum<double>(n);
        eval.loss = comm->all_reduce_sum<double>(eval.loss * n) / total;
        eval.scores = comm->all_gather_cat(eval.scores);
        eval.targets = comm->all_gather_cat(eval.targets);
        train_loss = comm->all_reduce_sum<double>(train_loss) / static_cast<double>(world);
      }
      auto m = evaluate_multilabel(eval.scores, eval.targets, class_names);
      if (!main_rank) return std::make_pair(eval, m);
      std::ofstream csv(csv_path, std::ios::app);
      csv << std::setprecision(6) << epoch << "," << train_loss << "," << eval.loss << ","
          << m.at_half.element_accuracy << "," << m.at_half.micro_precision << ","
          << m.at_half.micro_recall << "," << m.at_half.micro_f1 << ","
          << m.at_half.macro_precision << "," << m.at_half.macro_recall << ","
          << m.at_half.macro_f1 << "," << m.tuned.micro_f1 << "," << m.tuned.macro_f1 << ","
          << m.ap.mean << "," << seconds << "\n";
      out << std::fixed << std::setprecision(4) << "epoch " << epoch
                << " | train loss " << train_loss << " | val loss " << eval.loss
                << " | acc " << m.at_half.element_accuracy << " | P/R/F1@0.5 micro "
                << m.at_half.micro_precision << "/" << m.at_half.micro_recall << "/"
                << m.at_half.micro_f1 << " macro " << m.at_half.macro_precision << "/"
                << m.at_half.macro_recall << "/" << m.at_half.macro_f1 << " | tuned F1 micro "
                << m.tuned.micro_f1 << " macro " << m.tuned.macro_f1 << " | mAP " << m.ap.mean
                << std::endl;
      return std::make_pair(eval, m);
    };

    if (!c.resume) {
      auto [eval, m] = evaluate_and_log(0, std::nan(""), 0.0);  // the untrained model
      (void)eval;
      (void)m;
    }
    bool nan_stop = false, stop = false;
    // Every rank must stop at the same step: agree on Ctrl-C across ranks.
    auto stop_requested = [&] {
      return comm->distributed() ? comm->all_reduce_sum<int64_t>(g_stop ? 1 : 0) > 0
                                 : static_cast<bool>(g_stop);
    };
    // Rank 0 writes; the others wait so nobody races ahead of a checkpoint.
    auto checkpoint = [&](const std::string& path, bool with_optimizer) {
      if (main_rank) {
        mobilenet::save_checkpoint(path, *model, spec, state,
                                   with_optimizer ? optimizer.get() : nullptr);
      }
      comm->barrier();
    };
    for (int64_t epoch = state.epoch; epoch < c.epochs && !stop && !nan_stop; ++epoch) {
      if (c.unfreeze_epoch > 0 && epoch + 1 >= c.unfreeze_epoch && !freezer.range().empty()) {
        // The optimizer already holds every parameter (frozen ones just had no gradient).
        freezer.unfreeze();
        log << "epoch " << epoch + 1 << ": feature blocks " << c.freeze << " unfrozen\n";
      }
      freezer.train(*model);
      mobilenet::ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(c.epochs),
                                 steps_per_epoch);
      // A resumed interrupted epoch continues where it stopped: same order, later batches.
      const int64_t skip = state.step - epoch * steps_per_epoch;
      int64_t i = 0, images = 0;
      double loss_sum = 0;
      int64_t loss_n = 0;
      for (auto& batch : train_loader.epoch(epoch)) {
        if (i++ < skip) continue;
        auto x = batch.images.to(device, /*non_blocking=*/true);
        auto y = batch.targets.to(device, /*non_blocking=*/true);
        schedule.apply(*optimizer, state.step);
        auto r = mobilenet::train_step(model, *optimizer, scaler, loss_fn, x, y, step_options);
        if (!r.finite && !scaler.enabled()) {
          log << "\nloss became " << r.loss << " at epoch " << epoch + 1 << ", step "
                    << state.step << ": stopping; " << last_path
                    << " keeps the last good state\n";
          nan_stop = true;
          break;
        }
        ++state.step;
        images += x.size(0);
        if (r.finite) {
          loss_sum += r.loss;
          ++loss_n;
        }
        std::ostringstream extra;
        extra << "loss " << std::fixed << std::setprecision(4) << (loss_n ? loss_sum / loss_n : 0.0)
              << " lr " << std::scientific << std::setprecision(2) << schedule.lr(state.step - 1);
        if (main_rank) bar.update(i, images * world, extra.str());
        stop = stop_requested();
        if (stop) break;
      }
      if (nan_stop) break;
      state.scaler = scaler.state();
      if (stop) {
        train_loader.stop();
        checkpoint(last_path, true);
        log << "\ninterrupted: checkpoint written to " << last_path
                  << " (continue with --resume)\n";
        return 130;
      }
      if (main_rank) bar.finish(images * world, "loss " + std::to_string(loss_n ? loss_sum / loss_n : 0.0));
      state.epoch = epoch + 1;
      auto [eval, m] = evaluate_and_log(epoch + 1, loss_n ? loss_sum / loss_n : std::nan(""),
                                        bar.elapsed());
      state.thresholds = m.thresholds;
      const double score = c.select_by == "map"  ? m.ap.mean
                           : c.select_by == "f1" ? m.tuned.macro_f1
                                                 : -eval.loss;
      const bool best = score > state.best_score;
      if (best) {
        state.best_score = score;
        state.best_epoch = epoch + 1;
      }
      checkpoint(last_path, true);
      if (best) checkpoint(best_path, false);
      stop = stop_requested();
      if (state.epoch == c.epochs && main_rank) {
        out << "\n" << m.report;
        std::ofstream per_class((fs::path(c.out) / "per_class.csv").string());
        per_class << "class,ap,threshold\n";
        for (int64_t k = 0; k < num_classes; ++k) {
          per_class << class_names[size_t(k)] << "," << m.ap.per_class[size_t(k)] << ","
                    << m.thresholds[size_t(k)] << "\n";
        }
      }
    }
    if (nan_stop) return 2;
    if (stop) {
      log << "interrupted between epochs: " << last_path << " is up to date\n";
      return 130;
    }
    if (!main_rank) return 0;
    if (coco_train::render_plots(c.out)) {
      out << "plots: " << c.out << "/{loss,f1,map,per_class_ap}.png\n";
    } else {
      out << "gnuplot not found: install it and run 'gnuplot " << c.out << "/plots.gp'\n";
    }
    out << "best epoch " << state.best_epoch << " (" << c.select_by << " "
              << (c.select_by == "loss" ? -state.best_score : state.best_score) << "): "
              << best_path << "\n";
  } catch (const c10::Error& e) {
    std::cerr << "coco_train: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "coco_train: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
