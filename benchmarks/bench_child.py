"""The Python half of the benchmark harness (benchmarks/bench_util.hpp, class PythonChild).

A baseline script calls serve({"name": function, ...}). The harness then writes one command
per line ("name arg ..."); serve() calls function(*args) and prints the "key value" pairs of the
dict it returns, then "end". "quit" (or end of input) stops. At start-up serve() reports the
versions, torch's intra-op thread count and whether the variables the harness removes are
really absent, so the C++ side can check them.
"""
import os
import platform
import sys

REMOVED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def threads():
    """The thread count the harness asked for (MOBILENET_BENCH_THREADS), default 1."""
    return int(os.environ.get("MOBILENET_BENCH_THREADS", "1"))


def _say(pairs):
    for k, v in pairs.items():
        print(k, v)
    print("end")
    sys.stdout.flush()


def serve(handlers, use_torch=True, extra_info=None):
    """use_torch=False: torch is not imported (its memory would count in a peak-RSS benchmark);
    the reported thread count is then the one asked for. extra_info: more start-up pairs
    (e.g. further library versions) for the harness to print."""
    info = {"python": platform.python_version(), "threads": threads(),
            "removed_env_absent": "no" if any(v in os.environ for v in REMOVED_ENV) else "yes"}
    if use_torch:
        import torch
        import torchvision
        torch.set_num_threads(threads())
        info["torch"] = torch.__version__
        info["threads"] = torch.get_num_threads()
        info["torchvision"] = torchvision.__version__
    info.update(extra_info or {})
    _say(info)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        _say(handlers[words[0]](*words[1:]))
