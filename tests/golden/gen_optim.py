"""Writes tests/fixtures/optim_golden.safetensors: SGD and AdamW trajectories and LR schedule sequences
from PyTorch 1.13, replayed by tests/runtime/optim_test.cc; Adam, AdamW-amsgrad and RMSprop
trajectories from PyTorch and LARS and LAMB trajectories from references written here from the
papers, on a small MLP, replayed by tests/runtime/optim_model_test.cc. Run with /usr/bin/python3
(has torch).

Keys: init.{i} (parameter i before step 1), grad.{t}.{i} (gradient fed at step t, t = 1..STEPS),
{case}.step{t}.{i} (parameter i after step t), {case}.state.{name} (optimizer state after the last
step, named as in Optimizer::state_tensors), {case}.lr (lr used at each step, when it varies),
sched.{case} (lr after t scheduler steps, t = 0..len-1).
MLP cases (MODEL_STEPS steps, each self-contained): {case}.init.{i}, {case}.grad.{t}.{i} (the
model's gradient at the parameters before step t), {case}.step{t}.{i}, {case}.state.{i}.{name}.
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


# --- The small model: a 2-layer MLP with a bias and a 1-D "norm" scale --------------------------
# x: (8, 4) -> h = tanh(x @ W1^T + b1) * gamma: (8, 6) -> y = h @ W2^T + b2: (8, 3); MSE loss.
# Parameters, in this order: fc1.weight (6, 4), fc1.bias (6), norm.weight (6) (gamma, a
# BatchNorm/LayerNorm-like scale), fc2.weight (3, 6), fc2.bias (3). The "zero" init zeroes
# fc2.weight (a zero-norm parameter, as a zero-initialised residual branch).
MODEL_STEPS = 20


def mlp_init(gen):
    w1 = torch.randn(6, 4, generator=gen) * 0.5
    b1 = torch.randn(6, generator=gen) * 0.1
    gamma = 1 + 0.1 * torch.randn(6, generator=gen)
    w2 = torch.randn(3, 6, generator=gen) * 0.4
    b2 = torch.randn(3, generator=gen) * 0.1
    return [w1, b1, gamma, w2, b2]


def mlp_loss(params, x, target):
    w1, b1, gamma, w2, b2 = params
    h = torch.tanh(x @ w1.t() + b1) * gamma
    return torch.nn.functional.mse_loss(h @ w2.t() + b2, target)


def excluded(p):
    """Note [layer adaptation exclusions]: biases and norm parameters (the 1-D ones) are not adapted."""
    return p.dim() <= 1


class LarsReference:
    """You, Gitman & Ginsburg 2017, Algorithm 1 with the local lr of eq. (6):
    lambda = eta * ||w|| / (||grad L(w)|| + beta * ||w||);  v <- m v + gamma_t * lambda * (grad + beta w);
    w <- w - v.  Excluded parameters: lambda = 1 and beta = 0; ||w|| = 0 or a zero denominator:
    lambda = 1."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, trust_coefficient=1e-3):
        self.params, self.lr, self.m = params, lr, momentum
        self.wd, self.eta = weight_decay, trust_coefficient
        self.v = [torch.zeros_like(p) for p in params]

    def step(self):
        with torch.no_grad():
            for p, v in zip(self.params, self.v):
                beta = 0.0 if excluded(p) else self.wd
                lam = 1.0
                if not excluded(p):
                    w_norm = torch.linalg.vector_norm(p).item()
                    den = torch.linalg.vector_norm(p.grad).item() + beta * w_norm
                    if w_norm > 0 and den > 0:
                        lam = self.eta * w_norm / den
                v.mul_(self.m).add_(self.lr * lam * (p.grad + beta * p))
                p.sub_(v)

    def state(self, i):
        return {"momentum_buffer": self.v[i]} if self.m != 0 else {}


class LambReference:
    """You et al. 2019, Algorithm 2 with phi(z) = z: m, v Adam's moments with bias correction,
    r = m_hat / (sqrt(v_hat) + eps), w <- w - eta_t * ||w|| / ||r + lambda w|| * (r + lambda w).
    Excluded parameters: trust ratio 1 and lambda = 0; ||w|| = 0 or ||r + lambda w|| = 0: ratio 1."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        self.params, self.lr, self.betas, self.eps, self.wd = params, lr, betas, eps, weight_decay
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                m.mul_(b1).add_((1 - b1) * p.grad)
                v.mul_(b2).add_((1 - b2) * p.grad * p.grad)
                m_hat = m / (1 - b1 ** self.t)
                v_hat = v / (1 - b2 ** self.t)
                r = m_hat / (v_hat.sqrt() + self.eps)
                lam = 0.0 if excluded(p) else self.wd
                u = r + lam * p
                ratio = 1.0
                if not excluded(p):
                    w_norm = torch.linalg.vector_norm(p).item()
                    u_norm = torch.linalg.vector_norm(u).item()
                    if w_norm > 0 and u_norm > 0:
                        ratio = w_norm / u_norm
                p.sub_(self.lr * ratio * u)

    def state(self, i):
        return {"exp_avg": self.m[i], "exp_avg_sq": self.v[i]}


def torch_state(opt, i):
    return {k: v for k, v in opt.state[opt.param_groups[0]["params"][i]].items()
            if torch.is_tensor(v) and k != "step"}


# case -> (init variant, make optimizer(params) -> (optimizer, state(i) -> dict)). The options
# must equal the cases in tests/runtime/optim_model_test.cc.
def _torch(cls, **kw):
    return lambda ps: (lambda o: (o, lambda i: torch_state(o, i)))(cls(ps, foreach=False, **kw))


def _ref(cls, **kw):
    return lambda ps: (lambda o: (o, o.state))(cls(ps, **kw))


MODEL_CASES = {
    "adam_default": ("rand", _torch(torch.optim.Adam, lr=1e-2)),
    "adam_amsgrad": ("rand", _torch(torch.optim.Adam, lr=2e-2, betas=(0.8, 0.95), eps=1e-6,
                                    weight_decay=0.05, amsgrad=True)),
    "adamw_amsgrad": ("rand", _torch(torch.optim.AdamW, lr=2e-2, weight_decay=0.1, amsgrad=True)),
    "rmsprop_plain": ("rand", _torch(torch.optim.RMSprop, lr=1e-2)),
    "rmsprop_centered_momentum": ("rand", _torch(torch.optim.RMSprop, lr=5e-3, alpha=0.9, eps=1e-6,
                                                 weight_decay=0.05, momentum=0.9, centered=True)),
    "lars_plain": ("rand", _ref(LarsReference, lr=0.5)),
    "lars_momentum": ("rand", _ref(LarsReference, lr=0.5, momentum=0.9, weight_decay=0.01,
                                   trust_coefficient=0.02)),
    "lars_zero": ("zero", _ref(LarsReference, lr=0.5, momentum=0.9, weight_decay=0.01,
                               trust_coefficient=0.02)),
    "lamb_default": ("rand", _ref(LambReference, lr=1e-2)),
    "lamb_weight_decay": ("rand", _ref(LambReference, lr=2e-2, betas=(0.8, 0.95), eps=1e-5,
                                       weight_decay=0.1)),
    "lamb_zero": ("zero", _ref(LambReference, lr=2e-2, weight_decay=0.1)),
}


def model_trajectory(make, init, x, target, steps=MODEL_STEPS):
    """[(grads fed, params after)] per step, and the optimizer's final state per parameter."""
    params = [p.clone().requires_grad_(True) for p in init]
    opt, state = make(params)
    out = []
    for _ in range(steps):
        for p in params:
            p.grad = None
        mlp_loss(params, x, target).backward()
        grads = [p.grad.clone() for p in params]
        opt.step()
        out.append((grads, [p.detach().clone() for p in params]))
    return out, [state(i) for i in range(len(params))]


def check_references(inits, x, target):
    """The paper references reduce to PyTorch's rules where they must: LARS with every parameter
    excluded is momentum SGD with the lr folded into the buffer; LAMB with every parameter
    excluded is Adam (lambda = 0)."""
    global excluded
    keep = excluded
    excluded = lambda p: True  # noqa: E731
    try:
        for name, ref, torch_make in [
                ("lars", _ref(LarsReference, lr=0.5, momentum=0.9, weight_decay=0.01),
                 _torch(torch.optim.SGD, lr=0.5, momentum=0.9)),
                ("lamb", _ref(LambReference, lr=1e-2, eps=1e-6),
                 _torch(torch.optim.Adam, lr=1e-2, eps=1e-6))]:
            a, _ = model_trajectory(ref, inits["rand"], x, target)
            b, _ = model_trajectory(torch_make, inits["rand"], x, target)
            for t, ((_, pa), (_, pb)) in enumerate(zip(a, b)):
                for i, (u, w) in enumerate(zip(pa, pb)):
                    assert torch.allclose(u, w, rtol=1e-5, atol=1e-6), f"{name} step {t} param {i}"
    finally:
        excluded = keep


def add_model_cases(out):
    gen = torch.Generator().manual_seed(2017)
    x = torch.randn(8, 4, generator=gen)
    target = torch.randn(8, 3, generator=gen)
    rand = mlp_init(gen)
    inits = {"rand": rand, "zero": rand[:3] + [torch.zeros(3, 6)] + rand[4:]}
    check_references(inits, x, target)
    for case, (variant, make) in MODEL_CASES.items():
        traj, state = model_trajectory(make, inits[variant], x, target)
        for i, p in enumerate(inits[variant]):
            out[f"{case}.init.{i}"] = p
        for t, (grads, params) in enumerate(traj, start=1):
            for i, (g, p) in enumerate(zip(grads, params)):
                out[f"{case}.grad.{t}.{i}"] = g
                out[f"{case}.step{t}.{i}"] = p
        for i, s in enumerate(state):
            for name, v in s.items():
                out[f"{case}.state.{i}.{name}"] = v.clone()
    # The zero-norm parameter must move at step 1 and then be adapted like the others.
    for case in ("lars_zero", "lamb_zero"):
        assert out[f"{case}.step1.3"].abs().sum() > 0, case


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

    add_model_cases(out)

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                        "optim_golden.safetensors")
    golden_io.save(os.path.normpath(path), out)
    print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
