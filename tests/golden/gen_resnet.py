"""Writes tests/fixtures/resnet8_golden.safetensors: the fmnist-resnet8 reference model (layers/resnet.h) in
PyTorch 1.13, replayed by tests/trainer/resnet_golden_test.cc. Run with /usr/bin/python3 (has torch):
/usr/bin/python3 tests/golden/gen_resnet.py

Model: the CIFAR ResNet of He et al. 2016 with torchvision's module names, 1 BasicBlock per stage of
16/32/64 channels, projection shortcuts (1x1 conv + BN) where a block changes shape, global average
pooling, Linear(64, 10). Data: the first Fashion-MNIST training samples in file order, x / 255
then (x - 0.2860) / 0.3530 in float32 (the C++ loader's formula). One thread.

Keys: init.{name}         every state_dict entry before the first step
      step.logits         (BATCH, 10) train-mode forward of batch 0
      step.loss           (1) its mean cross-entropy
      step.grad.{name}    every parameter gradient of that loss
      step.after.{name}   every buffer after that forward (running stats, num_batches_tracked)
      step.eval_logits    (BATCH, 10) eval-mode forward of batch 0 with those buffers
      sgd.losses          (STEPS) float32 loss of each of STEPS SGD(lr 0.05, momentum 0.9) steps on
                          batches 0..STEPS-1, each computed before that step's update
      sgd.losses_fp64     (STEPS) the same run in float64 from the same initial weights
"""
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "resnet8_golden.safetensors")
DATA = "/usr/share/datasets/fashion-mnist"
STEPS, BATCH = 5, 32
MEAN, STD = 0.2860, 0.3530


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, blocks, widths=(16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        cin = widths[0]
        for s, w in enumerate(widths):
            layers = []
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, 2 if b == 0 and s > 0 else 1))
                cin = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def sgd_losses(init, x_all, y_all, dtype):
    model = ResNet(1)
    model.load_state_dict(init)
    model = model.to(dtype).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for i in range(STEPS):
        x, y = x_all[BATCH * i:BATCH * (i + 1)].to(dtype), y_all[BATCH * i:BATCH * (i + 1)]
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


def main():
    torch.set_num_threads(1)
    n = STEPS * BATCH
    images = golden_io.read_idx(f"{DATA}/train-images-idx3-ubyte.gz")[:n]
    labels = golden_io.read_idx(f"{DATA}/train-labels-idx1-ubyte.gz")[:n]
    x_all = (images.astype(np.float32) / np.float32(255) - np.float32(MEAN)) / np.float32(STD)
    x_all = torch.from_numpy(x_all).reshape(n, 1, 28, 28)
    y_all = torch.from_numpy(labels.astype(np.int64))

    torch.manual_seed(2026)
    model = ResNet(1)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    golden = {f"init.{k}": v.float() for k, v in init.items()}

    model.train()
    logits = model(x_all[:BATCH])
    loss = nn.functional.cross_entropy(logits, y_all[:BATCH])
    loss.backward()
    golden["step.logits"] = logits.detach()
    golden["step.loss"] = torch.tensor([loss.item()])
    for k, p in model.named_parameters():
        golden[f"step.grad.{k}"] = p.grad.detach()
    for k, b in model.named_buffers():
        golden[f"step.after.{k}"] = b.detach().float()
    model.eval()
    with torch.no_grad():
        golden["step.eval_logits"] = model(x_all[:BATCH])

    golden["sgd.losses"] = torch.tensor(sgd_losses(init, x_all, y_all, torch.float32))
    golden["sgd.losses_fp64"] = torch.tensor(sgd_losses(init, x_all, y_all, torch.float64))
    golden_io.save(OUT, golden)
    print("losses     ", golden["sgd.losses"].numpy())
    print("losses fp64", golden["sgd.losses_fp64"].numpy())
    print(f"wrote {len(golden)} tensors to {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
