"""Writes tests/fixtures/ops_golden.safetensors: outputs and input gradients of every op of runtime/ops.h
from PyTorch 1.13, replayed by tests/runtime/ops_test.cc.
Run with /usr/bin/python3 (has torch): /usr/bin/python3 tests/golden/gen_ops.py

Keys per case (every tensor float32), every input requiring grad:
  {case}.x{k}   input k = 0, 1, ...
  {case}.dy     upstream gradient, random, of the output's shape
  {case}.y      output
  {case}.dx{k}  gradient of input k: d(sum(dy * y))/d(x{k})
The case names and what each computes are mirrored in kCases of tests/runtime/ops_test.cc.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "ops_golden.safetensors")

torch.manual_seed(9)
golden = {}


def case(name, fn, *inputs):
    xs = [x.clone().float().requires_grad_(True) for x in inputs]
    y = fn(*xs)
    dy = torch.randn_like(y)
    y.backward(dy)
    for k, x in enumerate(xs):
        golden[f"{name}.x{k}"] = x.detach()
        golden[f"{name}.dx{k}"] = x.grad
    golden[f"{name}.dy"] = dy
    golden[f"{name}.y"] = y.detach()


r = torch.randn
NAN, INF = float("nan"), float("inf")
# NaN, infinities, signed zeros and the far tails, appended to random values of each activation.
special = torch.tensor([NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 20.0, -20.0, 100.0, -100.0])

# Elementwise with broadcasting.
for op, fn in (("add", torch.add), ("sub", torch.sub), ("mul", torch.mul)):
    case(f"{op}.same", fn, r(2, 3, 4), r(2, 3, 4))
    case(f"{op}.scalar", fn, r(3, 4), r(1))          # one element of shape (1)
    case(f"{op}.scalar0d", fn, r(()), r(3, 4))       # a 0-d tensor on the left
    case(f"{op}.channel", fn, r(2, 3, 4, 5), r(1, 3, 1, 1))
    case(f"{op}.bias", fn, r(4, 5), r(5))
    case(f"{op}.both", fn, r(3, 1, 5), r(4, 1))      # both broadcast: (3, 4, 5)
    case(f"{op}.left", fn, r(1, 3, 1, 1), r(2, 3, 2, 2))
case("mul_float", lambda x: torch.mul(x, -1.5), r(3, 4))

case("matmul.2d", torch.matmul, r(5, 7), r(7, 3))
case("matmul.3d", torch.matmul, r(2, 4, 6), r(2, 6, 3))
case("matmul.3d2d", torch.matmul, r(2, 4, 6), r(6, 3))
case("matmul.k1", torch.matmul, r(4, 1), r(1, 5))

case("reshape", lambda x: x.reshape(4, -1), r(2, 3, 4))
case("view", lambda x: x.view(3, 2, 4), r(2, 12))
case("flatten.1", lambda x: torch.flatten(x, 1), r(2, 3, 4, 5))
case("flatten.2", lambda x: torch.flatten(x, 2), r(2, 3, 4, 5))
case("flatten.mid", lambda x: torch.flatten(x, 1, 2), r(2, 3, 4, 5))

case("cat.dim0", lambda a, b, c: torch.cat([a, b, c], 0), r(2, 3), r(1, 3), r(4, 3))
case("cat.dim1", lambda a, b: torch.cat([a, b], 1), r(2, 3, 4), r(2, 2, 4))
case("cat.last", lambda a, b, c: torch.cat([a, b, c], -1), r(2, 3, 1), r(2, 3, 4), r(2, 3, 2))

for op, fn in (("sum", torch.sum), ("mean", torch.mean)):
    case(f"{op}.all", lambda x, fn=fn: fn(x), r(3, 4, 5))
    case(f"{op}.dim1", lambda x, fn=fn: fn(x, 1), r(3, 4, 5))
    case(f"{op}.hw_keep", lambda x, fn=fn: fn(x, (2, 3), keepdim=True), r(2, 3, 4, 5))
    case(f"{op}.neg", lambda x, fn=fn: fn(x, (-1, 0)), r(3, 4, 5))
    case(f"{op}.empty_dims", lambda x, fn=fn: fn(x, []), r(3, 4))

acts = (
    ("relu", torch.relu),
    ("leaky_relu", F.leaky_relu),
    ("leaky_relu.slope", lambda x: F.leaky_relu(x, 0.2)),
    ("gelu.none", lambda x: F.gelu(x, approximate="none")),
    ("gelu.tanh", lambda x: F.gelu(x, approximate="tanh")),
    ("silu", F.silu),
    ("sigmoid", torch.sigmoid),
    ("tanh", torch.tanh),
)
for name, fn in acts:
    case(f"{name}", fn, r(3, 4, 5) * 2)
    case(f"{name}.special", fn, torch.cat([r(7) * 4, special]))

golden_io.save(OUT, golden, keep_0d=True)  # sum(x) and mean(x) are 0-d, as in torch
print(f"{len(golden)} tensors, {os.path.getsize(OUT)} bytes -> {os.path.relpath(OUT)}")
