"""PyTorch baseline for benchmarks/distributed: torchvision MobileNetV2 trained with
torch.nn.parallel.DistributedDataParallel on Gloo over loopback, the same configuration as the
C++ ranks. Served to the harness (benchmarks/bench_child.py):
  run NPROC THREADS -> step_s (rank 0's median step) and images_per_s
"""
import argparse
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bench_child  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_main(rank, args, port, queue):
    torch.set_num_threads(args.threads)
    world = args.nproc
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world)
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(width_mult=args.width, num_classes=args.classes)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=args.bucket_mb)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    local = args.batch // world
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(local, 3, args.image, args.image, generator=g)
    y = (torch.rand(local, args.classes, generator=g) > 0.9).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if rank == 0:
        queue.put(sorted(times)[len(times) // 2])  # median: the machine is shared


def main():
    p = argparse.ArgumentParser()
    for name, kind, default in [("batch", int, 32), ("steps", int, 10), ("warmup", int, 2),
                                ("image", int, 96), ("width", float, 0.5), ("classes", int, 80),
                                ("bucket_mb", float, 1.0)]:
        p.add_argument("--" + name, type=kind, default=default)
    args = p.parse_args()
    ctx = mp.get_context("spawn")

    def run(nproc, threads):
        args.nproc, args.threads = int(nproc), int(threads)
        queue = ctx.SimpleQueue()
        mp.start_processes(rank_main, args=(args, free_port(), queue), nprocs=args.nproc,
                           join=True, start_method="spawn")
        step = queue.get()
        return {"step_s": step, "images_per_s": args.batch / step}

    bench_child.serve({"run": run})


if __name__ == "__main__":
    sys.exit(main())
