"""ISL affinity sets A(i) as a fixed-capacity neighbour table on the device (official: Python sets).

``table[i, :count[i]]`` lists the mined neighbours of i; i itself is implicit (A(i) always contains i).
Additions are symmetric, deduplicated and vectorised; an addition beyond ``capacity`` is dropped and
counted in ``overflow`` (raise the capacity if that counter moves).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import SsmlError
from ._common import as_index, check_positive_int


class AffinitySets(nn.Module):
    def __init__(self, num_items: int, capacity: int = 64, *, device: torch.device | str | None = None):
        super().__init__()
        n, c = check_positive_int(num_items, "num_items"), check_positive_int(capacity, "capacity")
        # One extra trash row takes the writes of rejected additions, so no data-dependent branch is needed.
        self.register_buffer("_table", torch.full((n + 1, c), -1, dtype=torch.int64, device=device))
        self.register_buffer("count", torch.zeros(n + 1, dtype=torch.int64, device=device))
        self.register_buffer("overflow", torch.zeros((), dtype=torch.int64, device=device))

    @property
    def num_items(self) -> int:
        return self._table.shape[0] - 1

    @property
    def table(self) -> torch.Tensor:
        """(N, capacity) neighbour indices, -1 padded."""
        return self._table[:-1]

    def num_links(self) -> torch.Tensor:
        """Directed links, sum_i |A(i) minus i| (each mined pair counts twice); a 0-d tensor."""
        return self.count[:-1].sum()

    def contains(self, rows: Any, candidates: Any) -> torch.Tensor:
        """(B, L) bool: candidates[b, l] is in A(rows[b]) (self included)."""
        rows = as_index(rows, "rows", ndim=1).to(self._table.device)
        cand = as_index(candidates, "candidates", ndim=2).to(self._table.device)
        known = (cand[:, :, None] == self._table[rows][:, None, :]).any(-1)
        return known | (cand == rows[:, None])

    @torch.no_grad()
    def add_pairs(self, rows: Any, cols: Any, valid: Any | None = None) -> torch.Tensor:
        """Add i<->j for every valid pair (rows[p], cols[p]); returns how many directed links were written."""
        dev, n = self._table.device, self.num_items
        r0 = as_index(rows, "rows").reshape(-1).to(dev)
        c0 = as_index(cols, "cols").reshape(-1).to(dev)
        if r0.shape != c0.shape:
            raise SsmlError(f"rows ({r0.numel()}) and cols ({c0.numel()}) must pair up one to one.")
        ok0 = torch.ones_like(r0, dtype=torch.bool) if valid is None else torch.as_tensor(valid).reshape(-1).to(dev)
        r, v, ok = torch.cat([r0, c0]), torch.cat([c0, r0]), torch.cat([ok0, ok0]).bool()
        ok &= (r != v) & (r >= 0) & (r < n) & (v >= 0) & (v < n)
        r, v = torch.where(ok, r, n), torch.where(ok, v, 0)           # invalid pairs point at the trash row
        ok &= ~(self._table[r] == v[:, None]).any(1)                    # already known
        # Sort by (row, value): duplicates become adjacent and each row's additions contiguous.
        key = torch.where(ok, r * n + v, n * n + torch.arange(r.numel(), device=dev))
        key, order = torch.sort(key)
        r, v, ok = r[order], v[order], ok[order]
        ok &= torch.cat([key.new_ones(1, dtype=torch.bool), key[1:] != key[:-1]])
        taken = ok.long().cumsum(0) - ok.long()                        # ok entries before this one
        pos = torch.arange(r.numel(), device=dev)
        row_start = torch.where(torch.cat([r.new_ones(1, dtype=torch.bool), r[1:] != r[:-1]]), pos, 0)
        rank = taken - taken[row_start.cummax(0).values]                # ok entries before, same row
        slot = self.count[r] + rank
        fits = ok & (slot < self._table.shape[1])
        self.overflow += (ok & ~fits).sum()
        self._table[torch.where(fits, r, n), torch.where(fits, slot, 0)] = torch.where(fits, v, -1)
        self._table[n].fill_(-1)
        self.count.scatter_add_(0, r, fits.long())
        self.count[n:].fill_(0)  # row n is the dump row; a slice fill needs no host copy
        return fits.sum()
