"""Python side of benchmarks/epoch: one training epoch of torchvision's MobileNetV2 on a
COCO-format set of 640x480 JPEGs, with coco_train's default recipe (whole image resized to
SIZE x SIZE + horizontal flip + ImageNet normalize, BCE, AdamW), data through
torch.utils.data.DataLoader(num_workers=W), model and batches NCHW (the Trainer's default).

  python_baseline.py generate DIR N CLASSES   writes DIR/images/*.jpg and DIR/instances.json
                                              (one process per core)
  python_baseline.py serve DIR SIZE BATCH [DEVICE AMP(0/1) CHANNELS_LAST(0/1)]
                                              serves the harness (benchmarks/bench_child.py):
    epoch WORKERS -> epoch_img_per_s, epoch_seconds (from the first batch request to the
                     last optimizer step, worker start-up included, as on the C++ side)
On CUDA the DataLoader pins its batches and they are copied without blocking; the epoch ends
after torch.cuda.synchronize(). AMP: torch.autocast(float16) + GradScaler, as on the C++ side.
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _image(job):
    """Writes image i (its own random stream, so images can be made in parallel); returns its
    (category, radius) pairs."""
    from PIL import Image
    d, i, classes = job
    rng = np.random.default_rng([0, i])
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    fx, fy = rng.uniform(10, 60, 2)
    img = np.stack([128 + 100 * np.sin(x / fx + i), 255 * x / 640 * rng.uniform(0.3, 1),
                    128 + 100 * np.cos(y / fy)], axis=2)
    objects = []
    for k in rng.choice(classes, size=rng.integers(1, 4), replace=False):
        cx, cy, r = rng.integers(0, 640), rng.integers(0, 480), rng.integers(30, 120)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = (37 * k % 256, 91 * k % 256, 53 * k % 256)
        objects.append((int(k), int(r)))
    img += rng.normal(0, 8, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
        os.path.join(d, "images", "%05d.jpg" % i), quality=90)
    return objects


def generate(d, n, classes):
    import multiprocessing
    n, classes = int(n), int(classes)
    os.makedirs(os.path.join(d, "images"), exist_ok=True)
    with multiprocessing.Pool(os.cpu_count()) as pool:
        per_image = pool.map(_image, [(d, i, classes) for i in range(n)])
    images, annotations = [], []
    for i, objects in enumerate(per_image):
        for k, r in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": k + 1,
                                "iscrowd": 0, "area": float(r * r), "bbox": [0, 0, 1, 1]})
        images.append({"id": i + 1, "file_name": "%05d.jpg" % i, "width": 640, "height": 480})
    cats = [{"id": k + 1, "name": "class%d" % k} for k in range(classes)]
    with open(os.path.join(d, "instances.json"), "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": cats}, f)


def serve(d, size, batch, device="cpu", amp="0", channels_last="0"):
    import torch
    import torchvision
    import torchvision.transforms as T
    from PIL import Image
    import bench_child

    size, batch = int(size), int(batch)
    dev, amp, channels_last = torch.device(device), amp == "1", channels_last == "1"
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    meta = json.load(open(os.path.join(d, "instances.json")))
    ncls = len(meta["categories"])
    labels = {im["id"]: np.zeros(ncls, np.float32) for im in meta["images"]}
    for a in meta["annotations"]:
        labels[a["image_id"]][a["category_id"] - 1] = 1
    files = [(os.path.join(d, "images", im["file_name"]), labels[im["id"]]) for im in meta["images"]]
    tf = T.Compose([T.Resize((size, size)), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return len(files)

        def __getitem__(self, i):
            path, y = files[i]
            with Image.open(path) as im:
                return tf(im.convert("RGB")), torch.from_numpy(y)

    model = torchvision.models.mobilenet_v2(num_classes=ncls).to(dev, memory_format=fmt)
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4},
                             {"params": rest, "weight_decay": 0.0}], lr=1e-3)

    use_scaler = amp and cuda
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):  # 2.3+
        scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    else:
        scaler = torch.cuda.amp.GradScaler(enabled=use_scaler)
    ac_dtype = torch.float16 if cuda else torch.bfloat16

    def epoch(workers):
        loader = torch.utils.data.DataLoader(Data(), batch_size=batch, shuffle=True, drop_last=True,
                                             num_workers=int(workers), pin_memory=cuda)
        model.train()
        n, start = 0, time.perf_counter()
        for x, y in loader:
            x = x.to(dev, non_blocking=True).contiguous(memory_format=fmt)
            y = y.to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=ac_dtype, enabled=amp):
                logits = model(x)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            n += x.shape[0]
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        return {"epoch_img_per_s": n / seconds, "epoch_seconds": seconds}

    bench_child.serve({"epoch": epoch})


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "generate":
        generate(*a[1:])
    else:
        serve(*a[1:])
