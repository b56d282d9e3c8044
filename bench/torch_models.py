"""The reference models of lockstep (layers/reference_models.cc) written in PyTorch, for the
benchmark peers bench/torch_peer.py and bench/torch_ddp_peer.py. Same layers, same shapes, same
module names (initialisation is PyTorch's own: throughput does not depend on it).
  fmnist-mlp:  x (N, 784)       -> logits (N, 10)
  fmnist-cnn:  x (N, 1, 28, 28) -> logits (N, 10)
  fmnist-resnet8 / fmnist-resnet20: x (N, 1, 28, 28) -> logits (N, 10); the CIFAR ResNet of He et
  al. 2016 (layers/resnet.h): conv1 3x3 1->16 bn1 relu; layer1..layer3 of 16/32/64 channels with
  1 or 3 BasicBlocks each, the first block of layer2 and layer3 at stride 2 with a projection
  shortcut `downsample` (1x1 conv stride 2, no bias, + BatchNorm2d); global average pool; fc 64->10.
"""
from torch import nn


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); x: (N, cin, H, W) -> (N, cout, H/s, W/s)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)  # torchvision: one in-place ReLU used twice
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """x: (N, in_channels, H, W) -> logits (N, num_classes)."""

    def __init__(self, blocks_per_stage, in_channels=1, num_classes=10, widths=(16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        cin = widths[0]
        for s, w in enumerate(widths):
            blocks = []
            for b in range(blocks_per_stage):
                blocks.append(BasicBlock(cin, w, 2 if (s > 0 and b == 0) else 1))
                cin = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.num_stages = len(widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for s in range(self.num_stages):
            x = getattr(self, f"layer{s + 1}")(x)
        return self.fc(self.avgpool(x).flatten(1))


def model(name):
    """Returns (module, one sample's shape)."""
    if name == "fmnist-mlp":
        return nn.Sequential(
            nn.Linear(784, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(512, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(256, 10)), (784,)
    if name == "fmnist-cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.25), nn.Flatten(), nn.Linear(3136, 128), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(128, 10)), (1, 28, 28)
    if name in ("fmnist-resnet8", "fmnist-resnet20"):
        return ResNet(1 if name == "fmnist-resnet8" else 3), (1, 28, 28)
    raise SystemExit(f"unknown model {name!r} (known: fmnist-mlp, fmnist-cnn, fmnist-resnet8, fmnist-resnet20)")
