#pragma once
/// \file data/transforms/normalize.hpp
/// Normalisation: (x / 255 - mean) / std per channel, exactly as torchvision computes it.

#include <mobilenet/data/detail/image_resample.hpp>

#include <array>
#include <cstdint>

namespace mobilenet {

/// ImageNet channel means and standard deviations (RGB, on [0, 1] pixel values).
constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

/// An RGB colour in uint8 levels.
using Rgb = std::array<uint8_t, 3>;

/// ImageNet's mean colour in uint8 levels, round(255 * kImageNetMean): zero after
/// ImageNet normalisation.
constexpr Rgb kImageNetMeanRgb = {124, 116, 104};

namespace detail {

#ifdef MOBILENET_RESAMPLE_AVX2
// Eight pixels (24 values) per step through one gather each: value k has channel k % 3, so
// the table offsets cycle through three phases.
__attribute__((target("avx2"))) inline int64_t normalize_u8_avx2(const uint8_t* src, int64_t n,
                                                                  const float* table,
                                                                  float* out) {
  __m256i offset[3];
  for (int v = 0; v < 3; ++v) {
    alignas(32) int32_t o[8];
    for (int k = 0; k < 8; ++k) o[k] = ((v * 8 + k) % 3) * 256;
    offset[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(o));
  }
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int v = 0; v < 3; ++v) {
      const __m128i px = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i * 3 + v * 8));
      const __m256i index = _mm256_add_epi32(_mm256_cvtepu8_epi32(px), offset[v]);
      _mm256_storeu_ps(out + i * 3 + v * 8, _mm256_i32gather_ps(table, index, 4));
    }
  }
  return i;
}
#endif

// (v / 255 - mean) / std per channel for n HWC pixels, through a table of the 3 x 256 exact
// values: bit-identical to torchvision's ToTensor + Normalize (each step rounded in float),
// which keeps C++ and PyTorch training on the same inputs (the learning-parity test relies on
// it), and faster than computing them (a multiply-add, not exact, saved ~1.5% of a decode).
inline void normalize_u8(const uint8_t* src, int64_t n, const std::array<float, 3>& mean,
                         const std::array<float, 3>& std, float* out) {
  alignas(32) float table[3 * 256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) table[c * 256 + v] = (float(v) / 255.f - mean[c]) / std[c];
  int64_t done = 0;
#ifdef MOBILENET_RESAMPLE_AVX2
  if (cpu_has_avx2()) done = normalize_u8_avx2(src, n, table, out);
#endif
  for (int64_t i = done; i < n; ++i)
    for (int c = 0; c < 3; ++c) out[i * 3 + c] = table[c * 256 + src[i * 3 + c]];
}

}  // namespace detail

}  // namespace mobilenet
