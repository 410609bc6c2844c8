"""Python side of benchmarks/images: PIL + torchvision transforms on the same JPEGs.

  python_baseline.py generate DIR N      writes N 640x480 quality-90 JPEGs to DIR
  python_baseline.py serve DIR N REPEATS serves the harness (benchmarks/bench_child.py):
    core MODE     -> per_core_img_per_s (one process, torch threads 1, per CPU second) and
                     per_core_wall_img_per_s (the same by wall clock)
    workers MODE  -> workers2_img_per_s (torch DataLoader, 2 worker processes, batch 32)
MODE: rrcS (RandomResizedCrop(S) + flip + normalize) or squareS (the multi-label default:
Resize((S, S)) of the whole image + flip + normalize).
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generate(d, n):
    from PIL import Image
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    for i in range(n):
        # Photo-like content: smooth fields, shapes, noise; ~60-90 KB at q90 like COCO.
        fx, fy = rng.uniform(10, 60, 2)
        img = np.stack([128 + 100 * np.sin(x / fx + i), 255 * x / 640 * rng.uniform(0.3, 1),
                        128 + 100 * np.cos(y / fy)], axis=2)
        for _ in range(15):
            cx, cy, r = rng.integers(0, 640), rng.integers(0, 480), rng.integers(10, 100)
            img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
        img += rng.normal(0, 8, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            os.path.join(d, "%05d.jpg" % i), quality=90)


class Files:
    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image
        with Image.open(self.paths[i]) as im:
            return self.transform(im.convert("RGB"))


def transform(mode):
    import torchvision.transforms as T
    if mode.startswith("rrc"):
        geometry = T.RandomResizedCrop(int(mode[3:]))
    elif mode.startswith("square"):
        s = int(mode[6:])
        geometry = T.Resize((s, s))
    else:
        raise ValueError("unknown mode " + mode)
    return T.Compose([geometry, T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])


def serve(d, n, repeats):
    import bench_child
    import torch
    torch.manual_seed(0)
    paths = [os.path.join(d, "%05d.jpg" % i) for i in range(n)]
    loaders = {}

    def core(mode):
        ds = Files(paths, transform(mode))
        for i in range(min(n, 20)):
            ds[i]
        t, c = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            for i in range(n):
                ds[i]
        return {"per_core_img_per_s": repeats * n / (time.process_time() - c),
                "per_core_wall_img_per_s": repeats * n / (time.perf_counter() - t)}

    def workers(mode):
        if mode not in loaders:
            loaders[mode] = torch.utils.data.DataLoader(
                Files(paths, transform(mode)), batch_size=32, num_workers=2, shuffle=True,
                persistent_workers=True)
            for _ in loaders[mode]:  # start the workers and warm the cache
                pass
        t = time.perf_counter()
        for _ in range(repeats):
            for _ in loaders[mode]:
                pass
        return {"workers2_img_per_s": repeats * n / (time.perf_counter() - t)}

    bench_child.serve({"core": core, "workers": workers})


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2], int(sys.argv[3]))
    else:
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
