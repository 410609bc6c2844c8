// Trains the seed model (dilated MobileNetV2) as a multi-label classifier on COCO or any
// COCO-format data set: flags plus wiring around mobilenet::Trainer, which owns the loop,
// evaluation, checkpoints, resume and metrics.csv.
#include <mobilenet/data.hpp>
#include <mobilenet/distributed.hpp>
#include <mobilenet/mobilenet.hpp>
#include <mobilenet/inference.hpp>
#include <mobilenet/train/trainer.hpp>
#ifdef MOBILENET_HAVE_ONNX
#include <mobilenet/export/onnx.hpp>  // --export-onnx
#endif

#include <CLI/CLI.hpp>

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>
#include <type_traits>

namespace fs = std::filesystem;

namespace {

// Set by SIGINT/SIGTERM: the Trainer finishes the step, checkpoints and returns. A second
// signal exits at once (the user insists; last.pt still holds the previous epoch).
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) {
  if (g_stop.exchange(true)) _exit(130);
}

// Seed model's input resolution; the README's demo uses a smaller one.
constexpr int64_t kSeedImageSize = 256;

struct Config {
  std::string coco_root, train_ann, train_images, val_ann, val_images;
  std::string arch = "mobilenet_v2";
  int64_t output_stride = 16;
  double width_mult = 1.0;
  std::string init = "torchvision", weights;
  std::string loss = "bce";
  double focal_alpha = 0.25, focal_gamma = 2.0;
  double asl_gamma_neg = 4.0, asl_gamma_pos = 1.0, asl_clip = 0.05;
  std::string optimizer = "adamw", schedule = "cosine";
  double lr = 1e-3, weight_decay = 1e-4, momentum = 0.9, warmup_epochs = 1.0;
  int64_t epochs = 10, batch_size = 32, image_size = kSeedImageSize;
  std::string train_crop = "squish", eval_resize = "squish";
  std::string recipe = "default", evaluate;
  double ema_decay = 0, ema_warmup = 2000, cutout = 0, pct_start = 0.3;
  int64_t randaugment_n = 0, randaugment_m = 9;
  double min_crop_scale = 0.5;
  bool amp = false, channels_last = false, normalize = true, ignore_crowd = false;
  std::string freeze = "none";
  int64_t unfreeze_epoch = 0, threads = 0, workers = 2;
  std::string device, out = "runs/coco", select_by = "map";
  bool resume = false, overwrite = false, sync_bn = false;
  std::vector<std::string> allow_changes;
  uint64_t seed = 0;
  double clip_grad = 0.0;
  int64_t max_train_images = 0, max_val_images = 0, nproc = 1;
  int64_t max_image_pixels = mobilenet::DecodeOptions().max_pixels();
  double dist_timeout_s = 300;
  std::string export_onnx;
};

// CLI::Range lets NaN through (every comparison with it is false): numbers must be finite.
const CLI::Validator kFinite(
    [](std::string& v) -> std::string {
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      return std::isfinite(d) ? "" : "must be a finite number, got " + v;
    },
    "FINITE");

void add_flags(CLI::App& app, Config& c) {
  auto opt = [&](const char* name, auto& v, const char* help) {
    auto* o = app.add_option(name, v, help)->capture_default_str();
    if constexpr (std::is_floating_point<std::decay_t<decltype(v)>>::value) o->check(kFinite);
    return o;
  };
  opt("--coco-root", c.coco_root, "COCO folder: train2017/, val2017/, annotations/instances_*2017.json");
  opt("--train-ann", c.train_ann, "training annotation file (COCO format)");
  opt("--train-images", c.train_images, "training image folder");
  opt("--val-ann", c.val_ann, "validation annotation file");
  opt("--val-images", c.val_images, "validation image folder");
  opt("--arch", c.arch, "mobilenet_v2 or mobilenet_v1")->check(CLI::IsMember({"mobilenet_v2", "mobilenet_v1"}));
  opt("--output-stride", c.output_stride, "32, 16 or 8")->check(CLI::IsMember({8, 16, 32}));
  opt("--width-mult", c.width_mult, "channel multiplier")->check(CLI::Range(0.05, 4.0));
  opt("--init", c.init, "classifier init: torchvision (N(0, 0.01)) or seed (N(0, 1))")
      ->check(CLI::IsMember({"torchvision", "seed"}));
  opt("--weights", c.weights, "torchvision weights to fine-tune from (other class counts: head skipped)");
  opt("--loss", c.loss, "bce, focal, asl or soft_f1")->check(CLI::IsMember({"bce", "focal", "asl", "soft_f1"}));
  opt("--focal-alpha", c.focal_alpha, "focal: positive weight (<0: none)")->check(CLI::Range(-1.0, 1.0));
  opt("--focal-gamma", c.focal_gamma, "focal: focusing exponent")->check(CLI::Range(0.0, 10.0));
  opt("--asl-gamma-neg", c.asl_gamma_neg, "asl: negative focusing")->check(CLI::Range(0.0, 10.0));
  opt("--asl-gamma-pos", c.asl_gamma_pos, "asl: positive focusing")->check(CLI::Range(0.0, 10.0));
  opt("--asl-clip", c.asl_clip, "asl: probability margin")->check(CLI::Range(0.0, 0.5));
  opt("--optimizer", c.optimizer, "adamw or sgd (nesterov)")->check(CLI::IsMember({"adamw", "sgd"}));
  opt("--lr", c.lr, "peak learning rate")->check(CLI::Range(1e-12, 10.0));
  opt("--weight-decay", c.weight_decay, "not applied to BN and biases")->check(CLI::Range(0.0, 1.0));
  opt("--momentum", c.momentum, "sgd momentum")->check(CLI::Range(0.0, 1.0));
  opt("--schedule", c.schedule, "cosine (with warm-up), onecycle or constant")
      ->check(CLI::IsMember({"cosine", "onecycle", "constant"}));
  opt("--warmup-epochs", c.warmup_epochs, "cosine: linear warm-up length")->check(CLI::Range(0.0, 1e6));
  opt("--epochs", c.epochs, "training epochs")->check(CLI::Range(int64_t(1), int64_t(1000000)));
  opt("--batch-size", c.batch_size, "images per step (all processes)")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  opt("--image-size", c.image_size, "training/eval resolution")->check(CLI::Range(int64_t(8), int64_t(4096)));
  opt("--train-crop", c.train_crop,
      "squish (whole image resized to a square, multi-label default) or rrc (RandomResizedCrop)")
      ->check(CLI::IsMember({"squish", "rrc"}));
  opt("--eval-resize", c.eval_resize, "squish (whole image) or center (ImageNet resize + center crop)")
      ->check(CLI::IsMember({"squish", "center"}));
  opt("--min-crop-scale", c.min_crop_scale, "rrc: smallest area fraction kept")->check(CLI::Range(0.01, 1.0));
  opt("--recipe", c.recipe,
      "default, or asl (Alibaba-MIIL/ASL: asl loss 4/0/0.05, adamw 2e-4 onecycle 0.2, wd 1e-4, "
      "EMA 0.9997, cutout 0.5, randaugment 2/9); explicit flags override the recipe")
      ->check(CLI::IsMember({"default", "asl"}));
  opt("--ema-decay", c.ema_decay, "EMA of the weights, evaluated beside them (0: off)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            const double d = std::strtod(v.c_str(), nullptr);
            return d == 0 || (d > 0 && d < 1) ? "" : "must be 0 (off) or in (0, 1), got " + v;
          },
          "0 or (0, 1)"));
  opt("--ema-warmup", c.ema_warmup, "EMA warm-up in updates: decay * (1 - exp(-n / warmup))")
      ->check(CLI::Range(0.0, 1e9));
  opt("--cutout", c.cutout, "Cutout rectangle side as a fraction of the image side (0: off)")
      ->check(CLI::Range(0.0, 1.0));
  opt("--randaugment-n", c.randaugment_n, "RandAugment: ops per image (0: off)")->check(CLI::Range(int64_t(0), int64_t(16)));
  opt("--randaugment-m", c.randaugment_m, "RandAugment: magnitude on the 0..30 scale")
      ->check(CLI::Range(int64_t(0), mobilenet::kRandAugmentMaxMagnitude));
  opt("--pct-start", c.pct_start, "onecycle: fraction of steps spent warming up")->check(CLI::Range(0.0, 1.0));
  app.add_flag("--amp,!--no-amp", c.amp, "mixed precision: fp16 + loss scaling on CUDA, bf16 on CPU");
  opt("--freeze", c.freeze, "feature blocks to freeze, e.g. 0-6 (inclusive), or none");
  opt("--unfreeze-epoch", c.unfreeze_epoch, "make the --freeze blocks trainable from this epoch on (0: never)")
      ->check(CLI::NonNegativeNumber);
  opt("--threads", c.threads, "intra-op threads (0: all cores)")->check(CLI::Range(int64_t(0), int64_t(4096)));
  opt("--workers", c.workers, "data loading threads")->check(CLI::Range(int64_t(1), int64_t(256)));
  opt("--device", c.device, "cpu or cuda (default: cuda when available)")->check(CLI::IsMember({"", "cpu", "cuda"}));
  app.add_flag("--channels-last,!--no-channels-last", c.channels_last,
               "train in channels-last memory format (faster on CPU, but LibTorch 1.13's channels-last "
               "training gradients are less accurate: see the README)");
  app.add_flag("--normalize,!--no-normalize", c.normalize, "ImageNet mean/std input normalization");
  app.add_flag("--ignore-crowd", c.ignore_crowd, "do not count crowd annotations as labels");
  opt("--out", c.out, "output folder: checkpoints, metrics.csv, plots");
  opt("--evaluate", c.evaluate,
      "only evaluate this checkpoint on the validation set (eval transform: the checkpoint's, "
      "or --eval-resize when given) and print the metrics");
  app.add_flag("--resume", c.resume, "continue the run in --out from last.pt");
  app.add_flag("--overwrite", c.overwrite, "start afresh even if --out holds a run");
  opt("--allow-change", c.allow_changes, "on --resume, settings allowed to differ (lr, epochs, ...)");
  app.add_flag("--sync-bn", c.sync_bn, "data-parallel: BatchNorm statistics over the global batch");
  opt("--seed", c.seed, "seeds init, shuffling, augmentation and dropout");
  opt("--select-by", c.select_by, "which epoch is best.pt: map, f1 (tuned macro) or loss")
      ->check(CLI::IsMember({"map", "f1", "loss"}));
  opt("--clip-grad", c.clip_grad, "clip the gradient norm (0: off)")->check(CLI::Range(0.0, 1e12));
  opt("--nproc", c.nproc, "data-parallel processes on this machine (Gloo on CPU, NCCL on CUDA)")
      ->check(CLI::Range(int64_t(1), int64_t(1024)));
  opt("--dist-timeout", c.dist_timeout_s, "seconds a rank waits for the others (rendezvous too)")
      ->check(CLI::Range(1.0, 86400.0 * 7));
  opt("--max-image-pixels", c.max_image_pixels,
      "refuse images with more pixels (read from the header; 11 bytes/pixel at most per worker)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  opt("--max-train-images", c.max_train_images, "use only the first N training images (0: all)")->check(CLI::NonNegativeNumber);
  opt("--max-val-images", c.max_val_images, "use only the first N validation images (0: all)")->check(CLI::NonNegativeNumber);
  opt("--export-onnx", c.export_onnx, "after training, export best.pt as ONNX to this file (docs/deploy.md)");
}

// --recipe asl: what Alibaba-MIIL/ASL's train.py does, for every flag the user did not give.
void apply_recipe(const CLI::App& app, Config& c) {
  if (c.recipe != "asl") return;
  auto preset = [&](const char* flag, auto& field, auto value) {
    if (app.count(flag) == 0) field = value;
  };
  preset("--loss", c.loss, std::string("asl"));
  preset("--asl-gamma-neg", c.asl_gamma_neg, 4.0);
  preset("--asl-gamma-pos", c.asl_gamma_pos, 0.0);
  preset("--asl-clip", c.asl_clip, 0.05);
  preset("--optimizer", c.optimizer, std::string("adamw"));
  preset("--lr", c.lr, 2e-4);
  preset("--weight-decay", c.weight_decay, 1e-4);
  preset("--schedule", c.schedule, std::string("onecycle"));
  preset("--pct-start", c.pct_start, 0.2);
  preset("--ema-decay", c.ema_decay, 0.9997);
  preset("--cutout", c.cutout, 0.5);
  preset("--randaugment-n", c.randaugment_n, int64_t(2));
  preset("--randaugment-m", c.randaugment_m, int64_t(9));
}

mobilenet::LossFunction make_loss(const Config& c) {
  using namespace mobilenet;
  if (c.loss == "focal") {
    auto o = SigmoidFocalLossOptions().alpha(c.focal_alpha).gamma(c.focal_gamma);
    return [o](const torch::Tensor& x, const torch::Tensor& y) { return sigmoid_focal_loss(x, y, o); };
  }
  if (c.loss == "asl") {
    auto o = AsymmetricLossOptions().gamma_neg(c.asl_gamma_neg).gamma_pos(c.asl_gamma_pos).clip(c.asl_clip);
    return [o](const torch::Tensor& x, const torch::Tensor& y) { return asymmetric_loss(x, y, o); };
  }
  if (c.loss == "soft_f1") return [](const torch::Tensor& x, const torch::Tensor& y) { return soft_f1_loss(x, y); };
  return [](const torch::Tensor& x, const torch::Tensor& y) { return bce_with_logits_loss(x, y); };
}

mobilenet::Transform make_train_transform(const Config& c) {
  auto t = mobilenet::train_transform(c.image_size, mobilenet::parse_train_crop(c.train_crop), c.normalize,
                                      mobilenet::RandomResizedCropOptions().scale_min(c.min_crop_scale));
  if (c.cutout > 0) t.cutout(mobilenet::CutoutOptions().size(c.cutout).fill(mobilenet::CutoutFill::random_color));
  if (c.randaugment_n > 0) t.randaugment(mobilenet::RandAugmentOptions(c.randaugment_n, c.randaugment_m));
  t.max_image_pixels(c.max_image_pixels);
  return t;
}

// What a resumed run (and every rank) must share; --allow-change relaxes named entries.
mobilenet::RunContract make_contract(const Config& c, int64_t world, const std::string& train_fp,
                                     const std::string& val_fp) {
  auto str = [](auto v) { std::ostringstream s; s << v; return s.str(); };
  return {{"arch", c.arch}, {"width_mult", str(c.width_mult)}, {"output_stride", str(c.output_stride)},
          {"image_size", str(c.image_size)}, {"batch_size", str(c.batch_size)}, {"world_size", str(world)},
          {"train_data", train_fp}, {"val_data", val_fp}, {"loss", c.loss}, {"optimizer", c.optimizer},
          {"lr", str(c.lr)}, {"weight_decay", str(c.weight_decay)}, {"schedule", c.schedule},
          {"epochs", str(c.epochs)}, {"train_crop", c.train_crop}, {"eval_resize", c.eval_resize},
          {"amp", str(c.amp)}, {"normalize", str(c.normalize)}, {"seed", str(c.seed)},
          {"freeze", c.freeze}, {"sync_bn", str(c.sync_bn)}, {"recipe", c.recipe},
          {"ema_decay", str(c.ema_decay)}, {"cutout", str(c.cutout)},
          {"randaugment", str(c.randaugment_n) + "/" + str(c.randaugment_m)}};
}

std::vector<mobilenet::Sample> load_split(const std::string& ann, const std::string& images,
                                          const mobilenet::CocoOptions& o, int64_t max,
                                          std::vector<std::string>& names) {
  const auto ds = mobilenet::load_coco(ann, o);
  if (names.empty()) names = ds.class_names();
  TORCH_CHECK(names == ds.class_names(), "'", ann, "' defines other categories than the training set");
  auto samples = ds.samples(images);
  if (max > 0 && int64_t(samples.size()) > max) samples.resize(size_t(max));
  return samples;
}

// --evaluate: the checkpoint's model on the validation set, metrics on stdout.
int evaluate_checkpoint(const CLI::App& app, const Config& c) {
  auto spec = mobilenet::read_model_spec(c.evaluate);
  if (app.count("--eval-resize")) spec.eval_resize(c.eval_resize);
  std::vector<std::string> names = spec.class_names();
  const auto samples = load_split(c.val_ann, c.val_images, mobilenet::CocoOptions().ignore_crowd(c.ignore_crowd),
                                  c.max_val_images, names);
  mobilenet::Classifier model = mobilenet::make_model(spec);
  mobilenet::load_checkpoint(c.evaluate, model.module(), spec, nullptr, /*restore_rng=*/false);
  mobilenet::DataLoader loader(samples, mobilenet::eval_transform_for(spec),
                               mobilenet::LoaderOptions(c.batch_size).workers(c.workers).shuffle(false));
  const auto e = mobilenet::evaluate(model, *mobilenet::batch_source(loader), make_loss(c), 0,
                                     mobilenet::EvaluateOptions().class_names(names));
  std::cout << e.report << "\nevaluated " << c.evaluate << " on " << e.images << " images (eval resize "
            << spec.eval_resize() << "): loss " << e.loss << " mAP " << e.ap.mean << " CF1 "
            << e.paper.all.class_f1 << " OF1 " << e.paper.all.overall_f1 << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app{"Train a MobileNet multi-label classifier on COCO-format data"};
  add_flags(app, c);
  CLI11_PARSE(app, argc, argv);
  apply_recipe(app, c);
#ifndef MOBILENET_HAVE_ONNX
  if (!c.export_onnx.empty()) {  // refused before training, not after it
    std::cerr << "coco_train: --export-onnx: built without the onnx component (install libonnx-dev)\n";
    return 1;
  }
#endif
  // glibc would mmap each large activation and unmap it after the step, paying page faults to
  // zero it again every step; keeping them on the heap saved 10-18% CPU per training step
  // (benchmarks/README.md). The process keeps its peak memory instead.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
  mallopt(M_ARENA_MAX, 2);
  try {
    if (c.nproc > 1 && !std::getenv("RANK")) {
      // Parent of a local data-parallel job: re-run this program as nproc ranks and wait.
      std::signal(SIGINT, SIG_IGN);  // the ranks get Ctrl-C themselves and checkpoint
      mobilenet::launch_local(mobilenet::LaunchOptions(c.nproc), argc, argv);
      return 0;
    }
    auto comm = mobilenet::init_distributed(mobilenet::DistributedOptions().timeout(
        mobilenet::timeout_from_seconds(c.dist_timeout_s, "--dist-timeout")));
    const int64_t world = comm->world_size();
    TORCH_CHECK(c.batch_size % world == 0, "--batch-size ", c.batch_size,
                " must be divisible by the number of processes (", world, ")");
    std::ostream silent(nullptr);
    std::ostream& log = comm->is_main() ? std::cerr : silent;
    if (!c.coco_root.empty()) {
      const fs::path root(c.coco_root);
      if (c.train_ann.empty()) c.train_ann = (root / "annotations/instances_train2017.json").string();
      if (c.train_images.empty()) c.train_images = (root / "train2017").string();
      if (c.val_ann.empty()) c.val_ann = (root / "annotations/instances_val2017.json").string();
      if (c.val_images.empty()) c.val_images = (root / "val2017").string();
    }
    TORCH_CHECK((!c.train_ann.empty() || !c.evaluate.empty()) && !c.val_ann.empty(),
                "give --coco-root, or --train-ann/--train-images/--val-ann/--val-images");
    const torch::Device device(c.device.empty() ? (torch::cuda::is_available() ? "cuda" : "cpu") : c.device);
    int threads = static_cast<int>(std::thread::hardware_concurrency());
    if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && world > 1) threads = std::atoi(omp);
    torch::set_num_threads(std::max(1, c.threads > 0 ? static_cast<int>(c.threads) : threads));
    torch::manual_seed(c.seed);
    if (!c.evaluate.empty()) return evaluate_checkpoint(app, c);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    // Data.
    const auto coco = mobilenet::CocoOptions().ignore_crowd(c.ignore_crowd);
    log << "loading " << c.train_ann << " and " << c.val_ann << "\n";
    std::vector<std::string> names;
    auto train_samples = load_split(c.train_ann, c.train_images, coco, c.max_train_images, names);
    auto val_samples = load_split(c.val_ann, c.val_images, coco, c.max_val_images, names);
    log << train_samples.size() << " training and " << val_samples.size() << " validation images, "
        << names.size() << " classes\n";
    const auto contract = make_contract(c, world, mobilenet::data_fingerprint(train_samples, names),
                                        mobilenet::data_fingerprint(val_samples, names));
    auto loader_options = mobilenet::LoaderOptions(c.batch_size / world)
                              .workers(c.workers).seed(c.seed).rank(comm->rank()).world_size(world);
    mobilenet::DataLoader train_loader(
        train_samples, make_train_transform(c),
        mobilenet::LoaderOptions(loader_options).even_shards(true)  // equal steps on every rank
            .drop_last(int64_t(train_samples.size()) > c.batch_size));
    const auto spec = mobilenet::ModelSpec().arch(c.arch).num_classes(int64_t(names.size()))
                          .width_mult(c.width_mult).output_stride(c.output_stride).image_size(c.image_size)
                          .normalize(c.normalize).eval_resize(c.eval_resize).class_names(names);
    mobilenet::DataLoader val_loader(val_samples, mobilenet::eval_transform_for(spec).max_image_pixels(c.max_image_pixels),
                                     mobilenet::LoaderOptions(loader_options).shuffle(false));

    // Model.
    TORCH_CHECK(!c.sync_bn || comm->distributed(), "--sync-bn needs a data-parallel run (--nproc > 1)");
    mobilenet::Classifier model = mobilenet::make_model(
        spec, mobilenet::init_policy(c.init), c.sync_bn ? mobilenet::sync_batch_norm_layer(comm) : nullptr);
    if (!c.weights.empty()) {
      auto report = mobilenet::load_weights(model.module(), c.weights, mobilenet::LoadOptions().strict(false));
      log << "loaded " << report.loaded << " tensors from " << c.weights << "\n" << report.describe();
    }
    model.module().to(device);
    if (c.channels_last) mobilenet::to_channels_last(model.module());
    mobilenet::Freezer freezer(model.features(), mobilenet::parse_block_range(c.freeze));
    // Before the Trainer resumes: every rank starts from rank 0's weights, then loads last.pt.
    std::unique_ptr<mobilenet::DistributedDataParallel> ddp;
    if (comm->distributed()) {
      ddp = std::make_unique<mobilenet::DistributedDataParallel>(model.ptr(), comm);
      log << "data parallel: " << world << " processes (" << comm->backend() << "), "
          << c.batch_size / world << " images per process and step\n";
    }

    auto options = mobilenet::TrainerOptions(c.out)
        .epochs(c.epochs).device(device).amp(c.amp).clip_grad_norm(c.clip_grad).channels_last(c.channels_last)
        .schedule(mobilenet::LrScheduleOptions(c.schedule, c.lr, 0).pct_start(c.pct_start))
        .warmup_epochs(c.warmup_epochs).seed(c.seed)
        .resume(c.resume).overwrite(c.overwrite).select_by(c.select_by).collectives(comm)
        .contract(contract).allow_changes({c.allow_changes.begin(), c.allow_changes.end()})
        .config(app.config_to_str(true, false)).stop_flag(&g_stop)
        .on_epoch_start([&](int64_t epoch) {
          if (c.unfreeze_epoch > 0 && epoch + 1 >= c.unfreeze_epoch && !freezer.range().empty()) {
            freezer.unfreeze();  // the optimizer already holds every parameter
            log << "epoch " << epoch + 1 << ": feature blocks " << c.freeze << " unfrozen\n";
          }
          freezer.train(model.module());
        });
    if (ddp) options.after_backward([&] { ddp->synchronize(); });
    if (c.ema_decay > 0) options.ema(mobilenet::ModelEmaOptions().decay(c.ema_decay).warmup(c.ema_warmup));
    auto optimizer = mobilenet::make_optimizer(
        model.module(), mobilenet::OptimizerOptions(c.optimizer, c.lr).weight_decay(c.weight_decay).momentum(c.momentum));
    mobilenet::Trainer trainer(model, spec, std::move(optimizer), make_loss(c), options);
    mobilenet::FitResult result;
    try {
      result = trainer.fit(train_loader, val_loader);
    } catch (const c10::Error& e) {
      // Say which files could not be read (the loader counted them).
      for (const auto* loader : {&train_loader, &val_loader}) {
        const std::string unreadable = loader->skipped_summary();
        if (!unreadable.empty()) log << (loader == &train_loader ? "training: " : "validation: ") << unreadable << "\n";
      }
      throw;
    }
    if (result.status == mobilenet::FitStatus::interrupted) return 130;
    if (result.status == mobilenet::FitStatus::non_finite) return 2;
    if (!comm->is_main()) return 0;
    const bool plotted = std::system("command -v gnuplot >/dev/null 2>&1") == 0 &&
                         std::system(("gnuplot '" + c.out + "/plots.gp' 2>/dev/null").c_str()) == 0;
    std::cout << (plotted ? "plots: " + c.out + "/{loss,f1,map,per_class_ap}.png\n"
                          : "gnuplot not found: install it and run 'gnuplot " + c.out + "/plots.gp'\n")
              << result.message << "\n";
#ifdef MOBILENET_HAVE_ONNX
    if (!c.export_onnx.empty()) {
      mobilenet::export_onnx_from_checkpoint(c.out + "/best.pt", c.export_onnx);
      std::cout << "ONNX: " << c.export_onnx << " (best.pt, its thresholds and eval transform)\n";
    }
#endif
  } catch (const c10::Error& e) {
    std::cerr << "coco_train: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "coco_train: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
