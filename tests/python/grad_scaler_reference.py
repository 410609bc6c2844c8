"""Reference runs of PyTorch's GradScaler, for tests/grad_scaler_fixture.hpp (test_trainer on the
CPU, test_cuda on CUDA). Writes tests/data/grad_scaler.txt, which is committed.

  /usr/bin/python3 tests/python/grad_scaler_reference.py [--impl auto|torch|formulas]
                                                         [--device cpu|cuda] [--out FILE]

--impl torch drives PyTorch's own class (torch.amp.GradScaler(device) in 2.3+, else
torch.cuda.amp.GradScaler, which needs CUDA). --impl formulas drives the same loop with a
transcription of its documented rules, for LibTorch 1.13's CPU (which lacks the two fused AMP
kernels):
  - scale(loss) = loss * scale; the scale is a float32 tensor;
  - unscale_: grads *= float32(1 / double(scale)); found_inf = any grad inf/NaN;
  - step: unscale_ if not yet done this iteration; optimizer.step() only when found_inf == 0;
  - update: found_inf -> scale *= backoff_factor, tracker = 0; else tracker += 1 and when it
    reaches growth_interval: scale = float32(scale * growth_factor) unless that is inf, tracker = 0.
scripts/device_check.sh reruns this with --impl torch --device cuda and compares the two files.

Scenarios: two float32 parameters (and an unused one, whose grad stays None) trained with
SGD(momentum 0.5). The loss is sum(p.half() * c.half()).float() per parameter ("fp16": the
scaled gradient crosses fp16, where a big scale overflows to inf) or sum(p * c) ("fp32").
Steps with clip > 0 unscale first, clip the global grad norm to it, then step.

File format, one record per line:
  scenario NAME DTYPE init_scale growth_factor backoff_factor growth_interval lr
  init p0 V... / init p1 V...              the parameters' initial values (p1 is 2x3)
  step K clip MAXNORM c0 V... c1 V...      the coefficients of step K
  after K skipped 0|1 scale S tracker T norm N p0 V... p1 V...
Numbers are float32 values written with repr(): they read back exactly.
"""
import argparse
import math
import os
import sys

import torch

INF, NAN = float("inf"), float("nan")

# name, dtype, (init_scale, growth, backoff, interval), lr, steps: (clip, c0 [4], c1 [6])
SCENARIOS = [
    ("fp16_defaults", "fp16", (65536.0, 2.0, 0.5, 3), 0.25, [
        (0, [1.0, 0.5, -1.0, 0.25], [0.5] * 6),          # 65536 is inf in fp16: skipped
        (0, [1.5, 0.5, -1.0, 0.25], [0.25, -0.5, 1, 1, 0.75, -0.25]),
        (0, [0.5, 0.5, 0.5, 0.5], [1, 1, 1, -1, -1, -1]),
        (0, [1.0, -1.5, 0.25, 1.25], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),  # 3 clean: scale grows
        (0, [1.0, 1.0, 1.0, 1.0], [0.25] * 6),            # 65536 again: skipped
        (0, [3.0, 0.5, 0.5, 0.5], [0.25] * 6),            # 32768 * 3 overflows fp16
        (0, [NAN, 0.5, 0.5, 0.5], [0.25] * 6),            # NaN
        (0, [0.75, 0.5, -0.5, 1.0], [0.5, -0.5, 0.5, -0.5, 0.5, -0.5]),
        (2.0, [1.75, 1.25, -1.5, 0.5], [1.5, 1.5, -1.5, 1.0, 0.5, 0.25]),   # clipped
        (0.5, [0.25, 0.5, 0.75, 1.0], [1, 1, 1, 1, 1, 1]),                 # clipped, grows
        (1.0, [4.5, 0.5, 0.5, 0.5], [0.25] * 6),          # 16384 * 4.5 overflows: skipped
        (10.0, [0.5, 0.25, 0.125, 1.0], [0.5] * 6),       # clip above the norm: no change
    ]),
    # Factors that are not powers of two: the float32 rounding of the scale shows.
    ("fp16_odd_factors", "fp16", (3000.0, 1.7, 0.3, 2), 0.1, [
        (0, [30.0, 1.0, 1.0, 1.0], [1.0] * 6),            # 90000 overflows fp16
        (0, [1.0, 2.0, 3.0, 4.0], [0.5] * 6),
        (0, [1.0, 2.0, 3.0, 4.0], [0.5] * 6),             # grows to 900 * 1.7
        (0, [1.0, 2.0, 3.0, 4.0], [0.5] * 6),
        (0, [1.0, 2.0, 3.0, 4.0], [0.5] * 6),             # grows again
        (0, [40.0, 1.0, 1.0, 1.0], [1.0] * 6),            # 2601 * 40 overflows
        (0.75, [1.0, -2.0, 3.0, -4.0], [0.5] * 6),
        (0, [INF, 1.0, 1.0, 1.0], [1.0] * 6),
        (0, [1.0, 2.0, 3.0, 4.0], [0.5] * 6),
        (0, [1.0, 2.0, 3.0, 4.0], [0.5] * 6),
    ]),
    # At 2^126 a growth by 4 would reach float32's inf: the scale must stay.
    ("fp32_growth_cap", "fp32", (2.0 ** 126, 4.0, 0.5, 1), 0.5, [
        (0, [1.0, 0.5, 0.25, 0.125], [0.5] * 6),
        (0, [1.0, 0.5, 0.25, 0.125], [0.5] * 6),
        (0, [INF, 0.5, 0.25, 0.125], [0.5] * 6),
        (0, [1.0, 0.5, 0.25, 0.125], [0.5] * 6),          # 2^125 * 4 = 2^127: grows
        (0, [1.0, 0.5, 0.25, 0.125], [0.5] * 6),          # 2^127 * 4: stays
    ]),
]


class FormulaScaler:
    """GradScaler's documented rules (see the module docstring), for CPUs without its kernels."""

    def __init__(self, init_scale, growth_factor, backoff_factor, growth_interval):
        self.scale_ = torch.tensor(init_scale, dtype=torch.float32)
        self.growth, self.backoff, self.interval = growth_factor, backoff_factor, growth_interval
        self.tracker = 0
        self.unscaled = False
        self.found_inf = False

    def scale(self, loss):
        return loss * self.scale_

    def unscale_(self, optimizer):
        if self.unscaled:
            raise RuntimeError("unscale_() has already been called since the last update()")
        self.unscaled = True
        inv = self.scale_.double().reciprocal().float()
        found = False
        with torch.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    found = found or not bool(torch.isfinite(p.grad).all())
                    p.grad.mul_(inv)
        self.found_inf = found

    def step(self, optimizer):
        if not self.unscaled:
            self.unscale_(optimizer)
        if not self.found_inf:
            optimizer.step()

    def update(self):
        if self.found_inf:
            self.scale_ = (self.scale_.double() * self.backoff).float()
            self.tracker = 0
        else:
            self.tracker += 1
            if self.tracker == self.interval:
                grown = (self.scale_.double() * self.growth).float()
                if math.isfinite(float(grown)):
                    self.scale_ = grown
                self.tracker = 0
        self.unscaled = False
        self.found_inf = False

    def get_scale(self):
        return float(self.scale_)

    def _get_growth_tracker(self):
        return self.tracker


def torch_scaler(device, init_scale, growth_factor, backoff_factor, growth_interval):
    kw = dict(init_scale=init_scale, growth_factor=growth_factor, backoff_factor=backoff_factor,
              growth_interval=growth_interval)
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device, **kw)
    if device != "cuda" or not torch.cuda.is_available():
        sys.exit("--impl torch needs PyTorch >= 2.3 or CUDA (torch.cuda.amp.GradScaler)")
    return torch.cuda.amp.GradScaler(**kw)


def fmt(values):
    return " ".join(repr(float(v)) for v in values)


def run(impl, device, out):
    lines = []
    for name, dtype, (init, growth, backoff, interval), lr, steps in SCENARIOS:
        lines.append("scenario %s %s %s %s %s %d %s" % (name, dtype, repr(init), repr(growth),
                                                        repr(backoff), interval, repr(lr)))
        p0 = torch.tensor([0.5, -1.0, 2.0, 0.25], device=device, requires_grad=True)
        p1 = torch.tensor([[1.0, -0.5, 0.25], [2.0, 1.5, -1.0]], device=device, requires_grad=True)
        unused = torch.zeros(3, device=device, requires_grad=True)
        lines.append("init p0 " + fmt(p0.detach().cpu().flatten()))
        lines.append("init p1 " + fmt(p1.detach().cpu().flatten()))
        opt = torch.optim.SGD([p0, p1, unused], lr=lr, momentum=0.5)
        if impl == "torch":
            scaler = torch_scaler(device, init, growth, backoff, interval)
        else:
            scaler = FormulaScaler(init, growth, backoff, interval)
        for k, (clip, c0, c1) in enumerate(steps):
            lines.append("step %d clip %s c0 %s c1 %s" % (k, repr(float(clip)), fmt(c0), fmt(c1)))
            opt.zero_grad(set_to_none=True)
            t0 = torch.tensor(c0, device=device)
            t1 = torch.tensor(c1, device=device).view(2, 3)
            if dtype == "fp16":
                loss = (p0.half() * t0.half()).float().sum() + (p1.half() * t1.half()).float().sum()
            else:
                loss = (p0 * t0).sum() + (p1 * t1).sum()
            scaler.scale(loss).backward()
            norm = 0.0
            if clip > 0:
                scaler.unscale_(opt)
                norm = float(torch.nn.utils.clip_grad_norm_([p0, p1, unused], clip))
            before = [p0.detach().clone(), p1.detach().clone()]
            scaler.step(opt)
            skipped = all(torch.equal(b, p.detach()) for b, p in zip(before, [p0, p1]))
            scaler.update()
            assert unused.grad is None
            lines.append("after %d skipped %d scale %s tracker %d norm %s p0 %s p1 %s" % (
                k, int(skipped), repr(float(scaler.get_scale())), int(scaler._get_growth_tracker()),
                repr(norm), fmt(p0.detach().cpu().flatten()), fmt(p1.detach().cpu().flatten())))
    header = ("# written by tests/python/grad_scaler_reference.py --impl %s --device %s "
              "(torch %s); read by tests/grad_scaler_fixture.hpp" % (impl, device, torch.__version__))
    with open(out, "w") as f:
        f.write(header + "\n" + "\n".join(lines) + "\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--impl", choices=["auto", "torch", "formulas"], default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "grad_scaler.txt"))
    a = ap.parse_args()
    impl = a.impl
    if impl == "auto":
        has_cpu_scaler = hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler")
        impl = "torch" if (a.device == "cuda" or has_cpu_scaler) else "formulas"
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    run(impl, a.device, a.out)


if __name__ == "__main__":
    main()
