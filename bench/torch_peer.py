"""PyTorch peer for bench/run.sh: the same recipe (SGD lr 0.05 momentum 0.9, batch 128) on
Fashion-MNIST already in memory, one thread, train samples/s (full step) and eval samples/s
(eval mode, no_grad), median of repeats, plus peak resident memory, for the models of
bench/torch_models.py. Prints one JSON object, with the kernels this process ran on: the core type
its OpenBLAS selected, its oneDNN ISA and torch's CPU capability.
PRECISION bf16 runs forward and loss (train and eval) under torch.autocast("cpu",
dtype=torch.bfloat16), PyTorch's own mixed precision. MEMORY_FORMAT channels_last converts the model
and each 4-D input batch with memory_format=torch.channels_last, as PyTorch's performance guide
recommends for convolutional networks on CPU.
usage: torch_peer.py MODEL [STEPS=40] [REPEATS=3] [DATA_DIR] [PRECISION=fp32|bf16] [MEMORY_FORMAT=contiguous|channels_last]
                     [MEMORY_FORMAT=contiguous|channels_last]"""
import contextlib
import gzip
import json
import os
import resource
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_info import onednn_isa, openblas_core  # noqa: E402
from torch_models import model  # noqa: E402

torch.set_num_threads(1)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "fmnist-cnn"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    data_dir = sys.argv[4] if len(sys.argv) > 4 else "/usr/share/datasets/fashion-mnist"
    precision = sys.argv[5] if len(sys.argv) > 5 else "fp32"
    memory_format = sys.argv[6] if len(sys.argv) > 6 else "contiguous"
    if precision not in ("fp32", "bf16") or memory_format not in ("contiguous", "channels_last"):
        sys.exit(f"torch_peer.py: precision must be fp32 or bf16 and memory format contiguous or channels_last, "
                 f"got {precision} {memory_format}")
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" \
        else contextlib.nullcontext
    batch = 128
    torch.manual_seed(1)
    norm = lambda a: (torch.from_numpy(a.astype(np.float32)) / 255.0 - 0.2860) / 0.3530
    x_train = norm(read_idx(f"{data_dir}/train-images-idx3-ubyte.gz"))
    y_train = torch.from_numpy(read_idx(f"{data_dir}/train-labels-idx1-ubyte.gz").astype(np.int64))
    x_test = norm(read_idx(f"{data_dir}/t10k-images-idx3-ubyte.gz"))
    net, sample = model(name)
    fmt = torch.channels_last if memory_format == "channels_last" and len(sample) == 3 else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    perm = torch.randperm(x_train.shape[0])
    batches = [(x_train[perm[i * batch:(i + 1) * batch]].reshape(batch, *sample).contiguous(memory_format=fmt),
                y_train[perm[i * batch:(i + 1) * batch]]) for i in range(steps + 3)]

    def step(x, y):
        with autocast():
            out = net(x)
            loss = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    net.train()
    for x, y in batches[:3]:
        step(x, y)
    train_rates, eval_rates = [], []
    n_eval = min(x_test.shape[0], steps * batch * 2)
    for _ in range(repeats):
        net.train()
        t0 = time.perf_counter()
        for x, y in batches[3:]:
            step(x, y)
        train_rates.append(steps * batch / (time.perf_counter() - t0))
        net.eval()
        t0 = time.perf_counter()
        with torch.no_grad(), autocast():
            for i in range(0, n_eval, batch):
                net(x_test[i:i + batch].reshape(-1, *sample).contiguous(memory_format=fmt))
        eval_rates.append(n_eval / (time.perf_counter() - t0))
    capability = [l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines()
                  if "CPU capability usage" in l]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "pytorch", "model": name, "precision": precision, "memory_format": memory_format,
                      "train_samples_per_sec": round(sorted(train_rates)[len(train_rates) // 2], 1),
                      "eval_samples_per_sec": round(sorted(eval_rates)[len(eval_rates) // 2], 1),
                      "peak_rss_mb": round(peak, 1), "torch": torch.__version__,
                      "cpu_capability": capability[0] if capability else "unknown",
                      "openblas_core": openblas_core(), "onednn_isa": onednn_isa()}))


if __name__ == "__main__":
    main()
