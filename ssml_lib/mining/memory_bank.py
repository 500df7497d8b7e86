"""Feature memory banks on the training device: InsCLR overwrite bank (v1 negatives) and ISL momentum bank.

The bank is an ``nn.Module`` whose ``features`` / ``written`` are registered buffers, so ``state_dict()``
checkpoints restore it and ``.to(device)`` moves it. Storage may be fp16 (half the memory of the official
CPU bank); reads return fp32 and updates are computed in fp32. Writes from all DDP ranks are gathered, so
every rank holds the same bank.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SsmlError
from ._common import (all_gather_cat, as_features, as_index, check_choice, check_positive_int, fill_at_,
                      last_occurrence)


class FeatureMemory(nn.Module):
    """N x D feature bank indexed by dataset index."""

    def __init__(self, num_items: int, dim: int, *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, init: str = "zeros",
                 generator: torch.Generator | None = None):
        super().__init__()
        n, d = check_positive_int(num_items, "num_items"), check_positive_int(dim, "dim")
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise SsmlError(f"memory dtype must be float32, float16 or bfloat16, got {dtype}.")
        check_choice(init, "init", ("zeros", "uniform"))
        self.register_buffer("features", torch.zeros(n, d, dtype=dtype, device=device))
        self.register_buffer("written", torch.zeros(n, dtype=torch.bool, device=device))
        if init == "uniform":
            self.init_uniform_(generator)

    @property
    def num_items(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def init_uniform_(self, generator: torch.Generator | None = None) -> None:
        """ISL / lemniscate start: uniform in [-1/sqrt(D/3), 1/sqrt(D/3)], not normalised; counts as written."""
        bound = 1.0 / math.sqrt(self.features.shape[1] / 3.0)
        dev = generator.device if generator is not None else self.features.device
        values = torch.rand(self.features.shape, generator=generator, device=dev) * (2 * bound) - bound
        self.features.copy_(values.to(self.features))
        self.written.fill_(True)

    def read(self, indices: Any) -> torch.Tensor:
        """fp32 features of ``indices`` (any shape) -> (*indices.shape, D)."""
        idx = as_index(indices, "indices").to(self.features.device)
        return self.features[idx].float()

    @torch.no_grad()
    def write(self, indices: Any, features: Any, *, gather: bool = True) -> None:
        """Overwrite rows (InsCLR: the augmented batch features, no momentum). Duplicates: last one wins."""
        idx, feats = self._prepare(indices, features, gather)
        self.features[idx] = feats[last_occurrence(idx)].to(self.features.dtype)
        fill_at_(self.written, idx, True)

    @torch.no_grad()
    def momentum_update(self, indices: Any, features: Any, momentum: float = 0.5, *, normalize: bool = True,
                        gather: bool = True) -> None:
        """ISL: ``M[i] <- normalise(mu * M[i] + (1 - mu) * x_i)`` (mu = 0.5 in the official code)."""
        if not 0.0 <= float(momentum) <= 1.0:
            raise SsmlError(f"momentum must lie in [0, 1], got {momentum}.")
        idx, feats = self._prepare(indices, features, gather)
        feats = feats[last_occurrence(idx)].float()
        new = momentum * self.features[idx].float() + (1.0 - momentum) * feats
        if normalize:
            new = F.normalize(new, dim=1)
        self.features[idx] = new.to(self.features.dtype)
        fill_at_(self.written, idx, True)

    def _prepare(self, indices: Any, features: Any, gather: bool) -> tuple[torch.Tensor, torch.Tensor]:
        idx = as_index(indices, "indices", ndim=1).to(self.features.device)
        feats = as_features(features).detach().to(self.features.device)
        if feats.shape != (idx.numel(), self.features.shape[1]):
            raise SsmlError(f"features {tuple(feats.shape)} must be (len(indices)={idx.numel()}, "
                            f"{self.features.shape[1]}) to be written to this bank.")
        if gather:
            idx, feats = all_gather_cat(idx), all_gather_cat(feats)
        return idx, feats


class MemoryDraw(NamedTuple):
    indices: torch.Tensor   # (L,) dataset indices (arbitrary where not valid)
    features: torch.Tensor  # (L, D) fp32, zero rows where not valid
    labels: torch.Tensor    # (L,) one dummy label N + 1 for every row
    valid: torch.Tensor     # (L,) bool


@torch.no_grad()
def draw_negatives(memory: FeatureMemory, batch_indices: Any, pool_indices: Any, num_draw: int, *,
                   num_exclude: int = 50, exclude_batch: bool = False,
                   generator: torch.Generator | None = None) -> MemoryDraw:
    """InsCLR memory v1: ``num_draw`` uniform written entries, none among the first ``num_exclude`` pool
    neighbours of any batch item, all labelled with the dummy label ``N + 1`` (negatives only).

    The size stays fixed (no host sync): if fewer entries are eligible, the surplus rows are marked
    invalid and get zero features, which a margin contrastive loss ignores (similarity 0 < margin).
    ``exclude_batch=True`` also keeps the batch items' own entries out (the official code does not).
    """
    n = memory.num_items
    num_draw = check_positive_int(num_draw, "num_draw")
    if num_draw > n:
        raise SsmlError(f"num_draw={num_draw} exceeds the bank size {n}; draw at most {n} entries.")
    device = memory.features.device
    batch = as_index(batch_indices, "batch_indices", ndim=1).to(device)
    pool = as_index(pool_indices, "pool_indices", ndim=2)
    if pool.shape[0] != n:
        raise SsmlError(f"candidate pool has {pool.shape[0]} rows but the bank {n}; use the same dataset.")
    excluded = torch.zeros(n, dtype=torch.bool, device=device)
    fill_at_(excluded, pool[batch.to(pool.device), :num_exclude].reshape(-1).to(device), True)
    if exclude_batch:
        fill_at_(excluded, batch, True)
    eligible = memory.written & ~excluded
    # Uniform sampling without replacement = the top-k of i.i.d. uniform keys; ineligible keys sink to -1.
    dev = generator.device if generator is not None else device
    keys = torch.rand(n, generator=generator, device=dev).to(device)
    top = torch.where(eligible, keys, torch.full_like(keys, -1.0)).topk(num_draw)
    valid = top.values >= 0
    feats = memory.read(top.indices) * valid[:, None]
    labels = torch.full((num_draw,), n + 1, dtype=torch.int64, device=device)
    return MemoryDraw(top.indices, feats, labels, valid)
