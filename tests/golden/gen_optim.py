"""Writes tests/fixtures/optim_golden.bin: SGD and AdamW trajectories and LR schedule sequences
from PyTorch 1.13, replayed by tests/runtime/optim_test.cc. Run with /usr/bin/python3 (has torch).

Keys: init.{i} (parameter i before step 1), grad.{t}.{i} (gradient fed at step t, t = 1..STEPS),
{case}.step{t}.{i} (parameter i after step t), {case}.state.{name} (optimizer state after the last
step, named as in Optimizer::state_tensors), {case}.lr (lr used at each step, when it varies),
sched.{case} (lr after t scheduler steps, t = 0..len-1).
"""
import math
import os
import sys
import warnings

import torch

# SequentialLR calls step(0) on the next scheduler at a milestone, which warns about the epoch
# argument; that is PyTorch's own documented path, not something this script does.
warnings.filterwarnings("ignore", message="The epoch parameter")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

STEPS = 5
SHAPES = [(3, 4), (5,)]

SGD_CASES = {
    "sgd_plain": dict(lr=0.1),
    "sgd_momentum": dict(lr=0.1, momentum=0.9),
    "sgd_dampening": dict(lr=0.1, momentum=0.9, dampening=0.3),
    "sgd_nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "sgd_weight_decay": dict(lr=0.1, weight_decay=0.1),
    "sgd_all": dict(lr=0.05, momentum=0.8, weight_decay=0.05, nesterov=True),
}
ADAMW_CASES = {
    "adamw_default": dict(lr=1e-2),  # betas, eps and weight_decay at PyTorch's defaults
    "adamw_custom": dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
}
ADAMW_SCHED_LRS = [0.01, 0.02, 0.015, 0.005, 0.001]  # adamw_sched: lr changed before each step


def run_case(make_opt, init, grads, out, case, lrs=None):
    params = [p.clone().requires_grad_(True) for p in init]
    opt = make_opt(params)
    for t in range(1, STEPS + 1):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[t - 1]
        for i, p in enumerate(params):
            p.grad = grads[t - 1][i].clone()
        opt.step()
        for i, p in enumerate(params):
            out[f"{case}.step{t}.{i}"] = p.detach().clone()
    for i, p in enumerate(params):
        for name, v in opt.state[p].items():
            if torch.is_tensor(v) and name != "step":  # step is a count, checked separately
                out[f"{case}.state.{i}.{name}"] = v.clone()
    if lrs is not None:
        out[f"{case}.lr"] = torch.tensor(lrs)


def sched_sequence(make, n, base_lr):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make(opt)
    lrs = []
    for _ in range(n):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return lrs


def check_close(name, got, want):
    for t, (g, w) in enumerate(zip(got, want)):
        assert abs(g - w) <= 1e-7 + 1e-6 * abs(w), f"{name} t={t}: torch {g} vs closed form {w}"


def cosine(base, t_max, eta_min, t):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2


def warmup(after, start_factor, w, t):
    if t >= w:
        return after(t - w)
    return after(0) * (start_factor + (1 - start_factor) * t / w)


def main():
    torch.manual_seed(1234)
    out = {}
    init = [torch.randn(s) for s in SHAPES]
    grads = [[torch.randn(s) for s in SHAPES] for _ in range(STEPS)]
    for i, p in enumerate(init):
        out[f"init.{i}"] = p
    for t, g in enumerate(grads, start=1):
        for i, gi in enumerate(g):
            out[f"grad.{t}.{i}"] = gi

    for case, kw in SGD_CASES.items():
        run_case(lambda ps: torch.optim.SGD(ps, foreach=False, **kw), init, grads, out, case)
    for case, kw in ADAMW_CASES.items():
        run_case(lambda ps: torch.optim.AdamW(ps, foreach=False, **kw), init, grads, out, case)
    run_case(lambda ps: torch.optim.AdamW(ps, lr=ADAMW_SCHED_LRS[0], foreach=False), init, grads,
             out, "adamw_sched", lrs=ADAMW_SCHED_LRS)

    S = torch.optim.lr_scheduler
    seqs = {
        "step": (lambda o: S.StepLR(o, step_size=3, gamma=0.5), 13, 0.1,
                 lambda t: 0.1 * 0.5 ** (t // 3)),
        # Past t_max PyTorch's cosine keeps going (periodic); the closed form does the same.
        "cosine": (lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 26, 0.1,
                   lambda t: cosine(0.1, 10, 0.001, t)),
        "warmup_cosine": (lambda o: S.SequentialLR(o, [
            S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=4),
            S.CosineAnnealingLR(o, T_max=10, eta_min=0.0)], milestones=[4]), 17, 0.2,
            lambda t: warmup(lambda u: cosine(0.2, 10, 0.0, u), 0.1, 4, t)),
        "warmup_step": (lambda o: S.SequentialLR(o, [
            S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=3),
            S.StepLR(o, step_size=2, gamma=0.1)], milestones=[3]), 10, 0.4,
            lambda t: warmup(lambda u: 0.4 * 0.1 ** (u // 2), 0.25, 3, t)),
    }
    for name, (make, n, base, closed) in seqs.items():
        lrs = sched_sequence(make, n, base)
        check_close(name, lrs, [closed(t) for t in range(n)])
        out[f"sched.{name}"] = torch.tensor(lrs, dtype=torch.float64)

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                        "optim_golden.bin")
    golden_io.save(os.path.normpath(path), out)
    print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
