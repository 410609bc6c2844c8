"""The torchvision reference of the learning-parity test (tests/learning_parity.sh).

Trains torchvision's MobileNetV2 with the recipe coco_train uses by default, on a COCO-format
data set, and prints the validation mAP of the last epoch as JSON. The recipe, step by step as
mobilenet::Trainer does it:
  - data: every image of the annotation file, labels = categories of all its annotations (crowd
    included), classes ordered by category id;
  - train transform: PIL RGB -> resize((s, s), BILINEAR) (whole image, no crop) -> horizontal
    flip p=0.5 -> ToTensor -> ImageNet Normalize; eval: the same without the flip;
  - batches: shuffled every epoch, drop_last when the set is larger than a batch;
  - seed policy (coco_train --seed): the order of epoch e is a Fisher-Yates shuffle driven by
    splitmix64 seeded with sample_seed(seed, e, -1), sample i flips when the first uniform of
    splitmix64(sample_seed(seed, e, i)) is < 0.5 (mobilenet::sample_seed, SampleRng), and torch's
    generator is seeded with `seed` just before the first step (TrainerOptions::seed), so
    dropout draws the same masks. Both sides thus see the same batches, flips and masks, and
    differ only by floating-point rounding, which training amplifies;
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

import torch_files  # LibTorch-written files, weights only


M64 = (1 << 64) - 1


def splitmix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def sample_seed(seed, epoch, index):
    """mobilenet::sample_seed: a hash of (seed, epoch, index); index -1 is 2^64 - 1."""
    return splitmix(splitmix(splitmix(seed) ^ (epoch & M64)) ^ (index & M64))


class SampleRng:
    """mobilenet::SampleRng (splitmix64 stream)."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)

    def randint(self, lo, hi):
        return lo + self.next() % (hi - lo)


def epoch_order(n, seed, epoch):
    order = list(range(n))
    rng = SampleRng(sample_seed(seed, epoch, -1))
    for i in range(n - 1, 0, -1):
        j = rng.randint(0, i + 1)
        order[i], order[j] = order[j], order[i]
    return order


class EpochBatches:
    """Batches of (index, epoch) in coco_train's order; set `epoch` before each epoch."""

    def __init__(self, n, batch, seed):
        self.n, self.batch, self.seed, self.epoch = n, batch, seed, 0

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch)
        full = self.n // self.batch if self.n > self.batch else 1
        for b in range(full):
            yield [(i, self.epoch) for i in order[b * self.batch:(b + 1) * self.batch]]

    def __len__(self):
        return self.n // self.batch if self.n > self.batch else 1


class CocoMultiLabel(torch.utils.data.Dataset):
    def __init__(self, annotations, images, transform, flip_seed=None):
        d = json.load(open(annotations))
        ids = sorted(c["id"] for c in d["categories"])
        index = {c: k for k, c in enumerate(ids)}
        self.labels = {im["id"]: np.zeros(len(ids), np.float32) for im in d["images"]}
        for a in d["annotations"]:
            self.labels[a["image_id"]][index[a["category_id"]]] = 1
        self.files = [(f"{images}/{im['file_name']}", im["id"]) for im in d["images"]]
        self.transform = transform
        self.flip_seed = flip_seed
        self.num_classes = len(ids)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, key):
        i, epoch = key if isinstance(key, tuple) else (key, None)
        path, image_id = self.files[i]
        image = self.transform[0](Image.open(path).convert("RGB"))
        if epoch is not None and SampleRng(sample_seed(self.flip_seed, epoch, i)).uniform() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        return self.transform[1](image), torch.from_numpy(self.labels[image_id])


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
    # (geometry, then tensor): the training flip sits between them, drawn by the seed policy.
    tf = (T.Resize(size, interpolation=T.InterpolationMode.BILINEAR), T.Compose([T.ToTensor(), norm]))
    train = CocoMultiLabel(f"{a.data}/annotations/instances_train.json", f"{a.data}/train", tf, a.seed)
    val = CocoMultiLabel(f"{a.data}/annotations/instances_val.json", f"{a.data}/val", tf)
    model = torchvision.models.mobilenet_v2(num_classes=train.num_classes, width_mult=a.width_mult)
    if a.init_in:
        model.load_state_dict(torch_files.load(a.init_in))
    if a.init_out:
        torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, a.init_out)
    decay = [q for q in model.parameters() if q.dim() > 1]
    no_decay = [q for q in model.parameters() if q.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
    # The loaders get their own generator: the default one is left to dropout alone.
    batches = EpochBatches(len(train), a.batch_size, a.seed)
    loader = torch.utils.data.DataLoader(train, batch_sampler=batches, num_workers=a.workers,
                                         generator=torch.Generator())
    val_loader = torch.utils.data.DataLoader(val, batch_size=a.batch_size, num_workers=a.workers,
                                             generator=torch.Generator())
    steps = len(loader)
    total, warmup = a.epochs * steps, min(a.epochs * steps, int(a.warmup_epochs * steps))
    step, start, history, losses = 0, time.time(), [], []
    torch.manual_seed(a.seed)  # TrainerOptions::seed: dropout's masks
    for epoch in range(a.epochs):
        batches.epoch = epoch
        model.train()
        loss_sum, loss_n = 0.0, 0
        for x, y in loader:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, a.lr, warmup, total)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
        model.eval()
        scores, targets = [], []
        with torch.no_grad():
            for x, y in val_loader:
                scores.append(torch.sigmoid(model(x)))
                targets.append(y)
        m = mean_ap(torch.cat(scores).numpy(), torch.cat(targets).numpy())
        history.append(m)
        losses.append(loss_sum / loss_n)
        print(f"python epoch {epoch + 1}: train loss {losses[-1]:.6f} mAP {m:.4f} "
              f"({time.time() - start:.0f} s)", flush=True)
    print(json.dumps({"map": history[-1], "history": history, "train_loss": losses,
                      "seconds": time.time() - start}))


if __name__ == "__main__":
    main()
