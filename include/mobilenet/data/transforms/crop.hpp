#pragma once
/// \file data/transforms/crop.hpp
/// Crops: torchvision's RandomResizedCrop sampling and the centre crop's offset.

#include <mobilenet/data/random.hpp>

#include <torch/arg.h>

#include <cmath>
#include <cstdint>

namespace mobilenet {

/// RandomResizedCrop's sampling ranges (torchvision's defaults).
struct RandomResizedCropOptions {
  /// Range of the crop's area as a fraction of the image. Default (0.08, 1).
  TORCH_ARG(double, scale_min) = 0.08;
  TORCH_ARG(double, scale_max) = 1.0;
  /// Range of the crop's aspect ratio w / h. Default (3/4, 4/3).
  TORCH_ARG(double, ratio_min) = 3.0 / 4.0;
  TORCH_ARG(double, ratio_max) = 4.0 / 3.0;
};

namespace detail {

// torchvision.transforms.RandomResizedCrop.get_params, with our generator.
inline void random_resized_crop_params(int64_t height, int64_t width,
                                       const RandomResizedCropOptions& o, SampleRng& rng,
                                       int64_t& i, int64_t& j, int64_t& h, int64_t& w) {
  const double area = double(height) * double(width);
  const double log_r0 = std::log(o.ratio_min()), log_r1 = std::log(o.ratio_max());
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(o.scale_min(), o.scale_max());
    const double aspect = std::exp(rng.uniform(log_r0, log_r1));
    // std::nearbyint rounds half to even, like Python's round().
    w = int64_t(std::nearbyint(std::sqrt(target_area * aspect)));
    h = int64_t(std::nearbyint(std::sqrt(target_area / aspect)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      i = rng.randint(0, height - h + 1);
      j = rng.randint(0, width - w + 1);
      return;
    }
  }
  // Fallback: the largest central crop within the ratio range.
  const double in_ratio = double(width) / double(height);
  if (in_ratio < o.ratio_min()) {
    w = width;
    h = int64_t(std::nearbyint(double(w) / o.ratio_min()));
  } else if (in_ratio > o.ratio_max()) {
    h = height;
    w = int64_t(std::nearbyint(double(h) * o.ratio_max()));
  } else {
    w = width;
    h = height;
  }
  i = (height - h) / 2;
  j = (width - w) / 2;
}

// torchvision's CenterCrop offset: int(round((size - crop) / 2)), half to even. A crop larger
// than the image gives a negative offset (it reads outside the image).
inline int64_t center_crop_offset(int64_t size, int64_t crop) {
  return int64_t(std::nearbyint(double(size - crop) / 2.0));
}

}  // namespace detail

}  // namespace mobilenet
