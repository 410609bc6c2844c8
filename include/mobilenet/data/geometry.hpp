#pragma once
/// \file data/geometry.hpp
/// The geometry of one sample, as a Transform plans it before decoding: which source box
/// (in full-resolution pixels) becomes the output, and which pixels the filter may read.

#include <cstdint>

namespace mobilenet {

/// A source rectangle in pixel coordinates (x to the right, y down), edges not centres.
struct ImageBox {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

/// One sample's plan: `box` becomes out_h x out_w pixels, the filter reads only inside
/// [cx0, cx1) x [cy0, cy1), and `flip` mirrors the result left-right.
struct GeometryPlan {
  ImageBox box;
  int64_t cx0 = 0, cy0 = 0, cx1 = 0, cy1 = 0;
  int64_t out_h = 0, out_w = 0;
  bool flip = false;
};

}  // namespace mobilenet
