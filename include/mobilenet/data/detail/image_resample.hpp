#pragma once
/// \file data/detail/image_resample.hpp
/// Antialiased bilinear resampling of uint8 RGB images with PIL's semantics.
///
/// PIL (and torchvision on PIL images) resizes with a triangle filter whose support grows
/// with the downscaling factor, separably (horizontal pass, then vertical), in 22-bit fixed
/// point with an 8-bit intermediate image. We follow the same recipe, so our output equals
/// `PIL.Image.resize(size, BILINEAR, box)` byte for byte (tests/test_image.cpp checks it).
/// The source is a floating-point box, so one resampling serves resize, crop-then-resize and
/// resize-then-crop. On x86 CPUs with AVX2 (detected at run time) both passes use AVX2
/// integer code that adds the same products, so its bytes are the scalar code's.

#include <mobilenet/data/geometry.hpp>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace mobilenet {
namespace detail {

/// A source rectangle in pixel coordinates (the public ImageBox).
using ResampleBox = ImageBox;

/// An integer pixel rectangle [x0, x1) x [y0, y1).
struct PixelRect {
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

/// One resampling: the source `box` becomes out_h x out_w pixels, and the filter reads only
/// pixels inside `clip`, which models "crop, then resize" exactly as PIL does it. With
/// `flip`, the output is mirrored left-right (the same bytes as flipping it afterwards).
struct ResampleSpec {
  ResampleBox box;
  PixelRect clip;
  int64_t out_h = 0, out_w = 0;
  bool flip = false;
};

/// The same resampling for the source decoded at (sx, sy) times its size (a DCT-scaled
/// JPEG): the box scales, the clip rectangle grows to whole pixels.
inline ResampleSpec rescale(const ResampleSpec& s, double sx, double sy) {
  ResampleSpec r = s;
  r.box = {s.box.x0 * sx, s.box.y0 * sy, s.box.x1 * sx, s.box.y1 * sy};
  r.clip = {int64_t(std::floor(double(s.clip.x0) * sx)),
            int64_t(std::floor(double(s.clip.y0) * sy)),
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
// Output pixels are independent, so listing them in reverse order mirrors the output.
inline ResampleCoeffs resample_coeffs(int64_t in_size, double in0, double in1,
                                      int64_t out_size, bool reverse = false) {
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
    const int64_t at = reverse ? out_size - 1 - xx : xx;
    int32_t* k = &c.weights[size_t(at) * c.ksize];
    for (int64_t x = 0; x < n; ++x) {
      double v = w[x] / total * double(1 << kResamplePrecisionBits);
      k[x] = int32_t(v < 0 ? v - 0.5 : v + 0.5);
    }
    c.first[at] = int(xmin);
    c.count[at] = int(n);
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

// One output row of the horizontal pass, pixels [x_begin, x_end): `src` is the row's pixel
// at clip column 0.
inline void resample_row_h_scalar(const uint8_t* src, const ResampleCoeffs& hc, int64_t x_begin,
                                  int64_t x_end, uint8_t* dst) {
  for (int64_t xx = x_begin; xx < x_end; ++xx) {
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

// One output row of the vertical pass, bytes [begin, end): taps are rows src, src + stride...
inline void resample_row_v_scalar(const uint8_t* src, int64_t stride, const int32_t* k, int n,
                                  int64_t begin, int64_t end, uint8_t* dst) {
  for (int64_t i = begin; i < end; ++i) {
    int32_t acc = 1 << (kResamplePrecisionBits - 1);
    const uint8_t* p = src + i;
    for (int y = 0; y < n; ++y, p += stride) acc += p[0] * k[y];
    dst[i] = resample_clip8(acc);
  }
}

/// Which code resamples: the best the CPU supports, or the portable scalar loops.
enum class ResampleKernel { kAuto, kScalar };

#if defined(__x86_64__) || defined(__i386__)
#define MOBILENET_RESAMPLE_AVX2 1

// AVX2 kernels, compiled for AVX2 whatever the user's flags (target attribute) and chosen
// at run time, so a binary built without -mavx2 still runs everywhere. Exact: they add the
// same integer products as the scalar loops. A 22-bit weight w is split as
// w = hi * 2^11 + lo with both halves in int16, so _mm256_madd_epi16 gives exact sums of
// pixel * hi and pixel * lo, recombined in int32 (the total stays below 2^30).

inline bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") != 0;
  return has;
}

// Horizontal weights for pairs of output pixels (one per 128-bit lane). Each step covers
// two source pixels: a shuffle spreads them to [r_a, r_b, g_a, g_b, b_a, b_b, 0, 0] (int16)
// for a madd with [wa, wb, wa, wb, wa, wb, 0, 0], once with the high and once with the low
// weight halves. One 16-byte load from `start` + 4j pixels serves steps 2j and 2j + 1.
struct ResampleAvx2Weights {
  int steps = 1;
  std::vector<int> start;       // per output pixel, in source pixels (clip coordinates)
  std::vector<int16_t> packed;  // [pair of outputs][step][hi, lo][lane 0, 1][8]
};

inline ResampleAvx2Weights pack_avx2_weights(const ResampleCoeffs& c, int64_t out_size) {
  ResampleAvx2Weights w;
  int max_count = 1;
  for (int64_t i = 0; i < out_size; ++i) max_count = std::max(max_count, c.count[i]);
  w.steps = (max_count + 1) / 2;
  w.start.assign(c.first.begin(), c.first.end());
  const int64_t pairs = out_size / 2;
  const size_t per_pair = size_t(w.steps) * 2 * 2 * 8;
  w.packed.assign(size_t(pairs) * per_pair, 0);
  for (int64_t pr = 0; pr < pairs; ++pr) {
    for (int lane = 0; lane < 2; ++lane) {
      const int64_t xx = pr * 2 + lane;
      const int32_t* k = &c.weights[size_t(xx) * c.ksize];
      for (int t = 0; t < c.count[xx]; ++t) {
        const int32_t hi = k[t] >> 11, lo = k[t] & 2047;  // k == hi * 2048 + lo exactly
        int16_t* v = &w.packed[size_t(pr) * per_pair + size_t(t / 2) * 32];
        for (int ch = 0; ch < 3; ++ch) {
          v[lane * 8 + ch * 2 + t % 2] = int16_t(hi);
          v[16 + lane * 8 + ch * 2 + t % 2] = int16_t(lo);
        }
      }
    }
  }
  return w;
}

// Two output pixels (one per lane) from source pixels at p0 and p1: int32 [r, g, b, 0]
// per lane, rounded and shifted, not yet clipped. kSteps > 0 unrolls; 0 reads pw.steps.
template <int kSteps>
__attribute__((target("avx2"), always_inline)) inline __m256i resample_pair_avx2(
    const uint8_t* p0, const uint8_t* p1, const __m256i* w, int steps) {
  const __m256i m0 = _mm256_setr_epi8(0, -128, 3, -128, 1, -128, 4, -128, 2, -128, 5, -128, -128,
                                      -128, -128, -128, 0, -128, 3, -128, 1, -128, 4, -128, 2,
                                      -128, 5, -128, -128, -128, -128, -128);
  const __m256i m1 = _mm256_setr_epi8(6, -128, 9, -128, 7, -128, 10, -128, 8, -128, 11, -128,
                                      -128, -128, -128, -128, 6, -128, 9, -128, 7, -128, 10,
                                      -128, 8, -128, 11, -128, -128, -128, -128, -128);
  if (kSteps > 0) steps = kSteps;
  __m256i hi = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
  for (int j = 0; j < steps; j += 2, w += 4) {
    const __m256i px = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p0 + j * 6))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p1 + j * 6)), 1);
    const __m256i a = _mm256_shuffle_epi8(px, m0);
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(a, _mm256_loadu_si256(w + 0)));
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(a, _mm256_loadu_si256(w + 1)));
    if (j + 1 < steps) {
      const __m256i b = _mm256_shuffle_epi8(px, m1);
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(b, _mm256_loadu_si256(w + 2)));
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(b, _mm256_loadu_si256(w + 3)));
    }
  }
  const __m256i round = _mm256_set1_epi32(1 << (kResamplePrecisionBits - 1));
  const __m256i acc = _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(hi, 11), lo), round);
  return _mm256_srai_epi32(acc, kResamplePrecisionBits);
}

// Output pixels [0, out_w) of one row, four at a time; groups whose 16-byte loads would pass
// `readable_end` (the end of the source buffer) fall back to the scalar loop. Each group
// stores 16 bytes for its 12: dst needs 4 spare bytes.
template <int kSteps>
__attribute__((target("avx2"))) inline void resample_row_h_avx2_steps(
    const uint8_t* src, const uint8_t* readable_end, const ResampleCoeffs& hc,
    const ResampleAvx2Weights& pw, int64_t out_w, uint8_t* dst) {
  const int steps = kSteps > 0 ? kSteps : pw.steps;
  const size_t per_pair = size_t(steps) * 2 * 2 * 8;
  const int64_t last_load = int64_t((steps - 1) / 2) * 12 + 16;  // bytes read from start
  // Dwords [p0, p2 | p1, p3] -> [p0, p1, p2, p3], then 4 x rgb0 -> 12 bytes of rgb.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m128i compact = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -128, -128, -128,
                                        -128);
  int64_t xx = 0;
  for (; xx + 4 <= out_w; xx += 4) {
    const uint8_t* p[4];
    bool safe = true;
    for (int i = 0; i < 4; ++i) {
      p[i] = src + int64_t(pw.start[xx + i]) * 3;
      safe = safe && p[i] + last_load <= readable_end;
    }
    if (!safe) {
      resample_row_h_scalar(src, hc, xx, xx + 4, dst);
      continue;
    }
    const __m256i* w = reinterpret_cast<const __m256i*>(&pw.packed[size_t(xx / 2) * per_pair]);
    const __m256i a = resample_pair_avx2<kSteps>(p[0], p[1], w, steps);
    const __m256i b = resample_pair_avx2<kSteps>(p[2], p[3], w + steps * 2, steps);
    const __m256i b16 = _mm256_packs_epi32(a, b);       // [p0, p2 | p1, p3] as int16
    const __m256i b8 = _mm256_packus_epi16(b16, b16);  // clipped to bytes
    const __m128i rgb = _mm_shuffle_epi8(
        _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b8, order)), compact);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + xx * 3), rgb);
  }
  resample_row_h_scalar(src, hc, xx, out_w, dst);
}

inline void resample_row_h_avx2(const uint8_t* src, const uint8_t* readable_end,
                                const ResampleCoeffs& hc, const ResampleAvx2Weights& pw,
                                int64_t out_w, uint8_t* dst) {
  switch (pw.steps) {
    case 1: return resample_row_h_avx2_steps<1>(src, readable_end, hc, pw, out_w, dst);
    case 2: return resample_row_h_avx2_steps<2>(src, readable_end, hc, pw, out_w, dst);
    case 3: return resample_row_h_avx2_steps<3>(src, readable_end, hc, pw, out_w, dst);
    case 4: return resample_row_h_avx2_steps<4>(src, readable_end, hc, pw, out_w, dst);
    default: return resample_row_h_avx2_steps<0>(src, readable_end, hc, pw, out_w, dst);
  }
}

__attribute__((target("avx2"))) inline __m256i load8(const uint8_t* q) {  // 8 bytes to int32
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q)));
}

// Bytes [0, len) of one output row of the vertical pass; returns how many it did (a multiple
// of 32), the caller finishes the rest.
__attribute__((target("avx2"))) inline int64_t resample_row_v_avx2(const uint8_t* src,
                                                                    int64_t stride,
                                                                    const int32_t* k, int n,
                                                                    int64_t len, uint8_t* dst) {
  const __m256i round = _mm256_set1_epi32(1 << (kResamplePrecisionBits - 1));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t i = 0;
  for (; i + 32 <= len; i += 32) {
    __m256i a0 = round, a1 = round, a2 = round, a3 = round;
    const uint8_t* p = src + i;
    for (int y = 0; y < n; ++y, p += stride) {
      const __m256i w = _mm256_set1_epi32(k[y]);
      a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(load8(p), w));
      a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(load8(p + 8), w));
      a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(load8(p + 16), w));
      a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(load8(p + 24), w));
    }
    a0 = _mm256_srai_epi32(a0, kResamplePrecisionBits);
    a1 = _mm256_srai_epi32(a1, kResamplePrecisionBits);
    a2 = _mm256_srai_epi32(a2, kResamplePrecisionBits);
    a3 = _mm256_srai_epi32(a3, kResamplePrecisionBits);
    const __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(a0, a1), _mm256_packs_epi32(a2, a3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm256_permutevar8x32_epi32(b, order));
  }
  return i;
}
#endif  // x86

/// Resamples an image_w x image_h RGB image (of which `in` holds a window that covers
/// resample_footprint(s, image_w, image_h)) to s.out_h x s.out_w HWC pixels at `out`.
/// Every kernel gives the same bytes.
inline void resample_rgb(const RgbWindow& in, int64_t image_w, int64_t image_h,
                         const ResampleSpec& s, uint8_t* out,
                         ResampleKernel kernel = ResampleKernel::kAuto) {
  const PixelRect c = clamp_clip(s.clip, image_w, image_h);
  const int64_t out_w = s.out_w, out_h = s.out_h;
  // Work in the clip rectangle's coordinates, as PIL does on a cropped image.
  const ResampleCoeffs hc = resample_coeffs(c.x1 - c.x0, s.box.x0 - double(c.x0),
                                            s.box.x1 - double(c.x0), out_w, s.flip);
  const ResampleCoeffs vc = resample_coeffs(c.y1 - c.y0, s.box.y0 - double(c.y0),
                                            s.box.y1 - double(c.y0), out_h);
  // Rows the vertical pass reads.
  int64_t row_first = c.y1 - c.y0, row_last = 0;
  for (int64_t y = 0; y < out_h; ++y) {
    row_first = std::min<int64_t>(row_first, vc.first[y]);
    row_last = std::max<int64_t>(row_last, vc.first[y] + vc.count[y]);
  }
  const int64_t rows = row_last - row_first;
  const int64_t left = s.flip ? out_w - 1 : 0, right = out_w - 1 - left;
  const int64_t col_first = hc.first[left], col_last = hc.first[right] + hc.count[right];
  if (c.x0 + col_first < in.left || c.x0 + col_last > in.left + in.width ||
      c.y0 + row_first < in.top || c.y0 + row_last > in.top + in.height)
    throw std::logic_error("resample_rgb: the window does not cover the filter's taps");
#ifdef MOBILENET_RESAMPLE_AVX2
  const bool avx2 = kernel == ResampleKernel::kAuto && cpu_has_avx2();
#else
  const bool avx2 = false;
  (void)kernel;
#endif
  thread_local std::vector<uint8_t> tmp;
  tmp.resize(size_t(rows) * out_w * 3 + 4);  // + 4: the AVX2 pass stores 16 bytes per 12
  const int64_t in_stride = in.width * 3;
  // The pixel at clip coordinates (0, row_first).
  const uint8_t* base =
      in.data + (c.y0 + row_first - in.top) * in_stride + (c.x0 - in.left) * 3;
  const uint8_t* in_end = in.data + in.height * in_stride;
#ifdef MOBILENET_RESAMPLE_AVX2
  ResampleAvx2Weights pw;
  if (avx2) pw = pack_avx2_weights(hc, out_w);
#endif
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = base + r * in_stride;
    uint8_t* dst = tmp.data() + r * out_w * 3;
#ifdef MOBILENET_RESAMPLE_AVX2
    if (avx2) {
      resample_row_h_avx2(src, in_end, hc, pw, out_w, dst);
      continue;
    }
#endif
    (void)in_end;
    resample_row_h_scalar(src, hc, 0, out_w, dst);
  }
  const int64_t row = out_w * 3;
  for (int64_t yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &vc.weights[size_t(yy) * vc.ksize];
    const uint8_t* src = tmp.data() + (vc.first[yy] - row_first) * row;
    int64_t done = 0;
#ifdef MOBILENET_RESAMPLE_AVX2
    if (avx2) done = resample_row_v_avx2(src, row, k, vc.count[yy], row, out + yy * row);
#endif
    resample_row_v_scalar(src, row, k, vc.count[yy], done, row, out + yy * row);
  }
}

}  // namespace detail
}  // namespace mobilenet
