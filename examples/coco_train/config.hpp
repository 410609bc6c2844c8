// coco_train's settings, one field per flag. Defaults, help and whether a field changes the
// trained result live in flags.hpp's table, the only place that names a flag.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace coco_train {

struct Config {
  // Data.
  std::string coco_root, train_ann, train_images, val_ann, val_images;
  int64_t max_train_images{}, max_val_images{}, max_image_pixels{};
  bool ignore_crowd{};
  // Model.
  std::string arch, init, weights;
  int64_t output_stride{};
  double width_mult{};
  // Loss.
  std::string loss;
  double focal_alpha{}, focal_gamma{}, asl_gamma_neg{}, asl_gamma_pos{}, asl_clip{};
  // Optimizer and schedule.
  std::string optimizer, schedule;
  double lr{}, weight_decay{}, momentum{}, warmup_epochs{}, pct_start{}, clip_grad{};
  int64_t epochs{}, batch_size{};
  // Transforms and augmentation.
  int64_t image_size{}, randaugment_n{}, randaugment_m{};
  std::string train_crop, eval_resize;
  double min_crop_scale{}, cutout{};
  bool normalize{};
  // Recipe, EMA, precision, freezing, seed.
  std::string recipe, freeze;
  double ema_decay{}, ema_warmup{};
  bool amp{}, channels_last{}, sync_bn{};
  int64_t unfreeze_epoch{};
  uint64_t seed{};
  std::string select_by;
  // Run folder, resume, processes; none of these changes what is trained.
  std::string out, evaluate, device, export_onnx;
  bool resume{}, overwrite{}, list_flags{};
  std::vector<std::string> allow_changes;
  int64_t threads{}, workers{}, nproc{};
  double dist_timeout_s{};
};

}  // namespace coco_train
