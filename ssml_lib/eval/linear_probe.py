"""Linear probe: a seeded linear classifier trained on frozen features, scored on the test features.

Protocol (ours; record it with the numbers): optionally L2-normalise the features, standardise each dimension
with the training mean and std, train one ``nn.Linear`` with cross-entropy and AdamW (lr, weight decay), a
cosine learning-rate schedule, ``epochs`` passes of shuffled mini-batches drawn from a seeded generator, then
report top-1 accuracy of the final weights on the test set (no model selection on the test set).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ._inputs import EvalInputError, as_embeddings, as_labels


def linear_probe_accuracy(train_emb: Any, train_labels: Any, test_emb: Any, test_labels: Any, *,
                          epochs: int = 100, batch_size: int = 256, lr: float = 1e-2,
                          weight_decay: float = 1e-4, normalize: bool = True, seed: int = 0,
                          device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy (fraction) of a linear classifier fitted on frozen training features."""
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise EvalInputError(f"need epochs >= 1, batch_size >= 1 and lr > 0; got {epochs}, {batch_size}, {lr}.")
    tr = as_embeddings(train_emb, "train_emb").to(device)
    te = as_embeddings(test_emb, "test_emb").to(device)
    if tr.shape[1] != te.shape[1]:
        raise EvalInputError(f"train features have {tr.shape[1]} dims but test features {te.shape[1]}.")
    ytr = as_labels(train_labels, tr.shape[0], "train_labels").to(device)
    yte = as_labels(test_labels, te.shape[0], "test_labels").to(device)
    if (ytr < 0).any() or (yte < 0).any():
        raise EvalInputError("labels must be non-negative class ids; remap them to 0..C-1.")
    if normalize:
        tr, te = torch.nn.functional.normalize(tr, dim=1), torch.nn.functional.normalize(te, dim=1)
    mean, std = tr.mean(dim=0), tr.std(dim=0, unbiased=False).clamp_min(1e-6)
    tr, te = (tr - mean) / std, (te - mean) / std

    gen = torch.Generator().manual_seed(seed)
    num_classes = int(max(ytr.max(), yte.max())) + 1
    layer = torch.nn.Linear(tr.shape[1], num_classes).to(device)
    with torch.no_grad():  # seeded init, independent of the global RNG
        bound = 1 / math.sqrt(tr.shape[1])
        layer.weight.copy_(torch.empty(layer.weight.shape).uniform_(-bound, bound, generator=gen))
        layer.bias.zero_()
    opt = torch.optim.AdamW(layer.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(tr.shape[0] / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(tr.shape[0], generator=gen).to(device)
            for b in range(steps_per_epoch):
                batch = order[b * batch_size:(b + 1) * batch_size]
                loss = torch.nn.functional.cross_entropy(layer(tr[batch]), ytr[batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    with torch.no_grad():
        pred = layer(te).argmax(dim=1)
    return float((pred == yte).double().mean())
