#pragma once
/// \file
/// Sorting (score, label) pairs of one class for the ranking metrics, without allocations per
/// element: each pair is one 64-bit key, (order-preserving bits of the float score) << 1 | label,
/// sorted by an LSD radix sort. Equal scores stay adjacent whatever their labels, which is all
/// the tie-grouped metrics need.

#include <array>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace mobilenet {
namespace detail {

/// Maps a float to an unsigned key with the same order (NaN excluded beforehand). -0 and +0
/// map to the same key because they are the same score (a tie) for the metrics.
inline uint32_t metrics_float_key(float f) {
  f += 0.0f;  // -0 -> +0
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/// Inverse of metrics_float_key().
inline float metrics_key_float(uint32_t k) {
  const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// Sorts 33-bit keys ascending. `keys` and `tmp` have the same size; returns the buffer that
/// holds the result (one of the two). Radix passes whose digit is constant are skipped, so
/// tie-heavy scores sort faster.
inline uint64_t* metrics_sort_keys(std::vector<uint64_t>& keys, std::vector<uint64_t>& tmp) {
  const size_t n = keys.size();
  if (n < 256) {  // below this, comparison sorting wins over three histogram passes
    std::sort(keys.begin(), keys.end());
    return keys.data();
  }
  constexpr int kBits = 11;
  constexpr size_t kBuckets = size_t{1} << kBits;
  constexpr int kPasses = 3;  // 33 bits
  static thread_local std::array<std::array<size_t, kBuckets>, kPasses> hist;
  for (auto& h : hist) h.fill(0);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t k = keys[i];
    ++hist[0][k & (kBuckets - 1)];
    ++hist[1][(k >> kBits) & (kBuckets - 1)];
    ++hist[2][(k >> (2 * kBits)) & (kBuckets - 1)];
  }
  uint64_t* src = keys.data();
  uint64_t* dst = tmp.data();
  for (int pass = 0; pass < kPasses; ++pass) {
    auto& h = hist[static_cast<size_t>(pass)];
    const int shift = pass * kBits;
    if (h[(src[0] >> shift) & (kBuckets - 1)] == n) continue;  // all keys share this digit
    size_t sum = 0;
    for (auto& count : h) {
      const size_t c = count;
      count = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; ++i) {
      const uint64_t k = src[i];
      dst[h[(k >> shift) & (kBuckets - 1)]++] = k;
    }
    std::swap(src, dst);
  }
  return src;
}

}  // namespace detail
}  // namespace mobilenet
