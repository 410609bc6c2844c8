#pragma once
/// \file data/random.hpp
/// The data pipeline's random numbers: one splitmix64 generator, portable and cheap to seed,
/// so a sample's augmentation depends on (seed, epoch, index) alone: not on worker count,
/// batch order, sharding, platform or standard library (std::uniform_*_distribution is not
/// portable).
///
/// Example: `SampleRng rng(sample_seed(seed, epoch, index)); double u = rng.uniform(0, 1);`

#include <cstdint>

namespace mobilenet {
namespace detail {

/// One splitmix64 step (Steele, Lea and Flood, 2014): advances `state` and returns the next
/// output.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// splitmix64's output for state `z`, as a hash of `z`.
inline uint64_t splitmix64_hash(uint64_t z) { return splitmix64(z); }

}  // namespace detail

/// The seed of one sample's generator in one epoch: a hash of (seed, epoch, index).
inline uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index) {
  using detail::splitmix64_hash;
  return splitmix64_hash(splitmix64_hash(splitmix64_hash(seed) ^ uint64_t(epoch)) ^
                         uint64_t(index));
}

/// A small, portable generator (splitmix64): the same seed gives the same draws on every
/// platform and standard library.
class SampleRng {
 public:
  explicit SampleRng(uint64_t seed) : state_(seed) {}
  uint64_t next() { return detail::splitmix64(state_); }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * (double(next() >> 11) * (1.0 / 9007199254740992.0));
  }
  /// Uniform integer in [lo, hi) (hi > lo).
  int64_t randint(int64_t lo, int64_t hi) {
    return lo + int64_t(next() % uint64_t(hi - lo));
  }

 private:
  uint64_t state_;
};

}  // namespace mobilenet
