"""Python sides of benchmarks/images, on the same JPEGs as the C++ side.

  python_baseline.py generate DIR N      writes N 640x480 quality-90 JPEGs to DIR
  python_baseline.py serve DIR N REPEATS serves the harness (benchmarks/bench_child.py)

Sides (each the fastest use of its library that a Python user would write):
  pil         Pillow + torchvision transforms (full decode; kept for continuity)
  pil_draft   PIL with JPEG draft mode (DCT-scaled decode) + one crop-and-resize call;
              run by the pillow-simd interpreter this is "pillow-simd + draft"
  simplejpeg  simplejpeg's DCT-scaled decode + PIL's crop-and-resize
  tvio        torchvision.io.decode_jpeg + torchvision.transforms.v2 on uint8 tensors
Every side ends the same way: flip (p = 0.5), float CHW, normalize with ImageNet statistics.

Commands:
  core SIDE MODE  -> per_core_img_per_s (torch threads 1, per CPU second) and
                     per_core_wall_img_per_s; -1 when the side's library is absent
  workers MODE    -> workers2_img_per_s (the pil side in a DataLoader, 2 worker processes)
  resize MODE     -> resize_ms: PIL's resize alone (median over all images, CPU time) from
                     the decode that pil_draft makes (draft scale), square modes
  agree SIDE MODE FILE K -> max_abs, mean_abs: the side's uint8 resize (no flip) of the first
                     K images against FILE, the C++ side's K x S x S x 3 uint8 output
MODE: rrcS (RandomResizedCrop(S), scale (0.08, 1), ratio (3/4, 4/3)) or squareS (the
multi-label default: Resize((S, S)) of the whole image).
"""
import importlib.util
import os
import random
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


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


def geometry(mode, width, height):
    """(left, top, crop width, crop height, output size) in full-resolution pixels."""
    if mode.startswith("square"):
        return 0, 0, width, height, int(mode[6:])
    if not mode.startswith("rrc"):
        raise ValueError("unknown mode " + mode)
    import torch
    import torchvision.transforms as T
    # get_params reads only the shape: a zero-stride view stands in for the image.
    shape = torch.empty(1, dtype=torch.uint8).expand(3, height, width)
    top, left, h, w = T.RandomResizedCrop.get_params(shape, (0.08, 1.0), (3 / 4, 4 / 3))
    return left, top, w, h, int(mode[3:])


def dct_factor(cw, ch, s):
    """The largest power-of-two reduction (at most 8) that keeps the crop >= s pixels each
    way: what PIL's draft() picks for the size it is asked for."""
    f = 8
    while f > 1 and (cw // f < s or ch // f < s):
        f //= 2
    return f


class Side:
    """One library's decode + resize to uint8; finish() adds flip, float and normalize."""

    def __init__(self, name):
        import torch
        self.torch = torch
        self.name = name
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)
        self._pil = {}  # mode -> the composed torchvision pipeline (pil side)
        if name == "pil":
            import torchvision.transforms as T
            self.T = T
        elif name == "tvio":
            import torchvision.io
            try:
                import torchvision.transforms.v2.functional as F
            except ImportError:  # torchvision < 0.15 (Debian's 0.14): the same call, v1
                import torchvision.transforms.functional as F
            self.io, self.F = torchvision.io, F

    def pil_uint8(self, path, mode, draft):
        from PIL import Image
        with Image.open(path) as im:
            width, height = im.size
            left, top, cw, ch, s = geometry(mode, width, height)
            if draft:
                f = dct_factor(cw, ch, s)
                im.draft("RGB", (max(1, width // f), max(1, height // f)))
            sx, sy = im.size[0] / width, im.size[1] / height
            box = (left * sx, top * sy, (left + cw) * sx, (top + ch) * sy)
            return np.asarray(im.convert("RGB").resize((s, s), Image.BILINEAR, box=box))

    def simplejpeg_uint8(self, path, mode):
        import simplejpeg
        from PIL import Image
        with open(path, "rb") as fh:
            data = fh.read()
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
        left, top, cw, ch, s = geometry(mode, width, height)
        f = dct_factor(cw, ch, s)
        arr = simplejpeg.decode_jpeg(data, "RGB", min_height=max(1, height // f),
                                     min_width=max(1, width // f))
        sx, sy = arr.shape[1] / width, arr.shape[0] / height
        box = (left * sx, top * sy, (left + cw) * sx, (top + ch) * sy)
        return np.asarray(Image.fromarray(arr).resize((s, s), Image.BILINEAR, box=box))

    def tvio_uint8(self, path, mode):
        img = self.io.decode_jpeg(self.io.read_file(path))
        left, top, cw, ch, s = geometry(mode, img.shape[2], img.shape[1])
        return self.F.resized_crop(img, top, left, ch, cw, [s, s], antialias=True)  # CHW

    def uint8(self, path, mode):
        """HWC uint8 numpy (PIL-based sides) or CHW uint8 tensor (tvio)."""
        if self.name == "pil":
            return self.pil_uint8(path, mode, draft=False)
        if self.name == "pil_draft":
            return self.pil_uint8(path, mode, draft=True)
        if self.name == "simplejpeg":
            return self.simplejpeg_uint8(path, mode)
        return self.tvio_uint8(path, mode)

    def __call__(self, path, mode):
        torch = self.torch
        if self.name == "pil":  # the torchvision transforms a Pillow user composes
            return self.pil_transform(mode)(path)
        img = self.uint8(path, mode)
        chw = img if self.name == "tvio" else torch.from_numpy(img).permute(2, 0, 1)
        if random.random() < 0.5:
            chw = chw.flip(2)
        return chw.float().div_(255).sub_(self.mean).div_(self.std)

    def pil_transform(self, mode):
        if mode not in self._pil:
            T = self.T
            if mode.startswith("rrc"):
                g = T.RandomResizedCrop(int(mode[3:]))
            else:
                g = T.Resize((int(mode[6:]), int(mode[6:])))
            t = T.Compose([g, T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
            from PIL import Image

            def run(path):
                with Image.open(path) as im:
                    return t(im.convert("RGB"))
            self._pil[mode] = run
        return self._pil[mode]


def available(name):
    if name == "simplejpeg":
        return importlib.util.find_spec("simplejpeg") is not None
    return True


class Files:
    def __init__(self, paths, side, mode):
        self.paths, self.side, self.mode = paths, side, mode

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.side(self.paths[i], self.mode)


def serve(d, n, repeats):
    import bench_child
    import PIL
    import torch
    torch.manual_seed(0)
    random.seed(0)
    # PIL's arrays are read-only; the sides only read them (float() copies).
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    paths = [os.path.join(d, "%05d.jpg" % i) for i in range(n)]
    sides, loaders = {}, {}

    def side(name):
        if name not in sides:
            sides[name] = Side(name)
        return sides[name]

    def core(name, mode):
        if not available(name):
            return {"per_core_img_per_s": -1, "per_core_wall_img_per_s": -1}
        s = side(name)
        for i in range(min(n, 20)):
            s(paths[i], mode)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            for p in paths:
                s(p, mode)
        return {"per_core_img_per_s": repeats * n / (time.process_time() - c),
                "per_core_wall_img_per_s": repeats * n / (time.perf_counter() - t)}

    def workers(mode):
        if mode not in loaders:
            loaders[mode] = torch.utils.data.DataLoader(
                Files(paths, side("pil"), mode), batch_size=32, num_workers=2, shuffle=True,
                persistent_workers=True)
            for _ in loaders[mode]:  # start the workers and warm the cache
                pass
        t = time.perf_counter()
        for _ in range(repeats):
            for _ in loaders[mode]:
                pass
        return {"workers2_img_per_s": repeats * n / (time.perf_counter() - t)}

    def agree(name, mode, file, k):
        if not available(name):
            return {"max_abs": -1, "mean_abs": -1}
        s, k = side(name), int(k)
        size = int(mode[6:])
        ref = np.fromfile(file, dtype=np.uint8).reshape(k, size, size, 3).astype(np.int16)
        worst, total = 0, 0.0
        for i in range(k):
            out = s.uint8(paths[i], mode)
            if name == "tvio":
                out = out.permute(1, 2, 0).numpy()
            diff = np.abs(np.asarray(out, dtype=np.int16) - ref[i])
            worst, total = max(worst, int(diff.max())), total + float(diff.mean())
        return {"max_abs": worst, "mean_abs": total / k}

    def resize(mode):
        from PIL import Image
        s = int(mode[6:])
        times = []
        for p in paths:
            with Image.open(p) as im:
                w, h = im.size
                f = dct_factor(w, h, s)
                im.draft("RGB", (max(1, w // f), max(1, h // f)))
                im = im.convert("RGB")
            im.resize((s, s), Image.BILINEAR)
            c = time.process_time()
            for _ in range(5):
                im.resize((s, s), Image.BILINEAR)
            times.append((time.process_time() - c) / 5 * 1e3)
        return {"resize_ms": float(np.median(times))}

    sj = importlib.util.find_spec("simplejpeg")
    extra = {"pil": PIL.__version__, "simplejpeg": "absent"}
    if sj is not None:
        import simplejpeg
        extra["simplejpeg"] = simplejpeg.__version__
    from PIL import features
    extra["pil_libjpeg_turbo"] = features.version("libjpeg_turbo") or "?"
    bench_child.serve({"core": core, "workers": workers, "agree": agree, "resize": resize}, extra_info=extra)


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2], int(sys.argv[3]))
    else:
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
