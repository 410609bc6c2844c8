#pragma once
/// \file data/transforms/resize.hpp
/// Resizes: the output size of torchvision's Resize(int), which keeps the aspect ratio.

#include <mobilenet/data/image.hpp>

#include <cstdint>

namespace mobilenet {

namespace detail {

// Resize(size) on an image of `in`: the shorter side becomes `size`, the longer one
// int(size * long / short), as torchvision truncates it.
inline ImageSize resize_shorter_side(ImageSize in, int64_t size) {
  if (in.width <= in.height)
    return {int64_t(double(size) * double(in.height) / double(in.width)), size};
  return {size, int64_t(double(size) * double(in.width) / double(in.height))};
}

}  // namespace detail

}  // namespace mobilenet
