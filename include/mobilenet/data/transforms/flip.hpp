#pragma once
/// \file data/transforms/flip.hpp
/// Horizontal flip of a uint8 HWC RGB image in place.

#include <algorithm>
#include <cstdint>

namespace mobilenet {

namespace detail {

// Mirrors each row left-right (the resampler flips for free when nothing runs in between).
inline void flip_horizontal_u8(uint8_t* img, int64_t h, int64_t w) {
  for (int64_t y = 0; y < h; ++y) {
    uint8_t* row = img + y * w * 3;
    for (int64_t x = 0; x < w / 2; ++x)
      std::swap_ranges(row + x * 3, row + x * 3 + 3, row + (w - 1 - x) * 3);
  }
}

}  // namespace detail

}  // namespace mobilenet
