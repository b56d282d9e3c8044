"""Writes golden fixtures read by tests/golden_io.h: named float32 tensors in one safetensors file
(every tensor F32, little-endian, C order; the format is written by tests/interop/st_io.py with
numpy and json, and read in C++ by runtime/safetensors).
"""
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import st_io  # noqa: E402


def save(path, tensors, keep_0d=False):
    """keep_0d: write 0-d tensors with shape (); by default they are written as shape (1), which the
    older fixtures (num_batches_tracked, losses) were made with."""
    out = {}
    for name, t in tensors.items():
        if hasattr(t, "detach"):
            t = t.detach().cpu().numpy()
        a = np.asarray(t, dtype=np.float32)
        out[name] = a if keep_0d or a.ndim > 0 else a.reshape(1)
    st_io.write(path, out)


def read_idx(path):
    """A gzipped IDX array (Fashion-MNIST's files) as a uint8 numpy array of its shape."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
