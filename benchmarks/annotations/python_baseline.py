"""Python baseline for bench_annotations: json.load + the same mapping to multi-hot targets.

  python_baseline.py ANNOTATION_FILE
prints "seconds <s>", "cpu_seconds <s>", "peak_rss_mb <MB>" and "checksum <sum of targets>".
"""
import json
import resource
import sys
import time

import numpy as np


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
    print(f"seconds {seconds:.4f}")
    print(f"cpu_seconds {cpu:.4f}")
    print(f"peak_rss_mb {peak_mb:.1f}")
    print(f"checksum {float(targets.sum()):.0f}")


if __name__ == "__main__":
    main(sys.argv[1])
