"""Per-epoch nearest-neighbour batches (STML) and Spreading's CUB 1-NN partner trick.

STML (``dataset/sampler.py``): at every epoch start the student (eval mode) embeds the training set; each
image keeps its K nearest images by squared Euclidean distance *including itself*; a batch is
``batch_size // K`` queries drawn without replacement, each followed by its K-NN list; epoch length is
``N // batch_size``. Duplicates across lists are possible (as in the official code).
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import SsmlError
from ._common import as_features, as_index, check_positive_int
from ._epoch_sampler import EpochBatchSampler, epoch_generator


def neighbour_table(features: Any, num_neighbors: int, *, metric: str = "l2sq", backend: str = "auto",
                    max_bytes: int | None = None) -> torch.Tensor:
    """int64 (N, K): row i = [i, its K-1 nearest other rows] (self first by index, ties by index).

    Self is placed first explicitly rather than trusted to come out at distance 0, so an exact duplicate
    with a lower index cannot push an image out of its own list.
    """
    from ..eval.knn import knn

    feats = as_features(features)
    k = check_positive_int(num_neighbors, "num_neighbors")
    if k > feats.shape[0]:
        raise SsmlError(f"num_neighbors={k} exceeds the {feats.shape[0]} images; use a smaller K.")
    self_col = torch.arange(feats.shape[0], device=feats.device)[:, None]
    if k == 1:
        return self_col
    kwargs = {} if max_bytes is None else {"max_bytes": max_bytes}
    _, idx = knn(feats, None, k=k - 1, metric=metric, exclude_self=True, backend=backend, **kwargs)
    return torch.cat([self_col, torch.as_tensor(idx).to(feats.device, torch.int64)], dim=1)


class NeighbourBatchSampler(EpochBatchSampler):
    """Batch sampler yielding STML neighbour batches; call :meth:`update_neighbours` at each epoch start.

    The table changes every epoch and cannot be recomputed from a mid-epoch checkpoint (the model moved),
    so :meth:`state_dict` carries it (N x K int64; 2.4 MB for SOP at K = 5).
    """

    def __init__(self, neighbours: Any, batch_size: int, *, seed: int = 0, num_replicas: int | None = None,
                 rank: int | None = None):
        table = as_index(neighbours, "neighbours", ndim=2)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        k = table.shape[1]
        if self.batch_size % k:
            raise SsmlError(f"batch_size={batch_size} is not a multiple of the {k} neighbours per query; "
                            f"use batch_size = queries x {k}.")
        super().__init__(table, seed=seed, num_replicas=num_replicas, rank=rank)
        if len(self) == 0:
            raise SsmlError(f"{table.shape[0]} images give {self.num_global_batches()} batch(es) of "
                            f"{batch_size}, fewer than the {self.num_replicas} replicas; use a smaller batch.")

    @property
    def queries_per_batch(self) -> int:
        return self.batch_size // self.table.shape[1]

    def update_neighbours(self, neighbours: Any) -> None:
        """Install the new epoch's table (same N and K)."""
        table = as_index(neighbours, "neighbours", ndim=2)
        if table.shape != self.table.shape:
            raise SsmlError(f"new neighbour table {tuple(table.shape)} differs from {tuple(self.table.shape)}; "
                            f"keep N and K fixed, or build a new sampler.")
        self._set_table(table)

    def num_global_batches(self) -> int:
        return self.table.shape[0] // self.batch_size

    def global_batches(self, epoch: int) -> torch.Tensor:
        n, q = self.table.shape[0], self.queries_per_batch
        perm = torch.randperm(n, generator=epoch_generator(self.seed, epoch))
        queries = perm[: self.num_global_batches() * q].view(-1, q)
        return self.table[queries].reshape(queries.shape[0], -1)

    def state_dict(self, consumed_batches: int | None = None) -> dict[str, Any]:
        state = super().state_dict(consumed_batches)
        state["table"] = self.table.clone()
        return state


def spreading_partners(features: Any, *, probability: float = 0.5, generator: torch.Generator | None = None,
                       backend: str = "auto") -> torch.Tensor:
    """Spreading's undocumented CUB trick: partner[i] = 1-NN of i (inner product, self excluded by index)
    with probability ``probability``, else i itself. The second view of item i is then drawn from image
    ``partner[i]``. The official code used L2-normalised pool5 features, recomputed before every epoch."""
    from ..eval.knn import knn

    feats = as_features(features)
    if not 0.0 <= float(probability) <= 1.0:
        raise SsmlError(f"probability must lie in [0, 1], got {probability}.")
    if feats.shape[0] < 2:
        raise SsmlError("spreading_partners needs at least 2 images to find a nearest neighbour.")
    _, idx = knn(feats, None, k=1, metric="ip", exclude_self=True, backend=backend)
    nn1 = torch.as_tensor(idx).to(feats.device, torch.int64)[:, 0]
    gen_device = generator.device if generator is not None else feats.device
    coin = torch.rand(feats.shape[0], generator=generator, device=gen_device).to(feats.device) < probability
    return torch.where(coin, nn1, torch.arange(feats.shape[0], device=feats.device))
