"""InsCLR tuple batches: shuffled anchors, each followed by its first K candidate-pool neighbours.

Official InsCLR (``dataset_with_neighbors.py``, ``random_sampler.py``): anchors are drawn by a reshuffling
random sampler with drop-last; each anchor brings its *top* K = 3 pool neighbours (deterministic, not
sampled); anchor ``i`` and its neighbours share the pseudo-label ``i + 1`` (labels stay > 0 so that the
in-batch selection can mark rejected neighbours with the negated label). True labels are never used.

Batch layout (used by :mod:`.selection` and :mod:`.query_expansion`): ``B`` groups of ``1 + K`` indices,
``[a_1, n_11..n_1K, a_2, n_21..n_2K, ...]``.
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import SsmlError
from ._common import as_index, check_positive_int
from ._epoch_sampler import EpochBatchSampler, epoch_generator


def tuple_batch(anchors: Any, pool_indices: Any, num_neighbors: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (B*(1+K),) and pseudo-labels (B*(1+K),) for the given anchors, in group layout."""
    anchors = as_index(anchors, "anchors", ndim=1)
    pool = as_index(pool_indices, "pool_indices", ndim=2)
    k = _check_k(num_neighbors, pool)
    group = torch.cat([anchors[:, None], pool[anchors.to(pool.device), :k].to(anchors.device)], dim=1)
    return group.reshape(-1), (anchors + 1).repeat_interleave(1 + k)


def tuple_labels(batch_indices: Any, num_neighbors: int = 3) -> torch.Tensor:
    """Pseudo-labels of a flat tuple batch: every member of a group gets (its anchor's index + 1)."""
    idx = as_index(batch_indices, "batch_indices", ndim=1)
    k = check_positive_int(num_neighbors, "num_neighbors", minimum=0)
    if idx.numel() % (1 + k):
        raise SsmlError(f"a tuple batch has groups of 1 + {k} indices, but {idx.numel()} is not a multiple of "
                        f"{1 + k}; pass the batch exactly as TupleBatchSampler yields it.")
    return (idx.view(-1, 1 + k)[:, :1] + 1).expand(-1, 1 + k).reshape(-1)


class TupleBatchSampler(EpochBatchSampler):
    """Batch sampler (``DataLoader(batch_sampler=...)``) yielding InsCLR tuple batches.

    One epoch = one pass over a seeded permutation of all images as anchors, cut into batches of
    ``anchors_per_batch`` (drop-last), i.e. ``N // anchors_per_batch`` global batches, dealt round-robin
    to ``num_replicas`` ranks (each rank's batch holds ``anchors_per_batch`` anchors, as a per-GPU batch).
    The official step-based loop (reshuffle when exhausted, for MAX_STEP steps) is this sampler iterated
    over consecutive epochs.
    """

    def __init__(self, pool_indices: Any, anchors_per_batch: int, num_neighbors: int = 3, *, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None):
        pool = as_index(pool_indices, "pool_indices", ndim=2)
        self.num_neighbors = _check_k(num_neighbors, pool)
        self.anchors_per_batch = check_positive_int(anchors_per_batch, "anchors_per_batch")
        if self.anchors_per_batch > pool.shape[0]:
            raise SsmlError(f"anchors_per_batch={anchors_per_batch} exceeds the {pool.shape[0]} images; "
                            f"use a smaller batch.")
        super().__init__(pool[:, : self.num_neighbors], seed=seed, num_replicas=num_replicas, rank=rank)
        if len(self) == 0:
            raise SsmlError(f"{self.num_global_batches()} batch(es) per epoch cannot be shared by "
                            f"{self.num_replicas} replicas; use fewer anchors per batch or fewer processes.")

    def num_global_batches(self) -> int:
        return self.table.shape[0] // self.anchors_per_batch

    def global_batches(self, epoch: int) -> torch.Tensor:
        n, b = self.table.shape[0], self.anchors_per_batch
        perm = torch.randperm(n, generator=epoch_generator(self.seed, epoch))
        anchors = perm[: self.num_global_batches() * b].view(-1, b)
        groups = torch.cat([anchors[..., None], self.table[anchors]], dim=-1)  # (batches, B, 1+K)
        return groups.reshape(anchors.shape[0], -1)


def _check_k(num_neighbors: int, pool: torch.Tensor) -> int:
    k = check_positive_int(num_neighbors, "num_neighbors", minimum=0)
    if k > pool.shape[1]:
        raise SsmlError(f"num_neighbors={k} but the candidate pool keeps only {pool.shape[1]} neighbours per "
                        f"image; recompute the pool with pool_size >= {k}.")
    return k
