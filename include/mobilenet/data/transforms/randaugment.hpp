#pragma once
/// \file data/transforms/randaugment.hpp
/// RandAugment on uint8 HWC RGB images (Cutout is in cutout.hpp).
///
/// It runs inside `Transform` after the resampling and Cutout and before flip, jitter and
/// normalisation (Transform::randaugment), on the output-sized uint8 image, so each op is a
/// single pass over size x size pixels.
///
/// Every op follows torchvision.transforms.functional on uint8 tensors (the same float32
/// arithmetic, truncation and rounding), so a Python reference gets the same pixels; the
/// suite tests/test_transforms.cpp compares each op with torchvision.
///
/// Random draws come from the caller's generator (any type with `uniform(lo, hi)`,
/// `randint(lo, hi)` and `next()`, e.g. SampleRng), so a sample's augmentation depends only
/// on its (seed, epoch, index).
///
/// Example:
/// ```
/// auto t = mobilenet::train_transform(224)
///              .cutout(mobilenet::CutoutOptions().size(0.5))
///              .randaugment(mobilenet::RandAugmentOptions(2, 9));
/// ```

#include <mobilenet/data/detail/check_image.hpp>
#include <mobilenet/data/transforms/normalize.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace mobilenet {


/// The RandAugment operations, in torchvision's order.
enum class AugmentOp {
  identity,
  shear_x,
  shear_y,
  translate_x,
  translate_y,
  rotate,
  brightness,
  color,
  contrast,
  sharpness,
  posterize,
  solarize,
  autocontrast,
  equalize,
};

/// The fourteen ops of torchvision's RandAugment.
inline std::vector<AugmentOp> all_augment_ops() {
  return {AugmentOp::identity,   AugmentOp::shear_x,     AugmentOp::shear_y,
          AugmentOp::translate_x, AugmentOp::translate_y, AugmentOp::rotate,
          AugmentOp::brightness, AugmentOp::color,       AugmentOp::contrast,
          AugmentOp::sharpness,  AugmentOp::posterize,   AugmentOp::solarize,
          AugmentOp::autocontrast, AugmentOp::equalize};
}

/// The op's name: "identity", "shear_x", ..., "equalize".
inline const char* to_string(AugmentOp op) {
  switch (op) {
    case AugmentOp::identity: return "identity";
    case AugmentOp::shear_x: return "shear_x";
    case AugmentOp::shear_y: return "shear_y";
    case AugmentOp::translate_x: return "translate_x";
    case AugmentOp::translate_y: return "translate_y";
    case AugmentOp::rotate: return "rotate";
    case AugmentOp::brightness: return "brightness";
    case AugmentOp::color: return "color";
    case AugmentOp::contrast: return "contrast";
    case AugmentOp::sharpness: return "sharpness";
    case AugmentOp::posterize: return "posterize";
    case AugmentOp::solarize: return "solarize";
    case AugmentOp::autocontrast: return "autocontrast";
    case AugmentOp::equalize: return "equalize";
  }
  return "?";
}

/// Inverse of to_string(AugmentOp); throws c10::Error naming the value otherwise.
inline AugmentOp parse_augment_op(const std::string& name) {
  for (AugmentOp op : all_augment_ops())
    if (name == to_string(op)) return op;
  TORCH_CHECK(false, "unknown RandAugment op '", name,
              "' (expected identity, shear_x, shear_y, translate_x, translate_y, rotate, "
              "brightness, color, contrast, sharpness, posterize, solarize, autocontrast or "
              "equalize)");
  return AugmentOp::identity;
}

/// How geometric ops sample the source image.
enum class AugmentInterpolation { nearest, bilinear };

/// The largest RandAugment magnitude level: levels are 0..kRandAugmentMaxMagnitude, the
/// scale of torchvision's RandAugment (num_magnitude_bins = 31).
constexpr int64_t kRandAugmentMaxMagnitude = 30;

/// RandAugment (Cubuk et al. 2019) as torchvision's `RandAugment(num_ops, magnitude)`:
/// `num_ops` ops drawn uniformly (with repetition) from `ops`, each at magnitude level
/// `magnitude` on the 0..30 scale, with a random sign for the signed ops. Geometric ops keep
/// the image size and never crop: pixels that come from outside the image get `fill`.
/// Example: `RandAugmentOptions(2, 9).interpolation(AugmentInterpolation::bilinear)`.
struct RandAugmentOptions {
  explicit RandAugmentOptions(int64_t num_ops = 2, int64_t magnitude = 9)
      : num_ops_(num_ops), magnitude_(magnitude) {}
  /// Ops per sample (N), >= 0. Default 2.
  TORCH_ARG(int64_t, num_ops);
  /// Magnitude level (M) in [0, 30]; see randaugment_magnitude. Default 9.
  TORCH_ARG(int64_t, magnitude);
  /// Probability that a sample is augmented at all, in [0, 1]. Default 1.
  TORCH_ARG(double, p) = 1.0;
  /// Sampling of rotate, shear and translate. Default nearest (torchvision's).
  TORCH_ARG(AugmentInterpolation, interpolation) = AugmentInterpolation::nearest;
  /// Colour of pixels that geometric ops bring in from outside the image. Default black
  /// (torchvision's fill=None); kImageNetMeanRgb makes them zero after normalisation.
  /// Bilinear edge pixels get sample + (1 - coverage) * fill (torchvision's tensor path
  /// scales the sample by the coverage once more there, darkening a one-pixel band).
  TORCH_ARG(Rgb, fill) = Rgb{0, 0, 0};
  /// The ops to draw from, non-empty. Default all_augment_ops().
  TORCH_ARG(std::vector<AugmentOp>, ops) = all_augment_ops();
};

/// Throws c10::Error naming the option and its value when `o` is out of range.
inline void check_randaugment_options(const RandAugmentOptions& o) {
  TORCH_CHECK(o.num_ops() >= 0, "randaugment: num_ops (N) must be >= 0, got ", o.num_ops());
  TORCH_CHECK(o.magnitude() >= 0 && o.magnitude() <= kRandAugmentMaxMagnitude,
              "randaugment: magnitude (M) must be in [0, ", kRandAugmentMaxMagnitude, "], got ",
              o.magnitude());
  TORCH_CHECK(o.p() >= 0 && o.p() <= 1, "randaugment: p must be in [0, 1], got ", o.p());
  TORCH_CHECK(!o.ops().empty(), "randaugment: ops must not be empty");
}

/// Whether RandAugment negates the op's magnitude half of the time.
inline bool augment_op_signed(AugmentOp op) {
  switch (op) {
    case AugmentOp::shear_x:
    case AugmentOp::shear_y:
    case AugmentOp::translate_x:
    case AugmentOp::translate_y:
    case AugmentOp::rotate:
    case AugmentOp::brightness:
    case AugmentOp::color:
    case AugmentOp::contrast:
    case AugmentOp::sharpness:
      return true;
    default:
      return false;
  }
}

/// The unsigned magnitude of `op` at level 0..30 for a height x width image, in the op's
/// own unit (torchvision's table): shear factor 0..0.3; translation 0..150/331 of the side,
/// in pixels; rotation 0..30 degrees; enhancement 0..0.9 (factor 1 +- that); posterize
/// 8..4 bits; solarize threshold 255..0; 0 for identity, autocontrast and equalize.
inline double randaugment_magnitude(AugmentOp op, int64_t level, int64_t height, int64_t width) {
  TORCH_CHECK(level >= 0 && level <= kRandAugmentMaxMagnitude,
              "randaugment: magnitude (M) must be in [0, ", kRandAugmentMaxMagnitude, "], got ",
              level);
  const double t = double(level) / double(kRandAugmentMaxMagnitude);
  switch (op) {
    case AugmentOp::shear_x:
    case AugmentOp::shear_y: return 0.3 * t;
    case AugmentOp::translate_x: return 150.0 / 331.0 * double(width) * t;
    case AugmentOp::translate_y: return 150.0 / 331.0 * double(height) * t;
    case AugmentOp::rotate: return 30.0 * t;
    case AugmentOp::brightness:
    case AugmentOp::color:
    case AugmentOp::contrast:
    case AugmentOp::sharpness: return 0.9 * t;
    case AugmentOp::posterize: return 8.0 - std::nearbyint(4.0 * t);
    case AugmentOp::solarize: return 255.0 * (1.0 - t);
    default: return 0.0;
  }
}

namespace detail {

// torchvision's _blend on uint8: float32 ratio * a + (1 - ratio) * b, clamped, truncated.
struct Blend {
  float r, s;
  explicit Blend(double ratio) : r(float(ratio)), s(float(1.0 - ratio)) {}
  uint8_t operator()(float a, float b) const {
    const float v = r * a + s * b;
    return uint8_t(v <= 0.f ? 0.f : (v >= 255.f ? 255.f : v));
  }
};

// torchvision's rgb_to_grayscale on uint8 (float32 weights, truncated).
inline uint8_t gray_u8(const uint8_t* p) {
  return uint8_t(0.2989f * float(p[0]) + 0.587f * float(p[1]) + 0.114f * float(p[2]));
}

// Ops that map each level on its own go through a 256-entry table per channel: the table
// is computed with the op's own formula, so results are unchanged and the pass is cheap.
using Lut = std::array<std::array<uint8_t, 256>, 3>;

inline void apply_lut_u8(uint8_t* img, int64_t n, const Lut& lut) {
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* p = img + i * 3;
    p[0] = lut[0][p[0]];
    p[1] = lut[1][p[1]];
    p[2] = lut[2][p[2]];
  }
}

template <class F>
Lut make_lut(F f) {
  Lut lut;
  for (int v = 0; v < 256; ++v) lut[0][size_t(v)] = lut[1][size_t(v)] = lut[2][size_t(v)] = f(v);
  return lut;
}

inline void brightness_u8(uint8_t* img, int64_t n, double factor) {
  const Blend blend(factor);
  apply_lut_u8(img, n, make_lut([&](int v) { return blend(float(v), 0.f); }));
}

// "Color" is saturation: blend with the (truncated) grey image.
inline void color_u8(uint8_t* img, int64_t n, double factor) {
  const Blend blend(factor);
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* p = img + i * 3;
    const float g = float(gray_u8(p));
    for (int c = 0; c < 3; ++c) p[c] = blend(float(p[c]), g);
  }
}

// Blend with the mean of the (truncated) grey image.
inline void contrast_u8(uint8_t* img, int64_t n, double factor) {
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) total += gray_u8(img + i * 3);
  const float mean = float(double(total) / double(n));
  const Blend blend(factor);
  apply_lut_u8(img, n, make_lut([&](int v) { return blend(float(v), mean); }));
}

// Blend with a 3x3 smoothing ([1 1 1; 1 5 1; 1 1 1] / 13, rounded) of the interior; the
// border pixels blend with themselves, like PIL and torchvision.
inline void sharpness_u8(uint8_t* img, int64_t h, int64_t w, double factor) {
  if (h <= 2 || w <= 2) return;
  thread_local std::vector<uint8_t> smooth;
  smooth.assign(img, img + h * w * 3);
  for (int64_t y = 1; y + 1 < h; ++y)
    for (int64_t x = 1; x + 1 < w; ++x)
      for (int c = 0; c < 3; ++c) {
        int k = 4 * img[(y * w + x) * 3 + c];  // centre weight 5 = 1 + 4
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) k += img[((y + dy) * w + x + dx) * 3 + c];
        smooth[size_t((y * w + x) * 3 + c)] = uint8_t((2 * k + 13) / 26);  // round(k / 13)
      }
  const Blend blend(factor);
  for (int64_t i = 0; i < h * w * 3; ++i) img[i] = blend(float(img[i]), float(smooth[size_t(i)]));
}

inline void posterize_u8(uint8_t* img, int64_t n, int bits) {
  const uint8_t mask = uint8_t(0xFF << (8 - bits));
  for (int64_t i = 0; i < n * 3; ++i) img[i] &= mask;
}

inline void solarize_u8(uint8_t* img, int64_t n, double threshold) {
  apply_lut_u8(img, n, make_lut([&](int v) {
                 return uint8_t(double(v) >= threshold ? 255 - v : v);
               }));
}

// Per channel, stretch [min, max] to [0, 255] (float32 scale, truncated).
inline void autocontrast_u8(uint8_t* img, int64_t n) {
  Lut lut;
  for (int c = 0; c < 3; ++c) {
    uint8_t lo = 255, hi = 0;
    for (int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, img[i * 3 + c]);
      hi = std::max(hi, img[i * 3 + c]);
    }
    // torch evaluates 255 / (max - min) as reciprocal(max - min) * 255.
    float minimum = float(lo), scale = (1.f / (float(hi) - float(lo))) * 255.f;
    if (hi == lo) {  // flat channel: unchanged
      minimum = 0.f;
      scale = 1.f;
    }
    for (int v = 0; v < 256; ++v) {
      const float x = (float(v) - minimum) * scale;
      lut[size_t(c)][size_t(v)] = uint8_t(x <= 0.f ? 0.f : (x >= 255.f ? 255.f : x));
    }
  }
  apply_lut_u8(img, n, lut);
}

// Per-channel histogram equalisation with PIL's integer recipe: step = (pixels not in the
// highest occupied bin) / 255, lut[v] = (cdf[v - 1] + step / 2) / step.
inline void equalize_u8(uint8_t* img, int64_t n) {
  int64_t hist[3][256] = {};
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) ++hist[c][img[i * 3 + c]];
  Lut lut;
  for (int c = 0; c < 3; ++c) {
    int last = 255;
    while (hist[c][last] == 0) --last;
    const int64_t step = (n - hist[c][last]) / 255;
    int64_t cdf = 0;
    for (int v = 0; v < 256; ++v) {
      lut[size_t(c)][size_t(v)] =
          step == 0 ? uint8_t(v) : uint8_t(std::min<int64_t>(255, (cdf + step / 2) / step));
      cdf += hist[c][v];
    }
  }
  apply_lut_u8(img, n, lut);
}

// An affine map from output to input pixels, in coordinates relative to the image centre
// (x right, y down): in = [m0 m1; m3 m4] out + (m2, m5). `angle` rotates the image
// clockwise, the shears are angles in degrees, (cx, cy) is the fixed point. This is the
// inverse of torchvision's affine (rotation after shear).
inline std::array<double, 6> inverse_affine(double angle, double tx, double ty, double shear_x,
                                            double shear_y, double cx, double cy) {
  constexpr double kRad = 3.14159265358979323846 / 180.0;
  const double rot = angle * kRad, sx = shear_x * kRad, sy = shear_y * kRad;
  // Forward linear part R(rot) * Shear(sx, sy), determinant 1.
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  const double det = a * d - b * c;
  std::array<double, 6> m = {d / det, -b / det, 0.0, -c / det, a / det, 0.0};
  // out = A (in - C) + C + T  =>  in = A^-1 (out - C - T) + C
  m[2] = m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx;
  m[5] = m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy;
  return m;
}

// round(v) with ties to even (torch's nearest), for v > -0.5 - 1e-9 only.
inline int64_t round_half_even(double v) {
  int64_t r = int64_t(v + 0.5);  // v + 0.5 >= 0: truncation is floor
  if (double(r) - v == 0.5 && (r & 1)) --r;
  return r;
}

// Resamples `src` through the inverse map `m` into `dst` (same size), as torch's
// grid_sample with align_corners=False: pixel centres at +0.5, nearest rounds half to
// even, bilinear blends the in-image corners and gives the rest of the weight to `fill`.
inline void warp_affine_u8(const uint8_t* src, int64_t h, int64_t w,
                           const std::array<double, 6>& m, AugmentInterpolation interp, Rgb fill,
                           uint8_t* dst) {
  const double hw = 0.5 * double(w), hh = 0.5 * double(h);
  for (int64_t i = 0; i < h; ++i) {
    const double y = double(i) + 0.5 - hh;
    // Source position in pixel units (0 = centre of the first pixel) at x = 0.
    const double u_row = m[1] * y + m[2] + hw - 0.5, v_row = m[4] * y + m[5] + hh - 0.5;
    for (int64_t j = 0; j < w; ++j) {
      const double x = double(j) + 0.5 - hw;
      const double u = m[0] * x + u_row, v = m[3] * x + v_row;
      uint8_t* out = dst + (i * w + j) * 3;
      const uint8_t* p = fill.data();
      if (interp == AugmentInterpolation::nearest) {
        if (u >= -0.5 && v >= -0.5 && u < double(w) && v < double(h)) {
          const int64_t ru = round_half_even(u), rv = round_half_even(v);
          if (ru < w && rv < h) p = src + (rv * w + ru) * 3;
        }
        out[0] = p[0];
        out[1] = p[1];
        out[2] = p[2];
        continue;
      }
      if (!(u > -1.0 && v > -1.0 && u < double(w) && v < double(h))) {
        out[0] = fill[0];  // no corner inside the image
        out[1] = fill[1];
        out[2] = fill[2];
        continue;
      }
      const int64_t u0 = int64_t(u + 1.0) - 1, v0 = int64_t(v + 1.0) - 1;  // floor
      const double wu = u - double(u0), wv = v - double(v0);
      const double wk[4] = {(1 - wu) * (1 - wv), wu * (1 - wv), (1 - wu) * wv, wu * wv};
      if (u0 >= 0 && v0 >= 0 && u0 + 1 < w && v0 + 1 < h) {  // all four corners inside
        const uint8_t* q = src + (v0 * w + u0) * 3;
        const uint8_t* r = q + w * 3;
        for (int c = 0; c < 3; ++c) {
          const double val = wk[0] * double(q[c]) + wk[1] * double(q[c + 3]) +
                             wk[2] * double(r[c]) + wk[3] * double(r[c + 3]);
          out[c] = uint8_t(std::min<int64_t>(255, round_half_even(std::max(0.0, val))));
        }
        continue;
      }
      double acc[3] = {0, 0, 0}, covered = 0;
      for (int k = 0; k < 4; ++k) {
        const int64_t uu = u0 + (k & 1), vv = v0 + (k >> 1);
        if (uu < 0 || uu >= w || vv < 0 || vv >= h) continue;
        const uint8_t* q = src + (vv * w + uu) * 3;
        acc[0] += wk[k] * double(q[0]);
        acc[1] += wk[k] * double(q[1]);
        acc[2] += wk[k] * double(q[2]);
        covered += wk[k];
      }
      for (int c = 0; c < 3; ++c) {
        const double val = acc[c] + (1.0 - covered) * double(fill[size_t(c)]);
        out[c] = uint8_t(std::min<int64_t>(255, round_half_even(std::max(0.0, val))));
      }
    }
  }
}

inline void geometric_u8(uint8_t* img, int64_t h, int64_t w, const std::array<double, 6>& m,
                         AugmentInterpolation interp, Rgb fill) {
  thread_local std::vector<uint8_t> src;
  src.assign(img, img + h * w * 3);
  warp_affine_u8(src.data(), h, w, m, interp, fill, img);
}

// One op with torchvision's _apply_op arguments: `magnitude` is the signed value in the
// op's unit (see randaugment_magnitude); enhancement ops use the factor 1 + magnitude.
inline void apply_augment_op_u8(uint8_t* img, int64_t h, int64_t w, AugmentOp op,
                                double magnitude, AugmentInterpolation interp, Rgb fill) {
  const int64_t n = h * w;
  if (n == 0) return;
  // Shears keep the top-left corner fixed (torchvision's RandAugment: center=[0, 0]).
  const double corner_x = -0.5 * double(w), corner_y = -0.5 * double(h);
  constexpr double kDeg = 180.0 / 3.14159265358979323846;
  switch (op) {
    case AugmentOp::identity: break;
    case AugmentOp::shear_x:
      geometric_u8(img, h, w,
                   inverse_affine(0, 0, 0, std::atan(magnitude) * kDeg, 0, corner_x, corner_y),
                   interp, fill);
      break;
    case AugmentOp::shear_y:
      geometric_u8(img, h, w,
                   inverse_affine(0, 0, 0, 0, std::atan(magnitude) * kDeg, corner_x, corner_y),
                   interp, fill);
      break;
    case AugmentOp::translate_x:  // whole pixels, truncated toward zero like int()
      geometric_u8(img, h, w, inverse_affine(0, std::trunc(magnitude), 0, 0, 0, 0, 0), interp,
                   fill);
      break;
    case AugmentOp::translate_y:
      geometric_u8(img, h, w, inverse_affine(0, 0, std::trunc(magnitude), 0, 0, 0, 0), interp,
                   fill);
      break;
    case AugmentOp::rotate:  // counter-clockwise about the centre, like F.rotate
      geometric_u8(img, h, w, inverse_affine(-magnitude, 0, 0, 0, 0, 0, 0), interp, fill);
      break;
    case AugmentOp::brightness: brightness_u8(img, n, 1.0 + magnitude); break;
    case AugmentOp::color: color_u8(img, n, 1.0 + magnitude); break;
    case AugmentOp::contrast: contrast_u8(img, n, 1.0 + magnitude); break;
    case AugmentOp::sharpness: sharpness_u8(img, h, w, 1.0 + magnitude); break;
    case AugmentOp::posterize: posterize_u8(img, n, int(magnitude)); break;
    case AugmentOp::solarize: solarize_u8(img, n, magnitude); break;
    case AugmentOp::autocontrast: autocontrast_u8(img, n); break;
    case AugmentOp::equalize: equalize_u8(img, n); break;
  }
}

template <class Rng>
void randaugment_u8(uint8_t* img, int64_t h, int64_t w, const RandAugmentOptions& o, Rng& rng) {
  if (!(rng.uniform(0, 1) < o.p())) return;
  for (int64_t k = 0; k < o.num_ops(); ++k) {
    const AugmentOp op = o.ops()[size_t(rng.randint(0, int64_t(o.ops().size())))];
    const bool negate = rng.randint(0, 2) == 1;  // drawn for every op: a fixed draw count
    double magnitude = randaugment_magnitude(op, o.magnitude(), h, w);
    if (negate && augment_op_signed(op)) magnitude = -magnitude;
    apply_augment_op_u8(img, h, w, op, magnitude, o.interpolation(), o.fill());
  }
}


}  // namespace detail

/// Applies one op to a uint8 HxWx3 image with an explicit signed `magnitude` in the op's
/// unit (torchvision's `_apply_op`): degrees counter-clockwise for rotate, the shear factor
/// (x' = x + m * y about the top-left corner), whole pixels for translate (truncated),
/// factor 1 + m for brightness/color/contrast/sharpness, bits for posterize, the threshold
/// for solarize. Returns a new image.
/// Example: `augment_op(img, AugmentOp::rotate, 15.0)`.
inline torch::Tensor augment_op(const torch::Tensor& image, AugmentOp op, double magnitude,
                                AugmentInterpolation interpolation = AugmentInterpolation::nearest,
                                Rgb fill = {0, 0, 0}) {
  detail::check_image_u8(image, "augment_op");
  if (op == AugmentOp::posterize)
    TORCH_CHECK(magnitude >= 0 && magnitude <= 8, "augment_op: posterize bits must be in "
                "[0, 8], got ", magnitude);
  torch::Tensor out = image.contiguous().clone();
  detail::apply_augment_op_u8(out.data_ptr<uint8_t>(), out.size(0), out.size(1), op, magnitude,
                              interpolation, fill);
  return out;
}

/// RandAugment on a copy of a uint8 HxWx3 image, drawing from `rng` (e.g. SampleRng).
template <class Rng>
torch::Tensor randaugment(const torch::Tensor& image, const RandAugmentOptions& options,
                          Rng& rng) {
  detail::check_image_u8(image, "randaugment");
  check_randaugment_options(options);
  torch::Tensor out = image.contiguous().clone();
  detail::randaugment_u8(out.data_ptr<uint8_t>(), out.size(0), out.size(1), options, rng);
  return out;
}

}  // namespace mobilenet
