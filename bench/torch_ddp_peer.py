"""PyTorch DDP peer for bench/scaling.sh: the same weak-scaling run as bench/ddp_bench.cc (SGD lr 0.05
momentum 0.9, fixed per-rank batch, one thread per process) with torch.nn.parallel.
DistributedDataParallel over gloo, on 1 or 2 local processes started with torch.multiprocessing
(init_method tcp://127.0.0.1:PORT, the port given by the caller). Prints one JSON line from rank 0:
global train samples/s, median of repeats.
usage: torch_ddp_peer.py MODEL WORLD PORT [STEPS=40] [PER_RANK_BATCH=128] [REPEATS=3] [DATA_DIR]"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import model  # noqa: E402  the models of the single-process peer
from torch_peer import read_idx  # noqa: E402


def worker(rank, world, port, name, steps, batch, repeats, data_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(1)
    x_all = read_idx(f"{data_dir}/train-images-idx3-ubyte.gz")
    y_all = torch.from_numpy(read_idx(f"{data_dir}/train-labels-idx1-ubyte.gz").astype(np.int64))
    x_all = (torch.from_numpy(x_all.astype(np.float32)) / 255.0 - 0.2860) / 0.3530
    net, sample = model(name)
    ddp = nn.parallel.DistributedDataParallel(net)  # broadcasts rank 0's state; 25 MiB buckets
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    perm = torch.randperm(x_all.shape[0])  # same on every rank (same seed); rank r takes shard r

    def batch_at(i):
        g = perm[(i * world + rank) * batch:(i * world + rank + 1) * batch]
        return x_all[g].reshape(batch, *sample).contiguous(), y_all[g]

    batches = [batch_at(i) for i in range(steps + 3)]

    def step(x, y):
        loss = loss_fn(ddp(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    ddp.train()
    for x, y in batches[:3]:
        step(x, y)
    rates = []
    for _ in range(repeats):
        dist.barrier()
        t0 = time.perf_counter()
        for x, y in batches[3:]:
            step(x, y)
        rates.append(steps * batch * world / (time.perf_counter() - t0))
    if rank == 0:
        print(json.dumps({"impl": "pytorch-ddp-gloo", "model": name, "ranks": world, "per_rank_batch": batch,
                          "train_samples_per_sec": round(sorted(rates)[len(rates) // 2], 1)}), flush=True)
    dist.barrier()
    dist.destroy_process_group()


def main():
    name, world, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 128
    repeats = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    data_dir = sys.argv[7] if len(sys.argv) > 7 else "/usr/share/datasets/fashion-mnist"
    mp.spawn(worker, args=(world, port, name, steps, batch, repeats, data_dir), nprocs=world, join=True)


if __name__ == "__main__":
    main()
