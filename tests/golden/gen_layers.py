"""Writes tests/fixtures/layers_golden.safetensors: forward outputs, input and parameter gradients and updated
BatchNorm buffers of every layer and loss, from PyTorch 1.13, replayed by tests/layers/*_test.cc.
Run with /usr/bin/python3 (has torch): /usr/bin/python3 tests/golden/gen_layers.py

Keys per module case (every tensor float32; num_batches_tracked is stored as a float):
  {case}.state.{name}      state_dict entry loaded into the module before the first forward
                           (random weights, non-trivial running stats)
  {case}.x{k}, {case}.dy{k} input and upstream gradient of forward/backward number k = 0, 1, ...
  {case}.y{k}, {case}.dx{k} output and input gradient of call k
  {case}.after{k}.{buffer} every buffer after forward k
  {case}.grad.{param}      parameter gradients accumulated over all backward calls (no zeroing
                           between calls, as PyTorch's .grad and Parameter::grad)
Keys per loss case: {case}.input, {case}.target (class indices as floats for cross entropy),
  {case}.grad_output (shape (1)), {case}.loss (shape (1)), {case}.grad (d(grad_output * loss)/dinput).

Also prints the state_dict keys of the reference models built as torch nn.Sequential, the expected
names hard-coded in tests/layers/state_dict_test.cc.
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "layers_golden.safetensors")

golden = {}


def randomise(m):
    """Random, non-default parameters and non-trivial running statistics."""
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name == "weight" and isinstance(m, nn.modules.batchnorm._BatchNorm):
                p.copy_(torch.empty_like(p).uniform_(0.5, 1.5))
            else:
                p.copy_(torch.randn_like(p) * 0.5)
        if getattr(m, "running_mean", None) is not None:
            m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.5)
            m.running_var.copy_(torch.empty_like(m.running_var).uniform_(0.5, 2.0))


def module_case(case, m, xs, train=True, nbt=None):
    """Runs forward/backward for each input in xs on m and records everything the C++ side checks."""
    randomise(m)
    if nbt is not None:
        m.num_batches_tracked.fill_(nbt)
    for name, t in m.state_dict().items():
        golden[f"{case}.state.{name}"] = t.detach().clone().float()
    m.train(train)
    for k, x in enumerate(xs):
        x = x.clone().requires_grad_(True)
        y = m(x)
        dy = torch.randn_like(y)
        y.backward(dy)
        golden[f"{case}.x{k}"] = x.detach()
        golden[f"{case}.dy{k}"] = dy
        golden[f"{case}.y{k}"] = y.detach()
        golden[f"{case}.dx{k}"] = x.grad
        for name, b in m.named_buffers():
            golden[f"{case}.after{k}.{name}"] = b.detach().clone().float()
    for name, p in m.named_parameters():
        golden[f"{case}.grad.{name}"] = p.grad


def loss_case(case, loss, inp, target, grad_output, class_target=False):
    inp = inp.clone().requires_grad_(True)
    value = loss(inp, target)
    (value * grad_output).backward()
    golden[f"{case}.input"] = inp.detach()
    golden[f"{case}.target"] = target.float() if class_target else target
    golden[f"{case}.grad_output"] = torch.tensor([grad_output])
    golden[f"{case}.loss"] = value.detach().reshape(1)
    golden[f"{case}.grad"] = inp.grad


NAN, INF = float("nan"), float("inf")


def spiked(x, spots):
    """x with the values of spots ({index tuple: value}) put in: NaN, +inf, -inf."""
    x = x.clone()
    for idx, v in spots.items():
        x[idx] = v
    return x


def nonfinite_cases(r):
    """Inputs holding NaN, +inf and -inf: lockstep must propagate them exactly as PyTorch does
    (tests compare NaN positions exactly, infinities by value, the rest with tolerance)."""
    spots2 = {(0, 1): NAN, (1, 2): INF, (2, 0): -INF}
    module_case("nonfinite_linear", nn.Linear(4, 3), [spiked(r(3, 4), spots2)])
    spots4 = {(0, 0, 1, 1): NAN, (0, 1, 3, 2): INF, (1, 0, 0, 4): -INF, (1, 1, 4, 0): INF}
    module_case("nonfinite_conv", nn.Conv2d(2, 3, 3, padding=1), [spiked(r(2, 2, 5, 5), spots4)])
    # 2x2 windows (the AVX-512 kernel): a NaN among finite values, two NaNs (the last one gets the
    # gradient), NaN with +inf, +inf alone, all -inf (the first one gets the gradient), a tie.
    pool = torch.tensor([[NAN, 1., NAN, 2., 7., INF, -INF, -INF, 1., 3.],
                         [3., NAN, INF, NAN, 0., 1., -INF, -INF, 3., 2.],
                         [-INF, 5., 6., NAN, 2., 2., 4., NAN, NAN, 0.],
                         [NAN, -INF, 0., 0., 2., 2., 1., NAN, -INF, -INF]])
    pool = torch.cat([pool, r(2, 10)]).reshape(1, 1, 6, 10)
    pool = torch.cat([pool, pool.flip(3)], 1)  # (1, 2, 6, 10): mirrored windows too
    # 40 outputs per row block exercise a full 16-lane vector and a masked tail.
    wide = spiked(r(1, 3, 4, 70), {(0, 0, 0, 3): NAN, (0, 1, 1, 40): NAN, (0, 2, 3, 69): NAN,
                                   (0, 2, 2, 68): NAN, (0, 0, 1, 33): INF, (0, 1, 2, 2): -INF})
    module_case("nonfinite_pool_k2s2", nn.MaxPool2d(2), [pool])
    module_case("nonfinite_pool_k2s2_wide", nn.MaxPool2d(2), [wide])
    module_case("nonfinite_pool_k3s2", nn.MaxPool2d(3, 2), [pool])
    module_case("nonfinite_relu", nn.ReLU(), [spiked(r(3, 4), spots2)])
    module_case("nonfinite_flatten", nn.Flatten(), [spiked(r(2, 2, 5, 5), spots4)])
    # BatchNorm: one channel each with NaN, +inf (first element: the shift of the one-pass sums),
    # +inf later, -inf; the last channel stays finite. Train updates running stats to inf / NaN.
    bn1 = {(2, 0): NAN, (0, 1): INF, (3, 2): INF, (4, 3): -INF}
    module_case("nonfinite_bn1d_train", nn.BatchNorm1d(5), [spiked(r(6, 5), bn1)], nbt=3)
    module_case("nonfinite_bn1d_eval", nn.BatchNorm1d(5), [spiked(r(6, 5), bn1)], train=False, nbt=3)
    module_case("nonfinite_bn1d_cumulative", nn.BatchNorm1d(5, momentum=None),
                [r(4, 5), spiked(r(6, 5), bn1)])
    module_case("nonfinite_bn1d_notrack_eval", nn.BatchNorm1d(5, track_running_stats=False),
                [spiked(r(6, 5), bn1)], train=False)
    bn2 = {(0, 0, 0, 0): INF, (1, 1, 2, 1): NAN, (0, 2, 1, 2): -INF}
    module_case("nonfinite_bn2d_train", nn.BatchNorm2d(4), [spiked(r(2, 4, 3, 3), bn2)], nbt=0)
    module_case("nonfinite_bn2d_eval", nn.BatchNorm2d(4), [spiked(r(2, 4, 3, 3), bn2)], train=False)
    # Cross entropy, one row per kind: NaN logit, +inf at / off the target, -inf off / at the
    # target (infinite loss), all -inf; and with only the harmless -inf rows (a finite loss).
    ce = torch.tensor([[NAN, 1., 2.], [INF, 1., 2.], [1., INF, 2.], [-INF, 1., 2.], [-INF, 1., 2.],
                       [-INF, -INF, -INF]])
    ce_t = torch.tensor([1, 0, 0, 1, 0, 2])
    for i in range(ce.shape[0]):
        loss_case(f"nonfinite_ce_row{i}", nn.CrossEntropyLoss(), ce[i:i + 1], ce_t[i:i + 1], 1.0,
                  class_target=True)
    loss_case("nonfinite_ce_mean", nn.CrossEntropyLoss(), ce, ce_t, 1.0, class_target=True)
    loss_case("nonfinite_ce_finite", nn.CrossEntropyLoss(reduction="sum"),
              torch.cat([ce[3:4], r(2, 3)]), torch.tensor([1, 0, 2]), 0.5, class_target=True)
    loss_case("nonfinite_mse", nn.MSELoss(), spiked(r(3, 4), spots2), r(3, 4), 1.0)


def vision_cases(r):
    """Issue 9, layers of real vision models. Drawn after every older case, so those keep their
    random numbers."""
    # Conv2d: dilation (a "same" convolution too), groups, depthwise (with a channel multiplier),
    # groups with dilation, and padding at least the width (the same-size gather must not be used).
    module_case("conv_dil2_same", nn.Conv2d(3, 5, 3, padding=2, dilation=2), [r(2, 3, 7, 9)])
    module_case("conv_dil2_s2", nn.Conv2d(3, 4, 3, stride=2, padding=1, dilation=2), [r(2, 3, 9, 8)])
    module_case("conv_groups2", nn.Conv2d(4, 6, 3, padding=1, groups=2), [r(2, 4, 5, 6)])
    module_case("conv_depthwise", nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4, bias=False),
                [r(2, 4, 7, 7)])
    module_case("conv_depthwise_x2", nn.Conv2d(3, 6, 5, padding=2, groups=3), [r(1, 3, 6, 5)])
    module_case("conv_groups2_dil3", nn.Conv2d(6, 4, 2, dilation=3, groups=2), [r(2, 6, 8, 7)])
    module_case("conv_pad_ge_width", nn.Conv2d(2, 3, 7, padding=3), [r(1, 2, 2, 3)])

    # MaxPool2d with padding (never chosen: inputs all negative) and dilation.
    module_case("pool_k3s2p1", nn.MaxPool2d(3, 2, 1), [r(2, 3, 8, 7) - 5])
    module_case("pool_k2s1p1", nn.MaxPool2d(2, 1, 1), [r(1, 2, 5, 4) - 5])
    module_case("pool_k3s1p1_dil2", nn.MaxPool2d(3, 1, 1, dilation=2), [r(1, 3, 7, 6)])
    # A window whose in-bounds taps are all -inf picks its first in-bounds tap; NaN still wins.
    x = spiked(r(1, 1, 4, 5), {(0, 0, 0, 0): -INF, (0, 0, 0, 1): -INF, (0, 0, 1, 0): -INF,
                               (0, 0, 1, 1): -INF, (0, 0, 2, 4): NAN})
    module_case("nonfinite_pool_k3s2p1", nn.MaxPool2d(3, 2, 1), [x])

    # AvgPool2d: default stride, padding counted or not, ceil_mode with and without padding.
    module_case("avgpool_k2", nn.AvgPool2d(2), [r(2, 3, 7, 9)])
    module_case("avgpool_k3s2p1", nn.AvgPool2d(3, 2, 1), [r(2, 3, 8, 7)])
    module_case("avgpool_k3s2p1_nocount", nn.AvgPool2d(3, 2, 1, count_include_pad=False), [r(2, 3, 8, 7)])
    module_case("avgpool_k3s2p1_ceil", nn.AvgPool2d(3, 2, 1, ceil_mode=True), [r(1, 2, 8, 8)])
    module_case("avgpool_k3s2_ceil_nocount", nn.AvgPool2d(3, 2, ceil_mode=True, count_include_pad=False),
                [r(1, 2, 7, 6)])
    module_case("avgpool_k2s1p1_ceil_nocount",
                nn.AvgPool2d(2, 1, 1, ceil_mode=True, count_include_pad=False), [r(1, 2, 4, 5)])

    # AdaptiveAvgPool2d: global, overlapping windows, output larger than the input.
    module_case("adaptive_1", nn.AdaptiveAvgPool2d(1), [r(2, 5, 7, 9)])
    module_case("adaptive_3x2", nn.AdaptiveAvgPool2d((3, 2)), [r(2, 3, 7, 5)])
    module_case("adaptive_4x5_up", nn.AdaptiveAvgPool2d((4, 5)), [r(1, 2, 3, 3)])

    # LayerNorm: over the last dim of a 3-d input, over two dims, without affine, a large eps on a
    # small-variance input, two calls accumulating parameter gradients.
    module_case("ln_last", nn.LayerNorm(7), [r(2, 4, 7)])
    module_case("ln_2d", nn.LayerNorm([4, 5]), [r(3, 4, 5) * 3 + 2])
    module_case("ln_noaffine", nn.LayerNorm(6, elementwise_affine=False), [r(4, 6)])
    module_case("ln_eps", nn.LayerNorm(5, eps=1e-3), [r(3, 5) * 0.05 + 1])
    module_case("ln_accum", nn.LayerNorm(6), [r(2, 6), r(3, 6)])

    # Identity: y is x, dx is dy.
    module_case("identity", nn.Identity(), [r(2, 3, 4)])

    # Cross entropy with label smoothing: several values, both reductions, e = 1, large logits.
    ce_target = lambda n, c: torch.randint(0, c, (n,))  # noqa: E731
    loss_case("ce_ls01_mean", nn.CrossEntropyLoss(label_smoothing=0.1), r(5, 7) * 3, ce_target(5, 7), 1.0,
              class_target=True)
    loss_case("ce_ls03_sum", nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.3), r(4, 3),
              ce_target(4, 3), 0.5, class_target=True)
    loss_case("ce_ls1_mean", nn.CrossEntropyLoss(label_smoothing=1.0), r(3, 6), ce_target(3, 6), 1.0,
              class_target=True)
    loss_case("ce_ls02_large", nn.CrossEntropyLoss(label_smoothing=0.2), r(3, 5) * 40 + 100,
              ce_target(3, 5), 2.0, class_target=True)

    # cross_entropy through autograd: Linear(4->3) then the loss (smoothing 0.2), one backward.
    lin = nn.Linear(4, 3)
    randomise(lin)
    x, t = r(5, 4), ce_target(5, 3)
    for name, p in lin.state_dict().items():
        golden[f"ce_autograd.state.{name}"] = p.detach().clone()
    loss = nn.CrossEntropyLoss(label_smoothing=0.2)(lin(x), t)
    loss.backward()
    golden["ce_autograd.x"] = x
    golden["ce_autograd.target"] = t.float()
    golden["ce_autograd.loss"] = loss.detach().reshape(1)
    for name, p in lin.named_parameters():
        golden[f"ce_autograd.grad.{name}"] = p.grad


def main():
    torch.manual_seed(1234)
    r = torch.randn

    # Linear: N=3, 7 -> 5 with bias; batch 1, 4 -> 3 without.
    module_case("linear_bias", nn.Linear(7, 5), [r(3, 7)])
    module_case("linear_nobias", nn.Linear(4, 3, bias=False), [r(1, 4)])
    # Linear twice without zeroing: parameter gradients accumulate.
    module_case("linear_accum", nn.Linear(3, 2), [r(2, 3), r(4, 3)])

    # Conv2d: 3 -> 5 channels, odd spatial sizes, stride 1/2, padding 0/1.
    conv = lambda **kw: nn.Conv2d(3, 5, 3, **kw)  # noqa: E731
    module_case("conv_s1p0", conv(stride=1, padding=0), [r(2, 3, 7, 9)])
    module_case("conv_s1p1", conv(stride=1, padding=1), [r(2, 3, 5, 7)])
    module_case("conv_s2p0", conv(stride=2, padding=0), [r(2, 3, 9, 7)])
    module_case("conv_s2p1", conv(stride=2, padding=1), [r(1, 3, 7, 9)])
    module_case("conv_k2s2_nobias", nn.Conv2d(5, 7, 2, stride=2, bias=False), [r(2, 5, 7, 5)])
    module_case("conv_k1", nn.Conv2d(3, 5, 1), [r(1, 3, 3, 5)])

    # MaxPool2d: kernel 2 and 3, stride 2, odd sizes (the last row/column is dropped).
    module_case("pool_k2s2", nn.MaxPool2d(2, 2), [r(2, 3, 7, 9)])
    module_case("pool_k3s2", nn.MaxPool2d(3, 2), [r(1, 5, 9, 7)])  # overlapping windows
    module_case("pool_k3s3", nn.MaxPool2d(3), [r(2, 3, 8, 7)])

    # ReLU (any shape) and Flatten.
    module_case("relu", nn.ReLU(), [r(3, 5, 7)])
    module_case("flatten", nn.Flatten(), [r(2, 3, 5, 7)])

    # BatchNorm1d: (N, C) and (N, C, L), train (momentum 0.1 / 0.3) and eval (running stats).
    module_case("bn1d_nc_train", nn.BatchNorm1d(5), [r(6, 5) * 2 + 1], nbt=4)
    module_case("bn1d_nc_train_m03", nn.BatchNorm1d(7, momentum=0.3), [r(4, 7)], nbt=1)
    module_case("bn1d_ncl_train", nn.BatchNorm1d(3), [r(4, 3, 7)], nbt=2)
    module_case("bn1d_ncl_train_batch1", nn.BatchNorm1d(3), [r(1, 3, 5)])
    module_case("bn1d_nc_eval", nn.BatchNorm1d(5), [r(6, 5)], train=False, nbt=10)
    module_case("bn1d_nc_eval_batch1", nn.BatchNorm1d(5), [r(1, 5)], train=False, nbt=10)
    module_case("bn1d_ncl_eval", nn.BatchNorm1d(3), [r(2, 3, 7)], train=False, nbt=3)
    module_case("bn1d_nc_cumulative", nn.BatchNorm1d(5, momentum=None), [r(4, 5), r(3, 5), r(6, 5)])

    # PyTorch refuses a (1, C) batch in train mode; the C++ test expects lockstep::Error.
    try:
        nn.BatchNorm1d(5).train()(r(1, 5))
        raise SystemExit("expected BatchNorm1d to reject a batch of 1 in train mode")
    except ValueError:
        pass

    # BatchNorm2d.
    module_case("bn2d_train", nn.BatchNorm2d(5), [r(3, 5, 5, 7) * 1.5 - 0.5], nbt=7)
    module_case("bn2d_train_m03", nn.BatchNorm2d(3, momentum=0.3), [r(2, 3, 5, 5)], nbt=0)
    module_case("bn2d_cumulative", nn.BatchNorm2d(3, momentum=None),
                [r(2, 3, 3, 5), r(4, 3, 3, 5) + 1, r(3, 3, 3, 5) * 2])
    module_case("bn2d_m01_3steps", nn.BatchNorm2d(3), [r(2, 3, 3, 5), r(4, 3, 3, 5) + 1, r(3, 3, 3, 5) * 2])
    module_case("bn2d_eval", nn.BatchNorm2d(5), [r(2, 5, 3, 7)], train=False, nbt=11)
    module_case("bn2d_noaffine_train", nn.BatchNorm2d(3, affine=False), [r(2, 3, 5, 5)], nbt=0)
    module_case("bn2d_noaffine_eval", nn.BatchNorm2d(3, affine=False), [r(2, 3, 5, 5)], train=False)
    module_case("bn2d_notrack_train", nn.BatchNorm2d(5, track_running_stats=False), [r(2, 5, 3, 3)])
    module_case("bn2d_notrack_eval", nn.BatchNorm2d(5, track_running_stats=False), [r(2, 5, 3, 3)],
                train=False)
    module_case("bn1d_notrack_eval", nn.BatchNorm1d(7, track_running_stats=False), [r(4, 7)], train=False)
    module_case("bn2d_eps_train", nn.BatchNorm2d(3, eps=1e-3), [r(2, 3, 3, 3) * 0.05], nbt=0)
    module_case("bn2d_eps_eval", nn.BatchNorm2d(3, eps=1e-3), [r(2, 3, 3, 3)], train=False)
    module_case("bn2d_batch1_train", nn.BatchNorm2d(5), [r(1, 5, 3, 5)], nbt=0)

    # Also a BatchNorm1d without running stats refuses a (1, C) batch in eval mode, since it
    # normalises with batch statistics there too; tests/layers/batch_norm_test.cc expects the same.
    try:
        nn.BatchNorm1d(5, track_running_stats=False).eval()(r(1, 5))
        raise SystemExit("expected BatchNorm1d(track_running_stats=False) to reject a batch of 1")
    except ValueError:
        pass

    # Losses: mean and sum reductions, batch 1, a grad_output other than 1.
    ce_target = lambda n, c: torch.randint(0, c, (n,))  # noqa: E731
    loss_case("ce_mean", nn.CrossEntropyLoss(), r(5, 7) * 3, ce_target(5, 7), 1.0, class_target=True)
    loss_case("ce_sum", nn.CrossEntropyLoss(reduction="sum"), r(4, 3), ce_target(4, 3), 0.5,
              class_target=True)
    loss_case("ce_batch1", nn.CrossEntropyLoss(), r(1, 10), ce_target(1, 10), 1.0, class_target=True)
    # Large logits: only correct with the max shift in log-softmax.
    loss_case("ce_large", nn.CrossEntropyLoss(), r(3, 5) * 40 + 100, ce_target(3, 5), 1.0, class_target=True)
    loss_case("mse_mean", nn.MSELoss(), r(3, 4, 5), r(3, 4, 5), 1.0)
    loss_case("mse_sum", nn.MSELoss(reduction="sum"), r(2, 7), r(2, 7), 2.0)

    nonfinite_cases(r)
    vision_cases(r)

    golden_io.save(OUT, golden)
    print(f"wrote {len(golden)} tensors to {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")

    # Reference models' state_dict keys (hard-coded in tests/layers/state_dict_test.cc).
    mlp = nn.Sequential(nn.Linear(784, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Dropout(0.2),
                        nn.Linear(512, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.2),
                        nn.Linear(256, 10))
    cnn = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Dropout(0.25), nn.Flatten(), nn.Linear(3136, 128), nn.BatchNorm1d(128),
                        nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    for name, model in (("fmnist-mlp", mlp), ("fmnist-cnn", cnn)):
        print(name)
        for k, t in model.state_dict().items():
            print(f'      {{"{k}", {{{", ".join(str(d) for d in t.shape)}}}}},')


if __name__ == "__main__":
    main()
