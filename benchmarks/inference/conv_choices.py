"""Per-convolution kernel choices for torchvision's MobileNetV2 at batch 1, on one torch.

What LibTorch's kernels can reach (the limit behind docs/benchmarks.md, issue 21): every
convolution, BatchNorm folded, is timed on its real NHWC input, with its ReLU6, through
  mkldnn     torch.mkldnn_convolution (what prepare_for_inference's kMkldnn calls)
  aten       torch.conv2d
  gemm       one addmm on the (H*W) x C view (1x1 convolutions only; kGemm)
  prepacked  mkldnn._convolution_pointwise with a prepacked weight and fused hardtanh (2.x)
and the sums per kind and of the per-layer best are printed.

  .venv-torch2/bin/python benchmarks/inference/conv_choices.py [--threads 2] [--size 224]
Run it on a quiet machine; medians of 40 calls after 10 warm-up calls.
"""
import argparse
import collections
import time

import numpy as np
import torch
import torchvision
from torch.nn.utils.fusion import fuse_conv_bn_eval


def median_ms(fn):
    for _ in range(10):
        fn()
    times = []
    for _ in range(40):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = torchvision.models.mobilenet_v2(num_classes=80).eval()
    convs = []  # [conv, bn, name]
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            convs.append([mod, None, name])
        if isinstance(mod, torch.nn.BatchNorm2d):
            convs[-1][1] = mod
    shapes = []
    hooks = [c.register_forward_hook(lambda m, i, o: shapes.append(i[0].shape)) for c, _, _ in convs]
    with torch.no_grad():
        model(torch.randn(1, 3, a.size, a.size))
    for h in hooks:
        h.remove()
    has_prepacked = hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    per_kind = collections.defaultdict(lambda: collections.defaultdict(float))
    best_without, best_with = 0.0, 0.0
    with torch.inference_mode():
        for (c, bn, name), shape in zip(convs, shapes):
            f = fuse_conv_bn_eval(c, bn)
            # The projections (last conv of a block) have no activation.
            act = not (name.endswith("conv.2") or (name.endswith("conv.1") and "features.1." in name))
            kind = "depthwise" if c.groups > 1 else ("1x1" if c.kernel_size == (1, 1) else "3x3 stem")
            x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
            w = f.weight.contiguous(memory_format=torch.channels_last)
            b = f.bias
            relu6 = (lambda y: y.clamp_(0, 6)) if act else (lambda y: y)
            pad, stride, dil = list(c.padding), list(c.stride), list(c.dilation)
            cands = {
                "mkldnn": lambda: relu6(torch.mkldnn_convolution(x, w, b, pad, stride, dil, c.groups)),
                "aten": lambda: relu6(torch.conv2d(x, w, b, stride, pad, dil, c.groups)),
            }
            if kind == "1x1":
                wt = f.weight.reshape(f.weight.shape[0], -1).t()
                cands["gemm"] = lambda: relu6(torch.addmm(b, x.permute(0, 2, 3, 1).reshape(-1, shape[1]), wt))
            times = {k: median_ms(fn) for k, fn in cands.items()}
            best = min(times.values())
            if has_prepacked:
                wp = torch._C._nn.mkldnn_reorder_conv2d_weight(f.weight.to_mkldnn(), pad, stride, dil,
                                                               c.groups, list(shape))
                attr, scalars = ("hardtanh", [0.0, 6.0]) if act else ("none", [])
                times["prepacked"] = median_ms(lambda: torch.ops.mkldnn._convolution_pointwise(
                    x, wp, b, pad, stride, dil, c.groups, attr, scalars, ""))
            for k, v in times.items():
                per_kind[kind][k] += v
            best_without += best
            best_with += min(times.values())
    print(f"torch {torch.__version__}, {a.threads} threads, batch 1, {a.size}x{a.size}, NHWC, "
          "ms summed over layers (activation included)")
    for kind, d in per_kind.items():
        print(f"  {kind:10s} " + ", ".join(f"{k} {v:.3f}" for k, v in d.items()))
    print(f"  best per layer of mkldnn/aten/gemm: {best_without:.3f} ms")
    if has_prepacked:
        print(f"  best per layer with prepacked too:  {best_with:.3f} ms")


if __name__ == "__main__":
    main()
