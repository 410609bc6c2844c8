#pragma once
/// \file benchmarks/physical_limit.hpp
/// The physical reference a benchmark prints beside its ratios (issue 21): the model's
/// arithmetic, the cores' fp32 peak and what a large GEMM reaches on them, so a figure reads
/// as "x GFLOP/s of y possible", not only "faster than Python".

#include <mobilenet/models/prepare.hpp>

#include <torch/torch.h>

#include "bench_util.hpp"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace bench {

/// Floating-point operations (2 per multiply-add) of one forward of `model` on an
/// n x 3 x h x w input: convolutions and linear layers only (activations, adds and the pool
/// are < 1% of MobileNet's arithmetic).
inline double forward_flops(const mobilenet::InferenceModel& model, int64_t n, int64_t h,
                            int64_t w) {
  using Node = mobilenet::InferenceNode;
  double flops = 0;
  auto walk = [&](auto& self, const std::vector<Node>& nodes, int64_t& hh, int64_t& ww) -> void {
    for (const auto& node : nodes) {
      if (node.kind == Node::Kind::kResidual) {
        int64_t bh = hh, bw = ww;
        self(self, node.body, bh, bw);
      } else if (node.kind == Node::Kind::kConv) {
        const int64_t kh = node.weight.size(2), kw = node.weight.size(3);
        hh = (hh + 2 * node.padding[0] - node.dilation[0] * (kh - 1) - 1) / node.stride[0] + 1;
        ww = (ww + 2 * node.padding[1] - node.dilation[1] * (kw - 1) - 1) / node.stride[1] + 1;
        // weight is C_out x C_in/groups x kh x kw: one multiply-add per element per output pixel.
        flops += 2.0 * double(n * hh * ww) * double(node.weight.numel());
      } else if (node.kind == Node::Kind::kLinear) {
        flops += 2.0 * double(n) * double(node.weight.numel());
      }
    }
  };
  walk(walk, model.nodes(), h, w);
  return flops;
}

/// GFLOP per image of one forward of features -> pool -> classifier at size x size, counted on
/// the folded model (what every side computes).
inline double forward_gflop_per_image(const torch::nn::Sequential& features,
                                      const torch::nn::Sequential& classifier, int64_t size) {
  const auto folded = mobilenet::prepare_for_inference(
      features, classifier,
      mobilenet::InferenceOptions()
          .backend(mobilenet::InferenceNode::Backend::kATen)
          .memory_format(mobilenet::InferenceMemoryFormat::kContiguous));
  return forward_flops(folded, 1, size, size) / 1e9;
}

/// The fp32 peak of `threads` cores, and how it was derived.
struct PeakFlops {
  double gflops = 0;
  std::string how;
};

inline PeakFlops fp32_peak(int threads) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  double mhz = 0;
  bool avx512 = false, avx2 = false;
  while (std::getline(in, line)) {
    if (mhz == 0 && line.rfind("cpu MHz", 0) == 0) mhz = std::stod(line.substr(line.find(':') + 1));
    if (line.rfind("flags", 0) == 0) {
      avx512 = avx512 || line.find(" avx512f") != std::string::npos;
      avx2 = avx2 || line.find(" avx2") != std::string::npos;
    }
  }
  const int lanes = avx512 ? 16 : avx2 ? 8 : 4;
  // Two FMA ports per core: Intel Xeon Scalable (Gold/Platinum, Skylake-SP on) and AMD Zen.
  // An assumption read from the vendors' documentation, not measured; the GEMM line is.
  const int fma_units = 2;
  PeakFlops p;
  p.gflops = threads * fma_units * lanes * 2.0 * mhz / 1000.0;
  char how[200];
  std::snprintf(how, sizeof how,
                "%d cores x %d FMA units x %d fp32 lanes (%s) x 2 flop x %.2f GHz (/proc/cpuinfo)",
                threads, fma_units, lanes, avx512 ? "AVX-512" : avx2 ? "AVX2" : "SSE", mhz / 1000);
  p.how = how;
  return p;
}

/// GFLOP/s of a 2048^3 float32 at::mm (LibTorch's BLAS) on the current threads: the fraction of
/// the peak that dense arithmetic reaches on these cores, median of 5.
inline double sgemm_gflops() {
  c10::InferenceMode guard;
  const int64_t k = 2048;
  const auto a = torch::randn({k, k}), b = torch::randn({k, k});
  auto c = torch::empty({k, k});
  const double ms = median_ms([&] { at::mm_out(c, a, b); }, 1, 5);
  return 2.0 * double(k * k * k) / (ms / 1e3) / 1e9;
}

/// Prints the reference lines: peak, GEMM ceiling, and the model's arithmetic per forward.
inline void print_physical_reference(int threads, double forward_gflop_per_image) {
  const PeakFlops peak = fp32_peak(threads);
  const double gemm = sgemm_gflops();
  std::printf("fp32 peak     %.0f GFLOP/s = %s\n", peak.gflops, peak.how.c_str());
  std::printf("GEMM ceiling  %.0f GFLOP/s measured (2048^3 at::mm, %d threads) = %.0f%% of peak%s\n",
              gemm, threads, 100 * gemm / peak.gflops,
              gemm > peak.gflops ? " (above it: the cores run faster than the clock reported)"
                                 : "");
  std::printf("model         %.3f GFLOP per image per forward (convolutions + linear, 2 per "
              "multiply-add)\n",
              forward_gflop_per_image);
  std::fflush(stdout);
}

}  // namespace bench
