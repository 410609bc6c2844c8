#pragma once
/// \file data/detail/check_image.hpp
/// The argument check of the augmentations' tensor entry points.

#include <torch/torch.h>

namespace mobilenet::detail {

inline void check_image_u8(const torch::Tensor& image, const char* who) {
  TORCH_CHECK(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == torch::kUInt8,
              who, ": expected a uint8 HxWx3 image, got ", image.sizes(), " ",
              image.scalar_type());
}

}  // namespace mobilenet::detail
