"""Input checks and small tensor helpers shared by the miners (private)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, SsmlError


def as_tensor(x: Any, name: str, *, dtype: torch.dtype | None = None,
              device: torch.device | str | None = None) -> torch.Tensor:
    """NumPy array or tensor -> tensor (no copy when already right); anything else is refused."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise SsmlError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}; "
                        f"convert it with torch.as_tensor(...) first.")
    return x.to(device=device if device is not None else x.device, dtype=dtype or x.dtype)


def as_features(x: Any, name: str = "features") -> torch.Tensor:
    """2-D floating features, rows = items; integer input is refused rather than silently cast."""
    t = as_tensor(x, name)
    if t.ndim != 2 or t.shape[0] == 0:
        raise SsmlError(f"{name} must be a non-empty 2-D array (items x dims), got shape {tuple(t.shape)}; "
                        f"stack one embedding per row.")
    if not t.is_floating_point():
        raise SsmlError(f"{name} must be floating point, got {t.dtype}; pass embeddings, not indices.")
    return t


def as_index(x: Any, name: str, *, ndim: int | None = None) -> torch.Tensor:
    """Integer index tensor as int64."""
    t = as_tensor(x, name)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise SsmlError(f"{name} must hold integer indices, got {t.dtype}; cast with .long().")
    if ndim is not None and t.ndim != ndim:
        raise SsmlError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}.")
    return t.long()


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}; fix the parameter.")
    return int(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}, got {value!r}.")
    return value


def resolve_replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """(num_replicas, rank), read from torch.distributed when initialised and not given."""
    dist = torch.distributed
    ready = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if ready else 1
    if rank is None:
        rank = dist.get_rank() if ready else 0
    num_replicas = check_positive_int(num_replicas, "num_replicas")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < num_replicas:
        raise ConfigError(f"rank must be an integer in [0, {num_replicas}), got {rank!r}.")
    return num_replicas, int(rank)


def all_gather_cat(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank (rank order); identity without an initialised process group.

    All ranks must pass the same shape (equal per-rank batches, as the samplers here guarantee).
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def fill_at_(tensor: torch.Tensor, indices: Any, value: float | bool) -> torch.Tensor:
    """``tensor[indices] = value`` without a host-device synchronisation: the scalar becomes a 0-d tensor on
    the tensor's device (``x[idx] = True`` copies a CPU scalar to a CUDA tensor, which syncs every call).
    ``indices``: an index tensor or a tuple of them."""
    indices = indices if isinstance(indices, tuple) else (indices,)
    return tensor.index_put_(indices, torch.full((), value, dtype=tensor.dtype, device=tensor.device))


def last_occurrence(index: torch.Tensor) -> torch.Tensor:
    """For each position p, the last position q with index[q] == index[p] (a stable sort; O(n log n) time and
    O(n) memory, so a whole bank can be written at once; no host sync).

    Writing ``bank[index] = values[last_occurrence(index)]`` makes duplicate writes agree, so the result is
    deterministic ("last write wins") whatever order the device applies them in.
    """
    index = index.reshape(-1)
    n = index.numel()
    pos = torch.arange(n, device=index.device)
    if n == 0:
        return pos
    keys, order = torch.sort(index, stable=True)  # equal keys keep their order: a group's last is its latest
    start = torch.ones(n, dtype=torch.bool, device=index.device)
    start[1:] = keys[1:] != keys[:-1]
    group = start.long().cumsum(0) - 1
    group_end = torch.zeros_like(pos).scatter_reduce_(0, group, pos, "amax", include_self=False)
    out = torch.empty_like(pos)
    out[order] = order[group_end[group]]
    return out
