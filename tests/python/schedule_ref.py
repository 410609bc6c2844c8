"""Learning rates of PyTorch's own schedulers, for tests/test_trainer.cpp.

  onecycle MAX_LR TOTAL PCT DIV FINAL_DIV OUT   torch.optim.lr_scheduler.OneCycleLR
  cosine   LR TOTAL WARMUP MIN_LR OUT           LinearLR warm-up (from 1/WARMUP) then
                                                CosineAnnealingLR, chained with SequentialLR
Writes one learning rate per line, for steps 0 .. TOTAL-1.
"""
import sys

import torch


def rates(optimizer, scheduler, total):
    out = []
    for _ in range(total):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def main(argv):
    p = [torch.nn.Parameter(torch.zeros(1))]
    if argv[0] == "onecycle":
        max_lr, total, pct, div, final = float(argv[1]), int(argv[2]), float(argv[3]), float(argv[4]), float(argv[5])
        opt = torch.optim.SGD(p, lr=max_lr, momentum=0.9)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=max_lr, total_steps=total, pct_start=pct, div_factor=div,
            final_div_factor=final, cycle_momentum=False)
        out = rates(opt, sched, total)
    else:
        lr, total, warmup, min_lr = float(argv[1]), int(argv[2]), int(argv[3]), float(argv[4])
        opt = torch.optim.SGD(p, lr=lr)
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / warmup, total_iters=warmup - 1)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=min_lr)
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[warmup])
        out = rates(opt, sched, total)
    with open(argv[-1], "w") as f:
        f.write("\n".join("%.17g" % r for r in out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
