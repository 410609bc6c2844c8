#!/usr/bin/python3
"""Reference for tests/test_ema.cpp: the EMA of a sequence of state_dicts, in float64 NumPy.

Usage: ema_reference.py DIR
DIR holds what the C++ test wrote:
    model_000.pt ... model_NNN.pt   the model's state_dict before training and after each
                                    optimizer step (mobilenet::save_weights, read by torch.load)
    buffers.txt                     the names that are buffers (the others are parameters)
    configs.txt                     one line per EMA: name decay warmup average_buffers steps
                                    check_step...
For each config and check step n, writes DIR/ref_<name>_<n:03d>.pt: the EMA after update n,
    e_0 = w_0,  e_n = d_n e_{n-1} + (1 - d_n) w_n,  d_n = decay (1 - exp(-n / warmup))
(d_n = decay when warmup is 0) for parameters, and for floating-point buffers when
average_buffers is 1; other buffers are w_n (copied).
"""
import math
import os
import sys

import numpy as np
import torch

import torch_files  # LibTorch-written files, weights only


def main(folder):
    buffers = set(open(os.path.join(folder, "buffers.txt")).read().split())
    for line in open(os.path.join(folder, "configs.txt")):
        tok = line.split()
        if not tok:
            continue
        name, decay, warmup = tok[0], float(tok[1]), float(tok[2])
        average_buffers, steps = tok[3] == "1", int(tok[4])
        checks = {int(t) for t in tok[5:]}
        models = [torch_files.load(os.path.join(folder, "model_%03d.pt" % n)) for n in range(steps + 1)]
        ema = {k: v.numpy().astype(np.float64) for k, v in models[0].items()}
        dtypes = {k: v.dtype for k, v in models[0].items()}
        for n in range(1, steps + 1):
            d = decay * (1.0 - math.exp(-n / warmup)) if warmup > 0 else decay
            for k, v in models[n].items():
                w = v.numpy().astype(np.float64)
                averaged = k not in buffers or (average_buffers and dtypes[k].is_floating_point)
                ema[k] = d * ema[k] + (1.0 - d) * w if averaged else w
            if n in checks:
                out = {k: torch.from_numpy(v if dtypes[k].is_floating_point else v.astype(np.int64))
                       for k, v in ema.items()}
                torch.save(out, os.path.join(folder, "ref_%s_%03d.pt" % (name, n)))


if __name__ == "__main__":
    main(sys.argv[1])
