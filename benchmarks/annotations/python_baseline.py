"""Python baseline for bench_annotations: json.load + the same mapping to multi-hot targets.

Served to the harness (benchmarks/bench_child.py), one process per load so that the peak RSS
is that of one load:
  load ANNOTATION_FILE -> seconds, cpu_seconds, peak_rss_mb, checksum (sum of the targets)
"""
import json
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bench_child  # noqa: E402


def main(path):
    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    with open(path) as f:
        data = json.load(f)
    # Contiguous class indices in ascending category id order (COCO's 90 ids -> 80 classes).
    ids = sorted(c["id"] for c in data["categories"])
    index = {cid: k for k, cid in enumerate(ids)}
    row = {img["id"]: i for i, img in enumerate(data["images"])}
    targets = np.zeros((len(data["images"]), len(ids)), dtype=np.float32)
    for a in data["annotations"]:
        targets[row[a["image_id"]], index[a["category_id"]]] = 1.0
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"seconds": f"{seconds:.4f}", "cpu_seconds": f"{cpu:.4f}",
            "peak_rss_mb": f"{peak_mb:.1f}", "checksum": f"{float(targets.sum()):.0f}"}


if __name__ == "__main__":
    bench_child.serve({"load": main}, use_torch=False)
