"""Python side of benchmarks/inference: the strongest Python inference paths for MobileNetV2,
served round by round to the harness (benchmarks/bench_child.py).

  python_baseline.py SIZE CLASSES ONNX_FILE
Commands:
  prepare BATCH       -> prepare_s: builds every side for BATCH (tracing, compiling, sessions);
                         not timed against anyone
  latency BATCH RUNS  -> <side>_ms: median wall milliseconds of one forward, per side:
     frozen   torchvision mobilenet_v2, channels-last, torch.jit.trace + freeze +
              optimize_for_inference, under no_grad
     compile  the same model through torch.compile (inductor, freezing on: its documented CPU
              inference setting), under no_grad (torch >= 2 only)
     ort      onnxruntime on ONNX_FILE (the file mobilenet::export_onnx wrote), CPU provider,
              all graph optimizations, intra-op threads = the harness's, sequential
Each side gets the same float32 NCHW batch; a side that cannot run here answers -1.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bench_child  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402


def median_ms(fn, n, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return 1000 * times[len(times) // 2]


def main(size, classes, onnx_file):
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(num_classes=classes).eval()
    model = model.to(memory_format=torch.channels_last)
    sides = {}  # batch -> {"frozen": fn, ...}
    inputs = {}
    versions = {}
    try:
        import onnxruntime as ort
        versions["onnxruntime"] = ort.__version__
    except ImportError:
        ort = None
    has_compile = hasattr(torch, "compile")

    def prepare(batch):
        b = int(batch)
        t = time.perf_counter()
        x = torch.randn(b, 3, size, size)
        inputs[b] = x
        fns = {}
        with torch.no_grad():
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
            frozen(x)
        fns["frozen"] = lambda: frozen(x)
        if has_compile:
            import torch._inductor.config as inductor_config
            inductor_config.freezing = True
            compiled = torch.compile(model)
            with torch.no_grad():
                compiled(x)  # compiles for this batch size
            fns["compile"] = lambda: compiled(x)
        if ort is not None:
            so = ort.SessionOptions()
            so.intra_op_num_threads = bench_child.threads()
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(onnx_file, so, providers=["CPUExecutionProvider"])
            feed = {"images": x.numpy()}
            session.run(["logits"], feed)
            fns["ort"] = lambda: session.run(["logits"], feed)
        sides[b] = fns
        return {"prepare_s": time.perf_counter() - t}

    def latency(batch, runs):
        b, n = int(batch), int(runs)
        out = {}
        with torch.no_grad():
            for name in ("frozen", "compile", "ort"):
                fn = sides[b].get(name)
                out[name + "_ms"] = -1 if fn is None else median_ms(fn, n)
        return out

    bench_child.serve({"prepare": prepare, "latency": latency},
                      extra_info={"onnxruntime": versions.get("onnxruntime", "absent"),
                                  "torch_compile": "yes" if has_compile else "absent",
                                  "numpy": np.__version__})


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]), int(a[1]), a[2])
