#pragma once
/// \file fingerprint.hpp
/// A short fingerprint of a labelled data set, so a resumed run can tell that it is training on
/// the data it started with (the Trainer's resume contract records it).

#include <mobilenet/data/sample.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace mobilenet {

namespace detail {
// FNV-1a, 64 bit: not cryptographic, enough to notice another data set.
inline void fnv1a(uint64_t& h, const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
}
}  // namespace detail

/// 16 hex digits over the samples' ids and targets and the class names (order matters).
/// Example: `contract["train_data"] = data_fingerprint(samples, names);`
inline std::string data_fingerprint(const std::vector<Sample>& samples,
                                    const std::vector<std::string>& class_names) {
  uint64_t h = 14695981039346656037ull;
  for (const auto& name : class_names) detail::fnv1a(h, name.c_str(), name.size() + 1);
  for (const auto& s : samples) {
    detail::fnv1a(h, &s.id, sizeof s.id);
    detail::fnv1a(h, s.target.data(), s.target.size() * sizeof(float));
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace mobilenet
