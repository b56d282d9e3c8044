"""Writes tests/fixtures/augment_golden.safetensors: Fashion-MNIST training images augmented by PyTorch as
torchvision's [RandomCrop(28, padding=p), RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)]
computes them, for fixed draws (top, left, flip); tests/runtime/augment_golden_test.cc feeds the
same draws to lockstep's augment_sample. Run with /usr/bin/python3 (has torch; torchvision is not
needed: its RandomCrop pads with torch.nn.functional.pad(mode="constant", value=fill=0) and slices
img[..., top:top + h, left:left + w], and its hflip is img.flip(-1); those ops are used directly).

Keys: draws (K, 5): sample index, padding p, top, left, flip (0 or 1); images (K, 28, 28): the
normalised augmented images.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
MEAN, STD = 0.2860, 0.3530  # lockstep's (and the job files') Fashion-MNIST defaults

# (sample, padding, top, left, flip): the corners and centre of the offset range, both flips,
# and a padding as large as the image, whose windows may hold no pixel of it.
CASES = [
    (0, 2, 0, 0, 0), (0, 2, 4, 4, 1), (1, 2, 2, 2, 0), (1, 2, 2, 2, 1), (17, 2, 0, 4, 1),
    (12345, 4, 8, 0, 0), (12345, 4, 3, 7, 1), (59999, 4, 4, 4, 1), (30000, 1, 1, 0, 1),
    (42, 28, 0, 56, 0), (42, 28, 20, 30, 1), (7, 0, 0, 0, 1),
]


def augment(img_u8, p, top, left, flip):
    """img_u8: (28, 28) uint8 -> (28, 28) float32, as the torchvision pipeline above."""
    h, w = img_u8.shape
    x = torch.from_numpy(img_u8.copy()).unsqueeze(0)  # (1, H, W) uint8, a PIL image's tensor
    if p > 0:
        x = F.pad(x, [p, p, p, p], mode="constant", value=0)
    x = x[..., top:top + h, left:left + w]
    if flip:
        x = x.flip(-1)
    x = x.float().div(255)  # ToTensor
    return ((x - MEAN) / STD)[0]  # Normalize


def main():
    images = golden_io.read_idx(DATA)
    out = [augment(images[s], p, t, l, f) for s, p, t, l, f in CASES]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "augment_golden.safetensors")
    golden_io.save(path, {"draws": torch.tensor(CASES, dtype=torch.float32), "images": torch.stack(out)})
    print(f"wrote {path}: {len(CASES)} cases")


if __name__ == "__main__":
    main()
