#pragma once
/// \file data/presets.hpp
/// The usual transforms, by name. The plain names are the multi-label defaults (the whole
/// image resized, so no labelled object is cut away); the ImageNet single-label recipes carry
/// the `imagenet_` prefix. All normalise with ImageNet's mean and std when `normalize`.
///
/// Example:
/// ```
/// auto train = mobilenet::train_transform(224).randaugment(mobilenet::RandAugmentOptions(2, 9));
/// auto val = mobilenet::eval_transform_for(spec);  // what the checkpoint was trained for
/// ```

#include <mobilenet/data/transform.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace mobilenet {

namespace detail {

// The presets' last step: ImageNet's mean and std when `normalize`, else [0, 1] values.
inline Transform imagenet_normalized(Transform t, bool normalize) {
  if (normalize) t.normalize(kImageNetMean, kImageNetStd);
  return t;
}

}  // namespace detail

/// The multi-label training transform: the whole image resized to image_size x image_size,
/// flip with p = 0.5, ImageNet normalisation when `normalize` (else [0, 1] values). Add
/// `.cutout(...)` / `.randaugment(...)` for the ASL recipe.
inline Transform train_transform(int64_t image_size, bool normalize = true) {
  return detail::imagenet_normalized(
      Transform().resize(image_size, image_size).horizontal_flip(0.5), normalize);
}

/// The multi-label evaluation transform: the whole image resized to image_size x
/// image_size, ImageNet normalisation when `normalize`.
inline Transform eval_transform(int64_t image_size, bool normalize = true) {
  return detail::imagenet_normalized(Transform().resize(image_size, image_size), normalize);
}

/// The ImageNet training transform: RandomResizedCrop(image_size) drawn from `rrc`, flip with
/// p = 0.5, ImageNet normalisation when `normalize`.
inline Transform imagenet_train_transform(int64_t image_size, bool normalize = true,
                                          RandomResizedCropOptions rrc = {}) {
  return detail::imagenet_normalized(
      Transform().random_resized_crop(image_size, rrc).horizontal_flip(0.5), normalize);
}

/// The ImageNet evaluation transform: shorter side to image_size * 256 / 224 (256 for 224),
/// center crop image_size, ImageNet normalisation when `normalize`.
inline Transform imagenet_eval_transform(int64_t image_size, bool normalize = true) {
  return detail::imagenet_normalized(
      Transform().resize(int64_t(double(image_size) * 256.0 / 224.0)).center_crop(image_size),
      normalize);
}

/// The geometry of an evaluation transform, recorded by name in checkpoints so that
/// prediction rebuilds what the model was trained for.
enum class EvalCrop {
  squish,  ///< "squish": the whole image resized to size x size (eval_transform)
  center,  ///< "center": shorter side to size * 256 / 224, central crop (imagenet_eval_transform)
};

/// "squish" or "center".
inline const char* to_string(EvalCrop crop) {
  return crop == EvalCrop::squish ? "squish" : "center";
}

/// Inverse of to_string(EvalCrop); throws c10::Error naming the value otherwise.
inline EvalCrop parse_eval_crop(const std::string& name) {
  if (name == "squish") return EvalCrop::squish;
  TORCH_CHECK(name == "center", "eval crop must be 'squish' or 'center', got '", name, "'");
  return EvalCrop::center;
}

/// The evaluation transform for `crop`: eval_transform or imagenet_eval_transform.
inline Transform eval_transform(int64_t image_size, EvalCrop crop, bool normalize = true) {
  return crop == EvalCrop::squish ? eval_transform(image_size, normalize)
                                  : imagenet_eval_transform(image_size, normalize);
}

/// The geometry of a training transform.
enum class TrainCrop {
  squish,          ///< "squish": the whole image resized to size x size (train_transform)
  random_resized,  ///< "rrc": torchvision's RandomResizedCrop (imagenet_train_transform)
};

/// "squish" or "rrc".
inline const char* to_string(TrainCrop crop) {
  return crop == TrainCrop::squish ? "squish" : "rrc";
}

/// Inverse of to_string(TrainCrop); throws c10::Error naming the value otherwise.
inline TrainCrop parse_train_crop(const std::string& name) {
  if (name == "squish") return TrainCrop::squish;
  TORCH_CHECK(name == "rrc", "train crop must be 'squish' or 'rrc', got '", name, "'");
  return TrainCrop::random_resized;
}

/// The training transform for `crop`: train_transform, or imagenet_train_transform drawing
/// from `rrc`.
/// Example: `train_transform(224, parse_train_crop(flag)).randaugment(RandAugmentOptions(2, 9))`.
inline Transform train_transform(int64_t image_size, TrainCrop crop, bool normalize = true,
                                 RandomResizedCropOptions rrc = {}) {
  return crop == TrainCrop::squish ? train_transform(image_size, normalize)
                                   : imagenet_train_transform(image_size, normalize, rrc);
}

/// The evaluation transform a model was trained for, from its spec (a ModelSpec, as
/// read_model_spec returns it: image_size(), eval_resize() naming an EvalCrop, normalize()).
/// A template so that data/ needs nothing from models/.
template <typename Spec>
Transform eval_transform_for(const Spec& spec) {
  return eval_transform(spec.image_size(), parse_eval_crop(spec.eval_resize()), spec.normalize());
}

}  // namespace mobilenet
