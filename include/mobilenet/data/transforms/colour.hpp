#pragma once
/// \file data/transforms/colour.hpp
/// Colour: torchvision's ColorJitter (brightness, contrast, saturation, hue) on float RGB.

#include <mobilenet/data/random.hpp>

#include <torch/arg.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

namespace mobilenet {

/// torchvision's ColorJitter strengths; 0 disables a component.
/// Example: `ColorJitterOptions().brightness(0.4).contrast(0.4).saturation(0.4)`.
struct ColorJitterOptions {
  /// Brightness factor drawn from [max(0, 1 - b), 1 + b]. Default 0.
  TORCH_ARG(double, brightness) = 0;
  /// Contrast factor drawn from [max(0, 1 - c), 1 + c]. Default 0.
  TORCH_ARG(double, contrast) = 0;
  /// Saturation factor drawn from [max(0, 1 - s), 1 + s]. Default 0.
  TORCH_ARG(double, saturation) = 0;
  /// Hue shift drawn from [-h, h], h <= 0.5. Default 0.
  TORCH_ARG(double, hue) = 0;
};

/// True when any component is enabled.
inline bool enabled(const ColorJitterOptions& o) {
  return o.brightness() > 0 || o.contrast() > 0 || o.saturation() > 0 || o.hue() > 0;
}

namespace detail {

// torchvision's rgb_to_grayscale weights.
inline float luma(const float* p) { return 0.2989f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

inline float clamp01(float v) { return v < 0.f ? 0.f : (v > 1.f ? 1.f : v); }

// Hue shift through HSV, following torchvision's tensor implementation.
inline void shift_hue(float* p, float shift) {
  const float r = p[0], g = p[1], b = p[2];
  const float maxc = std::max({r, g, b}), minc = std::min({r, g, b});
  const float v = maxc, cr = maxc - minc;
  if (cr == 0.f) return;  // grey: hue is undefined and the shift changes nothing
  const float s = cr / maxc;
  const float rc = (maxc - r) / cr, gc = (maxc - g) / cr, bc = (maxc - b) / cr;
  float h;
  if (maxc == r) h = bc - gc;
  else if (maxc == g) h = 2.f + rc - bc;
  else h = 4.f + gc - rc;
  h = std::fmod(h / 6.f + 1.f, 1.f);
  h = std::fmod(h + shift + 1.f, 1.f);
  const float h6 = h * 6.f;
  const int sector = int(std::floor(h6)) % 6;
  const float f = h6 - std::floor(h6);
  const float pp = clamp01(v * (1.f - s)), q = clamp01(v * (1.f - s * f)),
              t = clamp01(v * (1.f - s * (1.f - f)));
  switch (sector) {
    case 0: p[0] = v; p[1] = t; p[2] = pp; break;
    case 1: p[0] = q; p[1] = v; p[2] = pp; break;
    case 2: p[0] = pp; p[1] = v; p[2] = t; break;
    case 3: p[0] = pp; p[1] = q; p[2] = v; break;
    case 4: p[0] = t; p[1] = pp; p[2] = v; break;
    default: p[0] = v; p[1] = pp; p[2] = q; break;
  }
}

// torchvision's adjust_* on float RGB in [0, 1], here on n HWC pixels in place.
inline void adjust_brightness(float* img, int64_t n, float f) {
  for (int64_t i = 0; i < n * 3; ++i) img[i] = clamp01(img[i] * f);
}

inline void adjust_contrast(float* img, int64_t n, float f) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += luma(img + i * 3);
  const float mean = float(total / double(n));
  for (int64_t i = 0; i < n * 3; ++i) img[i] = clamp01(f * img[i] + (1.f - f) * mean);
}

inline void adjust_saturation(float* img, int64_t n, float f) {
  for (int64_t i = 0; i < n; ++i) {
    float* q = img + i * 3;
    const float g = luma(q);
    for (int c = 0; c < 3; ++c) q[c] = clamp01(f * q[c] + (1.f - f) * g);
  }
}

inline void adjust_hue(float* img, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) shift_hue(img + i * 3, shift);
}

// ColorJitter on n float HWC pixels in [0, 1]: the enabled components in a random order.
// Draws the order and all factors first, so every sample takes the same number of draws.
inline void color_jitter(float* img, int64_t n, const ColorJitterOptions& o, SampleRng& rng) {
  int order[4] = {0, 1, 2, 3};
  for (int i = 3; i > 0; --i) std::swap(order[i], order[rng.randint(0, i + 1)]);
  auto factor = [&](double s) { return float(rng.uniform(std::max(0.0, 1.0 - s), 1.0 + s)); };
  const float fb = factor(o.brightness()), fc = factor(o.contrast()), fs = factor(o.saturation());
  const float fh = float(rng.uniform(-o.hue(), o.hue()));
  for (int op : order) {
    if (op == 0 && o.brightness() > 0) adjust_brightness(img, n, fb);
    if (op == 1 && o.contrast() > 0) adjust_contrast(img, n, fc);
    if (op == 2 && o.saturation() > 0) adjust_saturation(img, n, fs);
    if (op == 3 && o.hue() > 0) adjust_hue(img, n, fh);
  }
}

}  // namespace detail

}  // namespace mobilenet
