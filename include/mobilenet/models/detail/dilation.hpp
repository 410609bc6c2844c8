#pragma once
/// \file models/detail/dilation.hpp
/// Turns strides into dilation past a target output stride (the timm / TF-slim rule).

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace mobilenet::detail {

/// Stride and dilation one block gets.
struct BlockGeometry {
  int64_t stride = 1;
  int64_t dilation = 1;
};

/// Walks the network's blocks in order. Once the accumulated stride would exceed
/// `output_stride`, a block's stride becomes 1 and every *later* block's dilation is
/// multiplied by the stride that was dropped; the block that drops it keeps the previous
/// dilation, since its own input still has the previous resolution.
class StridePlanner {
 public:
  StridePlanner(int64_t output_stride, int64_t stem_stride)
      : output_stride_(output_stride), current_stride_(stem_stride) {}

  BlockGeometry next(int64_t stride) {
    BlockGeometry g{stride, current_dilation_};
    if (stride > 1) {
      if (current_stride_ * stride > output_stride_) {
        g.stride = 1;
        current_dilation_ *= stride;
      } else {
        current_stride_ *= stride;
      }
    }
    return g;
  }

 private:
  int64_t output_stride_;
  int64_t current_stride_;
  int64_t current_dilation_ = 1;
};

inline void check_output_stride(const char* model, int64_t output_stride) {
  TORCH_CHECK(output_stride == 8 || output_stride == 16 || output_stride == 32, model,
              ": output_stride must be 8, 16 or 32, got ", output_stride);
}

/// Checks the options MobileNetV1 and V2 share.
inline void check_model_options(const char* model, int64_t num_classes, double width_mult,
                                double dropout, size_t num_stages,
                                const std::vector<int64_t>& stage_dilations,
                                int64_t output_stride) {
  TORCH_CHECK(num_classes > 0, model, ": num_classes must be > 0, got ", num_classes);
  TORCH_CHECK(width_mult > 0, model, ": width_mult must be > 0, got ", width_mult);
  TORCH_CHECK(dropout >= 0 && dropout < 1, model, ": dropout must be in [0, 1), got ", dropout);
  TORCH_CHECK(num_stages > 0, model, ": stages must not be empty");
  TORCH_CHECK(stage_dilations.empty() || stage_dilations.size() == num_stages, model,
              ": stage_dilations must have one entry per stage (", num_stages, "), got ",
              stage_dilations.size());
  for (size_t i = 0; i < stage_dilations.size(); ++i) {
    TORCH_CHECK(stage_dilations[i] >= 1, model, ": stage_dilations[", i,
                "] must be >= 1, got ", stage_dilations[i]);
  }
  check_output_stride(model, output_stride);
}

/// Extra dilation of stage i (1 when none was given).
inline int64_t stage_dilation(const std::vector<int64_t>& stage_dilations, size_t i) {
  return stage_dilations.empty() ? 1 : stage_dilations[i];
}

/// torchvision's _make_divisible: round to the nearest multiple of `divisor`, never below
/// `divisor`, never more than 10% below `value`.
inline int64_t make_divisible(double value, int64_t divisor) {
  int64_t rounded = std::max<int64_t>(
      divisor, static_cast<int64_t>(value + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(rounded) < 0.9 * value) {
    rounded += divisor;
  }
  return rounded;
}

}  // namespace mobilenet::detail
