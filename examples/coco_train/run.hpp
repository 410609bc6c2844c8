// The run's pieces built from a Config: data, transforms, model, loss, and --evaluate.
#pragma once

#include "config.hpp"

#include <mobilenet/data.hpp>
#include <mobilenet/distributed.hpp>
#include <mobilenet/inference.hpp>
#include <mobilenet/io/allocator.hpp>
#include <mobilenet/mobilenet.hpp>

#include <CLI/CLI.hpp>


#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace coco_train {

/// --coco-root fills the four data paths the user did not give; at least one source is needed.
inline void resolve_data_paths(Config& c) {
  if (!c.coco_root.empty()) {
    const std::filesystem::path root(c.coco_root);
    if (c.train_ann.empty()) c.train_ann = (root / "annotations/instances_train2017.json").string();
    if (c.train_images.empty()) c.train_images = (root / "train2017").string();
    if (c.val_ann.empty()) c.val_ann = (root / "annotations/instances_val2017.json").string();
    if (c.val_images.empty()) c.val_images = (root / "val2017").string();
  }
  TORCH_CHECK((!c.train_ann.empty() || !c.evaluate.empty()) && !c.val_ann.empty(),
              "give --coco-root, or --train-ann/--train-images/--val-ann/--val-images");
}

/// The loss --loss names, through the library's one factory (nn/losses.hpp's make_loss).
inline mobilenet::LossFunction make_loss(const Config& c) {
  using namespace mobilenet;
  LossOptions options(c.loss);
  options.focal().alpha(c.focal_alpha).gamma(c.focal_gamma);
  options.asl().gamma_neg(c.asl_gamma_neg).gamma_pos(c.asl_gamma_pos).clip(c.asl_clip);
  auto loss = std::make_shared<torch::nn::AnyModule>(mobilenet::make_loss(options));
  return [loss](const torch::Tensor& x, const torch::Tensor& y) { return loss->forward(x, y); };
}

inline mobilenet::Transform make_train_transform(const Config& c) {
  auto t = mobilenet::train_transform(c.image_size, mobilenet::parse_train_crop(c.train_crop), c.normalize,
                                      mobilenet::RandomResizedCropOptions().scale_min(c.min_crop_scale));
  if (c.cutout > 0) t.cutout(mobilenet::CutoutOptions().size(c.cutout).fill(mobilenet::CutoutFill::random_color));
  if (c.randaugment_n > 0) t.randaugment(mobilenet::RandAugmentOptions(c.randaugment_n, c.randaugment_m));
  t.max_image_pixels(c.max_image_pixels);
  return t;
}

/// One split's samples (the first `max`, 0: all); `names` is set by the first split and must
/// match for the next.
inline std::vector<mobilenet::Sample> load_split(const std::string& ann, const std::string& images,
                                                 const mobilenet::CocoOptions& o, int64_t max,
                                                 std::vector<std::string>& names) {
  const auto ds = mobilenet::load_coco(ann, o);
  if (names.empty()) names = ds.class_names();
  TORCH_CHECK(names == ds.class_names(), "'", ann, "' defines other categories than the training set");
  auto samples = ds.samples(images);
  if (max > 0 && int64_t(samples.size()) > max) samples.resize(size_t(max));
  return samples;
}

/// Both splits, with the training set's class names.
struct Splits {
  std::vector<mobilenet::Sample> train, val;
  std::vector<std::string> names;
};

inline Splits load_splits(const Config& c, std::ostream& log) {
  const auto coco = mobilenet::CocoOptions().ignore_crowd(c.ignore_crowd);
  log << "loading " << c.train_ann << " and " << c.val_ann << "\n";
  Splits s;
  s.train = load_split(c.train_ann, c.train_images, coco, c.max_train_images, s.names);
  s.val = load_split(c.val_ann, c.val_images, coco, c.max_val_images, s.names);
  log << s.train.size() << " training and " << s.val.size() << " validation images, " << s.names.size()
      << " classes\n";
  return s;
}

/// The model on `device`, from --init or --weights. On --resume last.pt replaces the weights
/// anyway (and the contract checks that --weights did not change), so they are not read.
inline mobilenet::Classifier build_model(const Config& c, const mobilenet::ModelSpec& spec,
                                         const std::shared_ptr<mobilenet::Communicator>& comm,
                                         const torch::Device& device, std::ostream& log) {
  TORCH_CHECK(!c.sync_bn || comm->distributed(), "--sync-bn needs a data-parallel run (--nproc > 1)");
  mobilenet::Classifier model = mobilenet::make_model(
      spec, mobilenet::init_policy(c.init), c.sync_bn ? mobilenet::sync_batch_norm_layer(comm) : nullptr);
  if (!c.weights.empty() && !c.resume) {
    auto report = mobilenet::load_weights(model.module(), c.weights, mobilenet::LoadOptions().strict(false));
    log << "loaded " << report.loaded << " tensors from " << c.weights << "\n" << report.describe();
  }
  model.module().to(device);
  if (c.channels_last) mobilenet::to_channels_last(model.module());
  return model;
}

/// --threads, or all cores; a local data-parallel rank gets its share (OMP_NUM_THREADS).
inline void set_threads(const Config& c, int64_t world) {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && world > 1) threads = std::atoi(omp);
  torch::set_num_threads(std::max(1, c.threads > 0 ? static_cast<int>(c.threads) : threads));
}

/// --evaluate: the checkpoint's model on the validation set, metrics on stdout.
inline int evaluate_checkpoint(const CLI::App& app, const Config& c) {
  auto spec = mobilenet::read_model_spec(c.evaluate);
  if (app.get_option("--eval-resize")->count()) spec.eval_resize(c.eval_resize);
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

}  // namespace coco_train
