// Trains the seed model (dilated MobileNetV2) as a multi-label classifier on COCO or any
// COCO-format data set: flags (flags.hpp) plus wiring around mobilenet::Trainer, which owns
// the loop, evaluation, checkpoints, resume and metrics.csv.
#include "contract.hpp"
#include "flags.hpp"
#include "plots.hpp"
#include "recipe.hpp"
#include "run.hpp"

#include <mobilenet/distributed.hpp>
#include <mobilenet/train/trainer.hpp>
#ifdef MOBILENET_HAVE_ONNX
#include <mobilenet/export/onnx.hpp>  // --export-onnx
#endif

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>

namespace {

// Set by SIGINT/SIGTERM: the Trainer finishes the step, checkpoints and returns. A second
// signal exits at once (the user insists; last.pt still holds the previous epoch).
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) {
  if (g_stop.exchange(true)) _exit(130);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace coco_train;
  Config c;
  CLI::App app{"Train a MobileNet multi-label classifier on COCO-format data"};
  add_flags(app, c);
  CLI11_PARSE(app, argc, argv);
  if (c.list_flags) {
    list_flags(std::cout);
    return 0;
  }
  apply_recipe(app, c);
#ifndef MOBILENET_HAVE_ONNX
  if (!c.export_onnx.empty()) {  // refused before training, not after it
    std::cerr << "coco_train: --export-onnx: built without the onnx component (install libonnx-dev)\n";
    return 1;
  }
#endif
  mobilenet::keep_activations_on_heap();  // io/allocator.hpp: no page faults per step
  try {
    check_allowed_changes(c);
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
    resolve_data_paths(c);
    const torch::Device device(c.device.empty() ? (torch::cuda::is_available() ? "cuda" : "cpu") : c.device);
    set_threads(c, world);
    torch::manual_seed(c.seed);
    if (!c.evaluate.empty()) return evaluate_checkpoint(app, c);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    const Splits data = load_splits(c, log);
    const auto contract = make_contract(c, world, mobilenet::data_fingerprint(data.train, data.names),
                                        mobilenet::data_fingerprint(data.val, data.names));
    auto loader_options = mobilenet::LoaderOptions(c.batch_size / world)
                              .workers(c.workers).seed(c.seed).rank(comm->rank()).world_size(world);
    mobilenet::DataLoader train_loader(
        data.train, make_train_transform(c),
        mobilenet::LoaderOptions(loader_options).even_shards(true)  // equal steps on every rank
            .drop_last(int64_t(data.train.size()) > c.batch_size));
    const auto spec = mobilenet::ModelSpec().arch(c.arch).num_classes(int64_t(data.names.size()))
                          .width_mult(c.width_mult).output_stride(c.output_stride).image_size(c.image_size)
                          .normalize(c.normalize).eval_resize(c.eval_resize).class_names(data.names);
    mobilenet::DataLoader val_loader(data.val, mobilenet::eval_transform_for(spec).max_image_pixels(c.max_image_pixels),
                                     mobilenet::LoaderOptions(loader_options).shuffle(false));

    mobilenet::Classifier model = build_model(c, spec, comm, device, log);
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
        .resume(c.resume).overwrite(c.overwrite).select_by(mobilenet::parse_select_by(c.select_by)).collectives(comm)
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
    std::cout << render_plots(c.out).message << "\n" << result.message << "\n";
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
