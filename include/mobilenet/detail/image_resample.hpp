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
#include <vector>

namespace mobilenet {
namespace detail {

/// A source rectangle in pixel coordinates (x to the right, y down), edges not centres.
struct ResampleBox {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

// Per output pixel: the first source tap and the number of taps, then fixed-point weights.
struct ResampleCoeffs {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;  // out_size x ksize
  int ksize = 0;
};

constexpr int kResamplePrecisionBits = 32 - 8 - 2;

// Coefficients along one axis. Taps are restricted to [0, in_size): the caller shifts the
// data so that position 0 is the first pixel the resampler may read (crop semantics).
inline ResampleCoeffs resample_coeffs(int64_t in_size, double in0, double in1,
                                      int64_t out_size) {
  const double scale = (in1 - in0) / double(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // the triangle filter has support 1
  ResampleCoeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (double(xx) + 0.5) * scale;
    int64_t xmin = int64_t(std::floor(center - support + 0.5));
    int64_t xmax = int64_t(std::floor(center + support + 0.5));
    xmin = std::max<int64_t>(xmin, 0);
    xmax = std::min<int64_t>(xmax, in_size);
    if (xmax <= xmin) {  // box entirely outside the allowed range: replicate the edge
      xmin = std::min<int64_t>(std::max<int64_t>(xmin, 0), in_size - 1);
      xmax = xmin + 1;
    }
    int64_t n = std::min<int64_t>(xmax - xmin, c.ksize);
    double total = 0;
    for (int64_t x = 0; x < n; ++x) {
      double t = std::abs((double(x + xmin) - center + 0.5) / filterscale);
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

/// Resamples the `box` of an HWC RGB uint8 image (`in`, in_h x in_w, rows contiguous) to
/// out_h x out_w into `out` (HWC, contiguous). Taps never leave the integer `clip` rectangle
/// [cx0, cx1) x [cy0, cy1), which models "crop, then resize" exactly as PIL does it.
inline void resample_rgb(const uint8_t* in, int64_t in_h, int64_t in_w, ResampleBox box,
                         int64_t cx0, int64_t cy0, int64_t cx1, int64_t cy1, int64_t out_h,
                         int64_t out_w, uint8_t* out) {
  cx0 = std::clamp<int64_t>(cx0, 0, in_w - 1);
  cy0 = std::clamp<int64_t>(cy0, 0, in_h - 1);
  cx1 = std::clamp<int64_t>(cx1, cx0 + 1, in_w);
  cy1 = std::clamp<int64_t>(cy1, cy0 + 1, in_h);
  const int64_t cw = cx1 - cx0, ch = cy1 - cy0;
  // Work in the clip rectangle's coordinates, as PIL does on a cropped image.
  const ResampleCoeffs hc = resample_coeffs(cw, box.x0 - cx0, box.x1 - cx0, out_w);
  const ResampleCoeffs vc = resample_coeffs(ch, box.y0 - cy0, box.y1 - cy0, out_h);
  // Rows the vertical pass reads.
  int64_t row_first = ch, row_last = 0;
  for (int64_t y = 0; y < out_h; ++y) {
    row_first = std::min<int64_t>(row_first, vc.first[y]);
    row_last = std::max<int64_t>(row_last, vc.first[y] + vc.count[y]);
  }
  const int64_t rows = row_last - row_first;
  thread_local std::vector<uint8_t> tmp;
  tmp.resize(size_t(rows) * out_w * 3);
  const int64_t in_stride = in_w * 3;
  const uint8_t* base = in + cy0 * in_stride + cx0 * 3;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = base + (row_first + r) * in_stride;
    uint8_t* dst = tmp.data() + r * out_w * 3;
    for (int64_t xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &hc.weights[size_t(xx) * hc.ksize];
      const uint8_t* s = src + int64_t(hc.first[xx]) * 3;
      int32_t a0 = 1 << (kResamplePrecisionBits - 1), a1 = a0, a2 = a0;
      for (int x = 0, n = hc.count[xx]; x < n; ++x, s += 3) {
        a0 += s[0] * k[x];
        a1 += s[1] * k[x];
        a2 += s[2] * k[x];
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
