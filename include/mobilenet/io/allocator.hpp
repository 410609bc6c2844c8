#pragma once
/// \file io/allocator.hpp
/// The process's memory allocator, set for tensor work. glibc serves every block above its
/// mmap threshold (128 KiB to 32 MiB, adaptive) with a fresh mmap and unmaps it when freed,
/// so a training step or a batch-32 forward pays page faults to zero its activations again
/// each time. On the 2-core Xeon VM (LibTorch 2.11, docs/benchmarks.md, 2026-12-07) a batch-32
/// training step went from 14.1 to 29.7 img/s with this setting (torchvision's from 22.4 to
/// 28.9). Kept on the heap and never trimmed, the pages stay; the process then holds its peak
/// memory until it exits.

#include <malloc.h>

#include <string>
#include <utility>
#include <vector>

namespace mobilenet {

/// Large blocks from the heap, never trimmed, at most 2 arenas. Call it once, early in main
/// (coco_train, predict and the benchmarks do); it changes this process only.
/// Example: `int main() { mobilenet::keep_activations_on_heap(); ... }`
inline void keep_activations_on_heap() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
  mallopt(M_ARENA_MAX, 2);
}

/// The same setting as glibc's environment variables, for a process that cannot call
/// mallopt (a Python peer: `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=... python3 ...`).
inline std::vector<std::pair<std::string, std::string>> keep_activations_on_heap_env() {
  // glibc reads the threshold as a size_t; its largest value means "never trim", as -1 does
  // through mallopt.
  return {{"MALLOC_MMAP_MAX_", "0"},
          {"MALLOC_TRIM_THRESHOLD_", std::to_string(static_cast<size_t>(-1))},
          {"MALLOC_ARENA_MAX", "2"}};
}

}  // namespace mobilenet
