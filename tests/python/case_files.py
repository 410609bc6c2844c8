"""Shared by the reference scripts that answer a C++ test through files: for every
CASE.in in a folder, write CASE.out."""
import os
import sys


def run_folder(run_case, folder=None):
    folder = folder or sys.argv[1]
    for name in sorted(os.listdir(folder)):
        if name.endswith(".in"):
            run_case(os.path.join(folder, name), os.path.join(folder, name[:-3] + ".out"))
