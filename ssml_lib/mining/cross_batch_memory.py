"""A cross-batch memory: a FIFO queue of the most recent embedding rows (XBM, Wang et al., CVPR 2020).

Unlike :class:`~ssml_lib.mining.FeatureMemory` (one row per dataset item, overwritten by index), this queue
holds the last ``size`` rows written, whatever their items, with the dataset index of each (``ids``; -1 marks
a slot not yet written). Several named banks (e.g. a student's two heads and a teacher's embedding) share one
queue and are written together.

Everything lives in registered buffers on the training device (``state_dict()`` checkpoints the queue, its
write position included, so a resumed run continues exactly); storage may be float16 or bfloat16, reads are
float32 copies. A write computes its slots on the device from the stored position, so it makes no
host-device synchronisation. ``enqueue(..., gather=True)`` all-gathers the rows of every DDP rank first, so
every rank holds the same queue; pass ``gather=False`` for rows that are already the global batch.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ..errors import SsmlError
from ._common import all_gather_cat, as_features, as_index, check_positive_int

_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class CrossBatchMemory(nn.Module):
    """``size`` rows per named bank (``dims``: name -> width), first in, first out."""

    def __init__(self, size: int, dims: Mapping[str, int], *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        size = check_positive_int(size, "memory size")
        if dtype not in _DTYPES:
            raise SsmlError(f"memory dtype must be float32, float16 or bfloat16, got {dtype}.")
        if not dims or not all(isinstance(k, str) and k.isidentifier() for k in dims):
            raise SsmlError(f"dims must name at least one bank with identifier names, got {dict(dims)!r}.")
        self._names = tuple(dims)
        for name, dim in dims.items():
            self.register_buffer(f"bank_{name}", torch.zeros(size, check_positive_int(dim, f"dims[{name!r}]"),
                                                             dtype=dtype, device=device))
        self.register_buffer("ids", torch.full((size,), -1, dtype=torch.int64, device=device))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.int64, device=device))  # next slot to write

    @property
    def size(self) -> int:
        return self.ids.shape[0]

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def valid(self) -> torch.Tensor:
        """(size,) bool: the slots written so far."""
        return self.ids >= 0

    def read(self, name: str) -> torch.Tensor:
        """A float32 copy of bank ``name`` (size, dim), unwritten slots included (zeros; see ``valid``). A copy,
        so a later write cannot change a tensor a loss still needs for its backward pass."""
        if name not in self._names:
            raise SsmlError(f"no memory bank {name!r}; the banks are {', '.join(self._names)}.")
        return getattr(self, f"bank_{name}").to(torch.float32, copy=True)

    @torch.no_grad()
    def enqueue(self, ids: Any, *, gather: bool = True, **rows: Any) -> None:
        """Write ``rows`` (one (n, dim) tensor per bank, all banks at once) with their dataset ``ids`` (n,) over
        the oldest slots. ``gather``: all-gather every rank's rows first (rank order)."""
        if set(rows) != set(self._names):
            raise SsmlError(f"enqueue writes every bank together: got {sorted(rows)}, expected "
                            f"{sorted(self._names)}.")
        device = self.ids.device
        idx = as_index(ids, "ids", ndim=1).to(device)
        feats = {}
        for name, x in rows.items():
            x = as_features(x, f"rows[{name!r}]").detach().to(device)
            bank = getattr(self, f"bank_{name}")
            if x.shape != (idx.numel(), bank.shape[1]):
                raise SsmlError(f"rows[{name!r}] has shape {tuple(x.shape)}, expected ({idx.numel()}, "
                                f"{bank.shape[1]}): one row per id.")
            feats[name] = all_gather_cat(x) if gather else x
        idx = all_gather_cat(idx) if gather else idx
        n = idx.numel()
        if n > self.size:  # slots would repeat within one write (and its order on the device is unspecified)
            raise SsmlError(f"one write of {n} rows exceeds the memory size {self.size}. Fix: a memory of at "
                            f"least one step's rows (memory_size >= {n}).")
        slots = (self.ptr + torch.arange(n, device=device)) % self.size
        for name, x in feats.items():
            bank = getattr(self, f"bank_{name}")
            bank.index_copy_(0, slots, x.to(bank.dtype))
        self.ids.index_copy_(0, slots, idx)
        self.ptr.copy_((self.ptr + n) % self.size)
