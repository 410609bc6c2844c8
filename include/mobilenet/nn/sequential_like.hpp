#pragma once
/// \file nn/sequential_like.hpp
/// Marks our blocks that torchvision implements as nn.Sequential subclasses.

namespace mobilenet {

/// torchvision's Conv2dNormActivation is an nn.Sequential; tools that treat Sequentials as
/// mere containers (torchsummary's table, see summary.hpp) must treat ours the same way.
struct SequentialLike {
  virtual ~SequentialLike() = default;
};

}  // namespace mobilenet
