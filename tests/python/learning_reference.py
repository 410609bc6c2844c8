"""The torchvision reference of the learning-parity test (tests/learning_parity.sh).

Trains torchvision's MobileNetV2 with the recipe coco_train uses by default, on a COCO-format
data set, and prints the validation mAP of the last epoch as JSON. The recipe, step by step as
mobilenet::Trainer does it:
  - data: every image of the annotation file, labels = categories of all its annotations (crowd
    included), classes ordered by category id;
  - train transform: PIL RGB -> resize((s, s), BILINEAR) (whole image, no crop) -> horizontal
    flip p=0.5 -> ToTensor -> ImageNet Normalize; eval: the same without the flip;
  - batches: shuffled every epoch, drop_last when the set is larger than a batch;
  - AdamW (betas 0.9/0.999, eps 1e-8), weight decay on weights with dim > 1 only;
  - lr per step: linear warm-up for warmup_epochs * steps, then cosine to 0 (LrSchedule "cosine");
  - BCE with logits (mean); eval: mAP = mean over classes with a positive of sklearn's AP.
With --init-out it first writes the initial weights (a plain dict of the state_dict) so the C++
side starts from the same ones (coco_train --weights); --init-in starts from such a file (runs
that differ only in data order, flips and dropout).

  /usr/bin/python3 learning_reference.py --data DIR --image-size 64 --width-mult 0.5 --batch-size 16 \
      --epochs 8 --lr 3e-3 --warmup-epochs 0.5 --seed 0 --init-out init.pt
"""
import argparse
import json
import math
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from sklearn.metrics import average_precision_score


class CocoMultiLabel(torch.utils.data.Dataset):
    def __init__(self, annotations, images, transform):
        d = json.load(open(annotations))
        ids = sorted(c["id"] for c in d["categories"])
        index = {c: k for k, c in enumerate(ids)}
        self.labels = {im["id"]: np.zeros(len(ids), np.float32) for im in d["images"]}
        for a in d["annotations"]:
            self.labels[a["image_id"]][index[a["category_id"]]] = 1
        self.files = [(f"{images}/{im['file_name']}", im["id"]) for im in d["images"]]
        self.transform = transform
        self.num_classes = len(ids)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path, image_id = self.files[i]
        return self.transform(Image.open(path).convert("RGB")), torch.from_numpy(self.labels[image_id])


def lr_at(step, base, warmup, total):
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * base * (1 + math.cos(math.pi * t))


def mean_ap(scores, targets):
    aps = [average_precision_score(targets[:, k], scores[:, k])
           for k in range(targets.shape[1]) if targets[:, k].sum() > 0]
    return float(np.mean(aps))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--width-mult", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup-epochs", type=float, default=0.5)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--init-out", default="")
    p.add_argument("--init-in", default="", help="start from these weights (written by --init-out)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    T = torchvision.transforms
    norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    size = (a.image_size, a.image_size)
    train_tf = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BILINEAR),
                          T.RandomHorizontalFlip(0.5), T.ToTensor(), norm])
    eval_tf = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BILINEAR), T.ToTensor(), norm])
    train = CocoMultiLabel(f"{a.data}/annotations/instances_train.json", f"{a.data}/train", train_tf)
    val = CocoMultiLabel(f"{a.data}/annotations/instances_val.json", f"{a.data}/val", eval_tf)
    model = torchvision.models.mobilenet_v2(num_classes=train.num_classes, width_mult=a.width_mult)
    if a.init_in:
        model.load_state_dict(torch.load(a.init_in))
    if a.init_out:
        torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, a.init_out)
    decay = [q for q in model.parameters() if q.dim() > 1]
    no_decay = [q for q in model.parameters() if q.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
    loader = torch.utils.data.DataLoader(train, batch_size=a.batch_size, shuffle=True,
                                         drop_last=len(train) > a.batch_size, num_workers=a.workers)
    val_loader = torch.utils.data.DataLoader(val, batch_size=a.batch_size, num_workers=a.workers)
    steps = len(loader)
    total, warmup = a.epochs * steps, min(a.epochs * steps, int(a.warmup_epochs * steps))
    step, start, history = 0, time.time(), []
    for epoch in range(a.epochs):
        model.train()
        for x, y in loader:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, a.lr, warmup, total)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        model.eval()
        scores, targets = [], []
        with torch.no_grad():
            for x, y in val_loader:
                scores.append(torch.sigmoid(model(x)))
                targets.append(y)
        m = mean_ap(torch.cat(scores).numpy(), torch.cat(targets).numpy())
        history.append(m)
        print(f"python epoch {epoch + 1}: mAP {m:.4f} ({time.time() - start:.0f} s)", flush=True)
    print(json.dumps({"map": history[-1], "history": history, "seconds": time.time() - start}))


if __name__ == "__main__":
    main()
