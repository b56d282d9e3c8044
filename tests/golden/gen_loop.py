"""Writes tests/fixtures/loop_golden.safetensors: the training loop's features from PyTorch 1.13, replayed by
tests/trainer/loop_golden_test.cc and tests/runtime/lr_schedule_test.cc. Run with /usr/bin/python3.

Keys:
  data.x (K*B, D), data.y (K*B): the effective batch; micro-batch i is rows [i*B, (i+1)*B).
  init.{name}: the model's state_dict before any step (Linear(D,H) - ReLU - Linear(H,C), no BN).
  accum.step{t}.{name}, accum.loss: K micro-batches per optimizer step (loss / K, backward each,
    then SGD momentum step), STEPS steps over the same data; loss[t] = the mean over the effective batch.
  clip_{case}.norm (1), clip_{case}.grad.{name}, clip_{case}.step.{name}: one step on the
    effective batch with clip_grad_norm_(norm 2 / inf) or clip_grad_value_, then SGD: the total norm
    torch returns, the clipped gradients and the parameters after the step.
  sched.{case} (101): lr used by optimizer step t+1 (get_last_lr() after t scheduler steps), t = 0..100.
"""
import math
import os
import sys
import warnings

import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler as S

warnings.filterwarnings("ignore", message="The epoch parameter")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

D, H, C = 12, 16, 5
K, B = 4, 8
STEPS = 3
BASE_LR = 0.1
N_SCHED = 101


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, C))


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=BASE_LR, momentum=0.9)


def accumulation(x, y, out):
    model = make_model()
    opt = sgd(model)
    losses = []
    for t in range(1, STEPS + 1):
        opt.zero_grad()
        total = 0.0
        for i in range(K):
            xi, yi = x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]
            loss = F.cross_entropy(model(xi), yi)
            (loss / K).backward()  # the mean over the effective batch
            total += loss.item()
        opt.step()
        losses.append(total / K)
        for name, p in model.state_dict().items():
            out[f"accum.step{t}.{name}"] = p.clone()
    out["accum.loss"] = torch.tensor(losses, dtype=torch.float64)
    # Independent check: the same steps on the whole effective batch at once match (float reassociation).
    big = make_model()
    big_opt = sgd(big)
    for _ in range(STEPS):
        big_opt.zero_grad()
        F.cross_entropy(big(x), y).backward()
        big_opt.step()
    for name, p in big.state_dict().items():
        assert torch.allclose(p, out[f"accum.step{STEPS}.{name}"], atol=1e-6), name


def clipping(x, y, out):
    cases = {
        "norm2": lambda ps: torch.nn.utils.clip_grad_norm_(ps, max_norm=0.05, norm_type=2.0),
        "norminf": lambda ps: torch.nn.utils.clip_grad_norm_(ps, max_norm=0.01, norm_type=math.inf),
        "norm2_loose": lambda ps: torch.nn.utils.clip_grad_norm_(ps, max_norm=1e3),  # no clipping
        "value": lambda ps: torch.nn.utils.clip_grad_value_(ps, clip_value=0.005),
    }
    for case, clip in cases.items():
        model = make_model()
        opt = sgd(model)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        pre = torch.norm(torch.stack([torch.norm(p.grad.detach(), 2.0) for p in model.parameters()]), 2.0)
        norm = clip(list(model.parameters()))
        out[f"clip_{case}.norm"] = torch.tensor([float(pre if norm is None else norm)])
        for name, p in model.named_parameters():
            out[f"clip_{case}.grad.{name}"] = p.grad.clone()
        opt.step()
        for name, p in model.state_dict().items():
            out[f"clip_{case}.step.{name}"] = p.clone()


def stepped(make):
    """lr of step t+1 for t = 0..N_SCHED-1, the scheduler stepped once per optimizer step."""
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(p, lr=BASE_LR, momentum=0.9)
    sched = make(opt)
    lrs = []
    for t in range(N_SCHED):
        lrs.append(sched.get_last_lr()[0])
        if t + 1 < N_SCHED:
            opt.step()
            sched.step()
    return torch.tensor(lrs, dtype=torch.float64)


def closed_form(make):
    """As stepped, from the scheduler's own _get_closed_form_lr (torch 1.13 raises ZeroDivisionError
    stepping LinearLR(start_factor=0) recursively)."""
    p = [torch.nn.Parameter(torch.zeros(1))]
    sched = make(torch.optim.SGD(p, lr=BASE_LR))
    lrs = []
    for t in range(N_SCHED):
        sched.last_epoch = t
        lrs.append(sched._get_closed_form_lr()[0])
    return torch.tensor(lrs, dtype=torch.float64)


def schedules(out):
    out["sched.warmup_linear"] = stepped(lambda o: S.LinearLR(o, start_factor=0.1, total_iters=20))
    out["sched.warmup_cosine"] = stepped(lambda o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.25, total_iters=10), S.CosineAnnealingLR(o, T_max=90, eta_min=1e-4)],
        milestones=[10]))
    out["sched.warmup_zero"] = closed_form(lambda o: S.LinearLR(o, start_factor=0.0, total_iters=25))
    out["sched.cosine"] = stepped(lambda o: S.CosineAnnealingLR(o, T_max=100, eta_min=1e-3))
    out["sched.one_cycle"] = stepped(lambda o: S.OneCycleLR(o, max_lr=BASE_LR, total_steps=100, cycle_momentum=False))
    out["sched.one_cycle_linear"] = stepped(lambda o: S.OneCycleLR(
        o, max_lr=BASE_LR, total_steps=120, pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
        anneal_strategy="linear", cycle_momentum=False))
    out["sched.linear_decay"] = stepped(lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=100))
    out["sched.polynomial1"] = stepped(lambda o: S.PolynomialLR(o, total_iters=100, power=1.0))
    out["sched.polynomial2"] = stepped(lambda o: S.PolynomialLR(o, total_iters=80, power=2.0))
    assert torch.allclose(out["sched.linear_decay"], out["sched.polynomial1"], rtol=1e-12, atol=1e-15)


def main():
    torch.manual_seed(1)
    x = torch.randn(K * B, D)
    y = torch.randint(0, C, (K * B,))
    out = {"data.x": x, "data.y": y.float()}
    for name, p in make_model().state_dict().items():
        out[f"init.{name}"] = p.clone()
    accumulation(x, y, out)
    clipping(x, y, out)
    schedules(out)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "loop_golden.safetensors")
    golden_io.save(os.path.normpath(path), out)


if __name__ == "__main__":
    main()
