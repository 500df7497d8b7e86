"""Weighted kNN classifier of Wu et al. 2018 (docs/protocols.md), as Spreading and ISL use it on CIFAR.

Each test feature votes over its k most cosine-similar training features with weight exp(s / temperature);
the class with the largest summed weight wins (ties: the lower class id). Defaults k = 200, temperature 0.1
(the CIFAR code; 0.07 for ImageNet).
"""
from __future__ import annotations

from typing import Any

import torch

from ._inputs import EvalInputError, as_embeddings, as_labels
from .knn import knn


def weighted_knn_scores(similarities: torch.Tensor, neighbour_labels: torch.Tensor, num_classes: int,
                        temperature: float) -> torch.Tensor:
    """Class scores (n, num_classes) up to a per-row factor: sum of exp((s - s_max) / T) per class.

    Subtracting the row maximum changes no ranking and keeps exp finite for any T.
    """
    s = similarities.double()
    w = ((s - s.max(dim=1, keepdim=True).values) / temperature).exp()
    return torch.zeros(s.shape[0], num_classes, dtype=torch.float64, device=s.device).scatter_add_(
        1, neighbour_labels.long(), w)


def weighted_knn_accuracy(train_emb: Any, train_labels: Any, test_emb: Any, test_labels: Any, k: int = 200,
                          temperature: float = 0.1, *, topk: int = 1, normalize: bool = True,
                          backend: str = "auto", max_bytes: int = 512 * 2**20) -> float:
    """Top-``topk`` accuracy (fraction) of the weighted kNN vote of test features over training features.

    ``normalize`` L2-normalises both sets first (the method assumes unit vectors, so cosine = inner product).
    """
    if not temperature > 0:
        raise EvalInputError(f"temperature must be > 0, got {temperature}.")
    tr = as_embeddings(train_emb, "train_emb")
    te = as_embeddings(test_emb, "test_emb")
    ytr = as_labels(train_labels, tr.shape[0], "train_labels")
    yte = as_labels(test_labels, te.shape[0], "test_labels")
    if (ytr < 0).any() or (yte < 0).any():
        raise EvalInputError("labels must be non-negative class ids; remap them to 0..C-1.")
    if normalize:
        tr, te = torch.nn.functional.normalize(tr, dim=1), torch.nn.functional.normalize(te, dim=1)
    k = min(k, tr.shape[0])
    num_classes = int(max(ytr.max(), yte.max())) + 1
    if not 1 <= topk <= num_classes:
        raise EvalInputError(f"topk={topk} must lie in [1, {num_classes}] (the number of classes).")
    # Chunk the test set so the (chunk, num_classes) vote table stays within max_bytes too.
    rows = max(1, int(max_bytes // (8 * (num_classes + 4 * k))))
    correct = 0
    for start in range(0, te.shape[0], rows):
        sims, idx = knn(te[start:start + rows], tr, k, metric="ip", backend=backend, max_bytes=max_bytes)
        scores = weighted_knn_scores(sims, ytr.to(idx.device)[idx], num_classes, temperature)
        # stable descending sort: equal scores keep the lower class id first
        top = scores.argsort(dim=1, descending=True, stable=True)[:, :topk]
        correct += int((top == yte[start:start + rows].to(top.device)[:, None]).any(dim=1).sum())
    return correct / te.shape[0]
