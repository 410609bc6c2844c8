#pragma once
/// \file nn/reduction.hpp
/// How a loss reduces its element-wise values (the losses' `reduction` option).

#include <stdexcept>
#include <string>

namespace mobilenet {

/// How a loss reduces its element-wise values, as in PyTorch's `reduction=` argument.
/// `none` keeps one value per element (per class for the soft-F1 loss).
enum class Reduction { none, mean, sum };

/// Parses "none" | "mean" | "sum" (command lines, configs). Throws std::invalid_argument otherwise.
inline Reduction reduction_from_string(const std::string& name) {
  if (name == "none") return Reduction::none;
  if (name == "mean") return Reduction::mean;
  if (name == "sum") return Reduction::sum;
  throw std::invalid_argument("unknown reduction '" + name + "' (expected none, mean or sum)");
}

/// The name reduction_from_string() accepts.
inline const char* to_string(Reduction r) {
  switch (r) {
    case Reduction::none: return "none";
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
  }
  return "?";
}

}  // namespace mobilenet
