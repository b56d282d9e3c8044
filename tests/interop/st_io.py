"""The safetensors format in numpy and json alone (Debian 12 packages no safetensors module): an
8-byte little-endian header size N, N bytes of JSON {KEY: {dtype, shape, data_offsets}, "__metadata__"},
then the raw little-endian row-major bytes, offsets counted from the first byte after the header.
An implementation independent of lockstep's C++ one, for the round-trip tests."""
import json
import struct

import numpy as np

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "BOOL": "?"}
NAMES = {np.dtype(v).str: k for k, v in DTYPES.items()}


def write(path, tensors, metadata=None):
    """tensors: {name: np.ndarray}, written in the given order."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, a in tensors.items():
        a = np.array(a, order="C")  # ascontiguousarray would make a 0-d count 1-d
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": NAMES[a.dtype.newbyteorder("<").str], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read(path):
    """-> ({name: np.ndarray}, {name: dtype name}, metadata); raises ValueError on a broken file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: truncated")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header size {n} past the end")
    header = json.loads(data[8:8 + n].decode())
    meta = header.pop("__metadata__", {})
    buf = data[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    at = 0
    for b, e, k in spans:
        if b != at:
            raise ValueError(f"{path}: {k} starts at {b}, expected {at}")
        at = e
    if at != len(buf):
        raise ValueError(f"{path}: tensors cover {at} of {len(buf)} bytes")
    out, dtypes = {}, {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        dt = np.dtype(DTYPES[v["dtype"]])
        a = np.frombuffer(buf[b:e], dtype=dt).reshape(v["shape"])
        out[k], dtypes[k] = a.copy(), v["dtype"]
    return out, dtypes, meta
