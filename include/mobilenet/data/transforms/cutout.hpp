#pragma once
/// \file data/transforms/cutout.hpp
/// Cutout on uint8 HWC RGB images: rectangles painted over the output-sized image, inside
/// `Transform` after the resampling and before RandAugment (Transform::cutout). Random
/// draws come from the caller's generator (e.g. SampleRng), as in randaugment.hpp.
/// Example: `train_transform(224).cutout(CutoutOptions().size(0.5))`.

#include <mobilenet/data/detail/check_image.hpp>
#include <mobilenet/data/transforms/normalize.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace mobilenet {

/// What Cutout paints into its rectangles.
enum class CutoutFill {
  random_color,  ///< one uniformly random colour per rectangle (Alibaba-MIIL/ASL's CutoutPIL)
  mean,          ///< kImageNetMeanRgb, zero after ImageNet normalisation
  noise,         ///< an independent uniform random level per pixel and channel
};

/// Cutout: `count` rectangles of round(size * height) x round(size * width) pixels, each
/// centred on a uniformly random pixel and clipped at the image border (so a rectangle
/// near the border is smaller), applied to a sample with probability p.
/// Example: `CutoutOptions().size(0.5).fill(CutoutFill::mean)` (ASL: size 0.5, random colour).
struct CutoutOptions {
  /// Rectangle side as a fraction of the image side, in (0, 1]. Default 0.5.
  TORCH_ARG(double, size) = 0.5;
  /// Rectangles per image, >= 1. Default 1.
  TORCH_ARG(int64_t, count) = 1;
  /// Probability that a sample gets its rectangles, in [0, 1]. Default 1.
  TORCH_ARG(double, p) = 1.0;
  /// Fill of the rectangles. Default CutoutFill::random_color.
  TORCH_ARG(CutoutFill, fill) = CutoutFill::random_color;
};

/// "random_color", "mean" or "noise".
inline const char* to_string(CutoutFill f) {
  switch (f) {
    case CutoutFill::random_color: return "random_color";
    case CutoutFill::mean: return "mean";
    case CutoutFill::noise: return "noise";
  }
  return "?";
}

/// Inverse of to_string(CutoutFill); throws c10::Error naming the value otherwise.
inline CutoutFill parse_cutout_fill(const std::string& name) {
  if (name == "random_color") return CutoutFill::random_color;
  if (name == "mean") return CutoutFill::mean;
  TORCH_CHECK(name == "noise", "cutout fill must be 'random_color', 'mean' or 'noise', got '",
              name, "'");
  return CutoutFill::noise;
}

/// Throws c10::Error naming the option and its value when `o` is out of range.
inline void check_cutout_options(const CutoutOptions& o) {
  TORCH_CHECK(o.size() > 0 && o.size() <= 1, "cutout: size must be in (0, 1], got ", o.size());
  TORCH_CHECK(o.count() >= 1, "cutout: count must be >= 1, got ", o.count());
  TORCH_CHECK(o.p() >= 0 && o.p() <= 1, "cutout: p must be in [0, 1], got ", o.p());
}

namespace detail {

template <class Rng>
void cutout_u8(uint8_t* img, int64_t h, int64_t w, const CutoutOptions& o, Rng& rng) {
  if (!(rng.uniform(0, 1) < o.p())) return;
  // Rounded like ASL's int(size * side + 0.5).
  const int64_t ch = std::max<int64_t>(1, int64_t(std::floor(o.size() * double(h) + 0.5)));
  const int64_t cw = std::max<int64_t>(1, int64_t(std::floor(o.size() * double(w) + 0.5)));
  for (int64_t r = 0; r < o.count(); ++r) {
    const int64_t yc = rng.randint(0, h), xc = rng.randint(0, w);
    const int64_t y0 = std::max<int64_t>(0, yc - ch / 2), y1 = std::min(h, yc - ch / 2 + ch);
    const int64_t x0 = std::max<int64_t>(0, xc - cw / 2), x1 = std::min(w, xc - cw / 2 + cw);
    Rgb color = kImageNetMeanRgb;
    if (o.fill() == CutoutFill::random_color)
      for (auto& v : color) v = uint8_t(rng.randint(0, 256));
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t x = x0; x < x1; ++x) {
        uint8_t* p = img + (y * w + x) * 3;
        if (o.fill() == CutoutFill::noise) {
          const uint64_t bits = rng.next();  // three levels from one draw
          p[0] = uint8_t(bits);
          p[1] = uint8_t(bits >> 8);
          p[2] = uint8_t(bits >> 16);
        } else {
          p[0] = color[0];
          p[1] = color[1];
          p[2] = color[2];
        }
      }
  }
}

}  // namespace detail

/// Cutout on a copy of a uint8 HxWx3 image, drawing from `rng` (e.g. SampleRng).
template <class Rng>
torch::Tensor cutout(const torch::Tensor& image, const CutoutOptions& options, Rng& rng) {
  detail::check_image_u8(image, "cutout");
  check_cutout_options(options);
  torch::Tensor out = image.contiguous().clone();
  detail::cutout_u8(out.data_ptr<uint8_t>(), out.size(0), out.size(1), options, rng);
  return out;
}

}  // namespace mobilenet
