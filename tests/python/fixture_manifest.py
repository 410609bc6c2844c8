"""The reference-file format the C++ tests read (tests/fixtures.hpp): each array as raw bytes in
DIR/NAME.bin and one manifest line `NAME KIND DTYPE D0 D1 D2 [EXTRA...]` (uint8 -> u8, else f32)."""
import os

import numpy as np


def write(out, manifest, name, arr, kind, extra=()):
    arr = np.ascontiguousarray(arr)
    arr.tofile(os.path.join(out, name + ".bin"))
    dims = list(arr.shape) + [1] * (3 - arr.ndim)
    dtype = "u8" if arr.dtype == np.uint8 else "f32"
    manifest.append(" ".join([name, kind, dtype] + [str(d) for d in dims] +
                             [repr(float(e)) for e in extra]))
