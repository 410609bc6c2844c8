#pragma once
/// \file sample.hpp
/// One labelled image as the data pipeline sees it, independent of where labels came from.

#include <cstdint>
#include <string>
#include <vector>

namespace mobilenet {

/// An image file, its multi-hot (or soft, values in [0, 1]) target over the class space,
/// and the id it carries in its annotation file.
/// Example: `Sample{"val2017/000000000139.jpg", {0, 1, 0.5f}, 139}`.
struct Sample {
  std::string path;
  std::vector<float> target;
  int64_t id = 0;
};

}  // namespace mobilenet
