"""k-nearest and k-reciprocal neighbours on a square similarity matrix (vectorised, no host sync)."""
from __future__ import annotations

from typing import NamedTuple

import torch

from ._common import LossInputError


class ReciprocalNeighbours(NamedTuple):
    knn_index: torch.Tensor  # (N, k) long: row i's k most similar columns, most similar first
    mutual: torch.Tensor     # (N, N) bool: j in kNN(i) and i in kNN(j); symmetric


@torch.no_grad()
def reciprocal_neighbours(sim: torch.Tensor, k: int) -> ReciprocalNeighbours:
    """kNN lists and the k-reciprocal (mutual kNN) indicator of a square similarity matrix.

    Self is treated like any other column: put a large value on the diagonal to include it (STML does)
    or -inf to exclude it. Ties are broken by ``torch.topk``; make the values distinct if order matters.
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise LossInputError(f"sim must be a square (N, N) similarity matrix, got shape {tuple(sim.shape)}.")
    n = sim.shape[0]
    if not (isinstance(k, int) and 1 <= k <= n):
        raise LossInputError(f"k must be an integer in [1, {n}] (the number of rows), got {k!r}.")
    knn_index = torch.topk(sim, k, dim=1).indices
    in_knn = torch.zeros(n, n, dtype=torch.bool, device=sim.device)
    in_knn.scatter_(1, knn_index, True)
    return ReciprocalNeighbours(knn_index=knn_index, mutual=in_knn & in_knn.T)
