"""Writes golden fixtures read by tests/golden_io.h: named float32 tensors in one binary file.

Layout: b'LSGOLD1\n', then per tensor: u32 name length, name (utf-8), u32 ndim, i64 dims[ndim],
float32 data (little-endian, C order).
"""
import gzip
import struct

import numpy as np


def save(path, tensors, keep_0d=False):
    """keep_0d: write 0-d tensors with ndim 0 (shape ()); by default they are written as shape (1),
    which the older fixtures (num_batches_tracked, losses) were made with."""
    with open(path, "wb") as f:
        f.write(b"LSGOLD1\n")
        for name, t in tensors.items():
            if hasattr(t, "detach"):
                t = t.detach().cpu().numpy()
            a = np.asarray(t, dtype=np.float32)
            a = a.copy(order="C") if keep_0d and a.ndim == 0 else np.ascontiguousarray(a)
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", a.ndim))
            f.write(struct.pack(f"<{a.ndim}q", *a.shape))
            f.write(a.tobytes())


def read_idx(path):
    """A gzipped IDX array (Fashion-MNIST's files) as a uint8 numpy array of its shape."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
