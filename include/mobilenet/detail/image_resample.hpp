#pragma once
/// \file image_resample.hpp
/// Antialiased bilinear resampling of uint8 RGB images with PIL's semantics.
///
/// PIL (and torchvision on PIL images) resizes with a triangle filter whose support grows
/// with the downscaling factor, separably (horizontal pass, then vertical), in 22-bit fixed
/// point with an 8-bit intermediate image. We follow the same recipe so that our output
/// matches `PIL.Image.resize(size, BILINEAR, box)` to within 1 grey level. The source is a
/// floating-point box, so one resampling serves resize, crop-then-resize and resize-then-crop.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace mobilenet {
namespace detail {

/// A source rectangle in pixel coordinates (x to the right, y down), edges not centres.
struct ResampleBox {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

/// An integer pixel rectangle [x0, x1) x [y0, y1).
struct PixelRect {
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

/// One resampling: the source `box` becomes out_h x out_w pixels, and the filter reads only
/// pixels inside `clip`, which models "crop, then resize" exactly as PIL does it.
struct ResampleSpec {
  ResampleBox box;
  PixelRect clip;
  int64_t out_h = 0, out_w = 0;
};

/// The same resampling for the source decoded at (sx, sy) times its size (a DCT-scaled
/// JPEG): the box scales, the clip rectangle grows to whole pixels.
inline ResampleSpec rescale(const ResampleSpec& s, double sx, double sy) {
  ResampleSpec r = s;
  r.box = {s.box.x0 * sx, s.box.y0 * sy, s.box.x1 * sx, s.box.y1 * sy};
  r.clip = {int64_t(std::floor(double(s.clip.x0) * sx)), int64_t(std::floor(double(s.clip.y0) * sy)),
            int64_t(std::ceil(double(s.clip.x1) * sx)), int64_t(std::ceil(double(s.clip.y1) * sy))};
  return r;
}

/// A uint8 RGB image, or a window of one: pixel (x, y) of the whole image, for x in
/// [left, left + width) and y in [top, top + height), is at data + ((y - top) * width +
/// (x - left)) * 3.
struct RgbWindow {
  const uint8_t* data = nullptr;
  int64_t left = 0, top = 0, width = 0, height = 0;
};

// Per output pixel: the first source tap and the number of taps, then fixed-point weights.
struct ResampleCoeffs {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;  // out_size x ksize
  int ksize = 0;
};

constexpr int kResamplePrecisionBits = 32 - 8 - 2;

// The filter geometry along one axis, as PIL computes it: scale, support, and per output
// pixel its centre and its tap range [xmin, xmax) within [0, in_size).
struct ResampleAxis {
  int64_t in_size;
  double in0, scale, filterscale, support;
  int ksize;
  ResampleAxis(int64_t in_size_, double in0_, double in1, int64_t out_size)
      : in_size(in_size_), in0(in0_), scale((in1 - in0_) / double(out_size)),
        filterscale(std::max(scale, 1.0)), support(1.0 * filterscale),  // triangle: support 1
        ksize(int(std::ceil(support)) * 2 + 1) {}
  double center(int64_t xx) const { return in0 + (double(xx) + 0.5) * scale; }
  void taps(int64_t xx, int64_t& xmin, int64_t& xmax) const {
    const double c = center(xx);
    xmin = std::max<int64_t>(int64_t(std::floor(c - support + 0.5)), 0);
    xmax = std::min<int64_t>(int64_t(std::floor(c + support + 0.5)), in_size);
    if (xmax <= xmin) {  // box entirely outside the allowed range: replicate the edge
      xmin = std::min<int64_t>(std::max<int64_t>(xmin, 0), in_size - 1);
      xmax = xmin + 1;
    }
    xmax = std::min<int64_t>(xmax, xmin + ksize);
  }
};

// Coefficients along one axis. Taps are restricted to [0, in_size): the caller shifts the
// data so that position 0 is the first pixel the resampler may read (crop semantics).
inline ResampleCoeffs resample_coeffs(int64_t in_size, double in0, double in1,
                                      int64_t out_size) {
  const ResampleAxis axis(in_size, in0, in1, out_size);
  ResampleCoeffs c;
  c.ksize = axis.ksize;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = axis.center(xx);
    int64_t xmin, xmax;
    axis.taps(xx, xmin, xmax);
    int64_t n = xmax - xmin;
    double total = 0;
    for (int64_t x = 0; x < n; ++x) {
      double t = std::abs((double(x + xmin) - center + 0.5) / axis.filterscale);
      w[x] = t < 1.0 ? 1.0 - t : 0.0;
      total += w[x];
    }
    if (total == 0) {  // can only happen for degenerate boxes; take the nearest tap
      w[0] = 1.0;
      total = 1.0;
      n = 1;
    }
    int32_t* k = &c.weights[size_t(xx) * c.ksize];
    for (int64_t x = 0; x < n; ++x) {
      double v = w[x] / total * double(1 << kResamplePrecisionBits);
      k[x] = int32_t(v < 0 ? v - 0.5 : v + 0.5);
    }
    c.first[xx] = int(xmin);
    c.count[xx] = int(n);
  }
  return c;
}

inline uint8_t resample_clip8(int32_t v) {
  v >>= kResamplePrecisionBits;
  return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// The clip rectangle made valid for an image_w x image_h image (at least one pixel).
inline PixelRect clamp_clip(PixelRect c, int64_t image_w, int64_t image_h) {
  c.x0 = std::clamp<int64_t>(c.x0, 0, image_w - 1);
  c.y0 = std::clamp<int64_t>(c.y0, 0, image_h - 1);
  c.x1 = std::clamp<int64_t>(c.x1, c.x0 + 1, image_w);
  c.y1 = std::clamp<int64_t>(c.y1, c.y0 + 1, image_h);
  return c;
}

/// The pixels of an image_w x image_h image that the resampling `s` reads: the union of
/// its filter taps. A decoder need only produce these.
inline PixelRect resample_footprint(const ResampleSpec& s, int64_t image_w, int64_t image_h) {
  const PixelRect c = clamp_clip(s.clip, image_w, image_h);
  const ResampleAxis ax(c.x1 - c.x0, s.box.x0 - double(c.x0), s.box.x1 - double(c.x0), s.out_w);
  const ResampleAxis ay(c.y1 - c.y0, s.box.y0 - double(c.y0), s.box.y1 - double(c.y0), s.out_h);
  PixelRect r;
  int64_t lo, hi;
  // Tap ranges move monotonically with the output position: the ends suffice.
  ax.taps(0, r.x0, hi);
  ax.taps(s.out_w - 1, lo, r.x1);
  ay.taps(0, r.y0, hi);
  ay.taps(s.out_h - 1, lo, r.y1);
  return {c.x0 + r.x0, c.y0 + r.y0, c.x0 + r.x1, c.y0 + r.y1};
}

/// Resamples an image_w x image_h RGB image (of which `in` holds a window that covers
/// resample_footprint(s, image_w, image_h)) to s.out_h x s.out_w HWC pixels at `out`.
inline void resample_rgb(const RgbWindow& in, int64_t image_w, int64_t image_h,
                         const ResampleSpec& s, uint8_t* out) {
  const PixelRect c = clamp_clip(s.clip, image_w, image_h);
  const int64_t out_w = s.out_w, out_h = s.out_h;
  // Work in the clip rectangle's coordinates, as PIL does on a cropped image.
  const ResampleCoeffs hc = resample_coeffs(c.x1 - c.x0, s.box.x0 - double(c.x0),
                                            s.box.x1 - double(c.x0), out_w);
  const ResampleCoeffs vc = resample_coeffs(c.y1 - c.y0, s.box.y0 - double(c.y0),
                                            s.box.y1 - double(c.y0), out_h);
  // Rows the vertical pass reads.
  int64_t row_first = c.y1 - c.y0, row_last = 0;
  for (int64_t y = 0; y < out_h; ++y) {
    row_first = std::min<int64_t>(row_first, vc.first[y]);
    row_last = std::max<int64_t>(row_last, vc.first[y] + vc.count[y]);
  }
  const int64_t rows = row_last - row_first;
  const int64_t col_first = hc.first[0], col_last = hc.first[out_w - 1] + hc.count[out_w - 1];
  if (c.x0 + col_first < in.left || c.x0 + col_last > in.left + in.width ||
      c.y0 + row_first < in.top || c.y0 + row_last > in.top + in.height)
    throw std::logic_error("resample_rgb: the window does not cover the filter's taps");
  thread_local std::vector<uint8_t> tmp;
  tmp.resize(size_t(rows) * out_w * 3);
  const int64_t in_stride = in.width * 3;
  // The pixel at clip coordinates (0, row_first).
  const uint8_t* base =
      in.data + (c.y0 + row_first - in.top) * in_stride + (c.x0 - in.left) * 3;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = base + r * in_stride;
    uint8_t* dst = tmp.data() + r * out_w * 3;
    for (int64_t xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &hc.weights[size_t(xx) * hc.ksize];
      const uint8_t* p = src + int64_t(hc.first[xx]) * 3;
      int32_t a0 = 1 << (kResamplePrecisionBits - 1), a1 = a0, a2 = a0;
      for (int x = 0, n = hc.count[xx]; x < n; ++x, p += 3) {
        a0 += p[0] * k[x];
        a1 += p[1] * k[x];
        a2 += p[2] * k[x];
      }
      dst[xx * 3 + 0] = resample_clip8(a0);
      dst[xx * 3 + 1] = resample_clip8(a1);
      dst[xx * 3 + 2] = resample_clip8(a2);
    }
  }
  const int64_t row = out_w * 3;
  std::vector<int32_t> acc(static_cast<size_t>(row));
  for (int64_t yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &vc.weights[size_t(yy) * vc.ksize];
    std::fill(acc.begin(), acc.end(), 1 << (kResamplePrecisionBits - 1));
    const uint8_t* src = tmp.data() + (vc.first[yy] - row_first) * row;
    for (int y = 0, n = vc.count[yy]; y < n; ++y, src += row) {
      const int32_t w = k[y];
      for (int64_t i = 0; i < row; ++i) acc[i] += src[i] * w;
    }
    uint8_t* dst = out + yy * row;
    for (int64_t i = 0; i < row; ++i) dst[i] = resample_clip8(acc[i]);
  }
}

}  // namespace detail
}  // namespace mobilenet
