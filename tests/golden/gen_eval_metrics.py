"""Writes tests/fixtures/eval_metrics_golden.safetensors: top-k hits, confusion matrix and per-class accuracy
of fixed random logits as PyTorch 1.13 computes them (torchvision's reference accuracy(): the target
among output.topk(k).indices; the confusion matrix as torchmetrics' bincount(target * C + pred)),
replayed by tests/trainer/eval_metrics_test.cc. Run with /usr/bin/python3 (has torch).

Keys: logits (N, C), target (N), top_k (K) the k values, top_k_correct (K), confusion (C, C) rows =
true class, columns = predicted class, per_class_accuracy (C). Random normal logits have no ties, so
torch.topk's unspecified tie order does not matter here (ties are tested against a formula).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

N, C = 300, 10
TOP_K = [1, 3, 5, 10]

torch.manual_seed(11)
logits = torch.randn(N, C)
target = torch.randint(0, C, (N,))
target[:4] = 7  # class 9 left with a few samples only, class 7 with more
top_k_correct = [torch.topk(logits, k, dim=1).indices.eq(target[:, None]).any(dim=1).sum().item() for k in TOP_K]
pred = logits.argmax(dim=1)
confusion = torch.bincount(target * C + pred, minlength=C * C).reshape(C, C)
per_class = confusion.diag().double() / confusion.sum(dim=1).double()

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "eval_metrics_golden.safetensors")
golden_io.save(out, {
    "logits": logits,
    "target": target.float(),
    "top_k": torch.tensor(TOP_K, dtype=torch.float32),
    "top_k_correct": torch.tensor(top_k_correct, dtype=torch.float32),
    "confusion": confusion.float(),
    "per_class_accuracy": per_class.float(),
})
print(out, "top_k_correct", top_k_correct)
