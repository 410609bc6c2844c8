#!/usr/bin/python3
"""scikit-learn side of benchmarks/metrics, served to the harness (benchmarks/bench_child.py).
Times average_precision_score (mAP) and f1_score (micro, macro) on the matrices the C++
benchmark wrote:
    run N C   -> map_ms f1_ms map micro_f1 macro_f1   (best of repeats)
Usage: bench_metrics.py DIR   (DIR/scores_N_C.f32, DIR/targets_N_C.u8)
"""
import os
import sys
import time

import numpy as np
from sklearn.metrics import average_precision_score, f1_score

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bench_child  # noqa: E402


def best_ms(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best, out


def main():
    d = sys.argv[1]

    def run(n, c):
        n, c = int(n), int(c)
        s = np.fromfile(os.path.join(d, "scores_%d_%d.f32" % (n, c)), dtype=np.float32).reshape(n, c)
        y = np.fromfile(os.path.join(d, "targets_%d_%d.u8" % (n, c)), dtype=np.uint8).reshape(n, c)
        y = y.astype(np.int64)
        repeats = 3 if n <= 10000 else 1
        map_ms, m = best_ms(lambda: average_precision_score(y, s, average="macro"), repeats)
        pred = (s >= 0.5).astype(np.int64)
        f1_ms, f = best_ms(lambda: (f1_score(y, pred, average="micro"),
                                    f1_score(y, pred, average="macro")), repeats)
        # Thresholding is part of the C++ F1 timing, so time it here too.
        thr_ms, _ = best_ms(lambda: (s >= 0.5).astype(np.int64), repeats)
        return {"map_ms": map_ms, "f1_ms": f1_ms + thr_ms, "map": "%.12f" % m,
                "micro_f1": "%.12f" % f[0], "macro_f1": "%.12f" % f[1]}

    bench_child.serve({"run": run}, use_torch=False)


if __name__ == "__main__":
    main()
