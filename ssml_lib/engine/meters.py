"""Per-epoch metric averages and the NaN/inf guard, both kept on the device.

Reading a CUDA tensor on the host (``.item()``) waits for the GPU, so doing it every step would serialise
the CPU and the GPU. Metrics are summed on the device and read once per epoch; the guard records the first
non-finite step on the device and is read every ``log_every`` steps and before every checkpoint, which bounds
the waste after a NaN to ``log_every`` steps and guarantees no bad state is ever written to disk.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
import torch.distributed as dist

from .distributed import all_reduce_sum, world_size


class EpochMeter:
    """Running sums of every scalar a step returns; ``means()`` is the epoch average over steps and ranks."""

    def __init__(self, device: torch.device, sums: Optional[Mapping[str, torch.Tensor]] = None, count: int = 0):
        self.device = device
        self.sums = {k: v.to(device) for k, v in (sums or {}).items()}
        self.count = count

    def add(self, values: Mapping[str, Any]) -> None:
        for key, v in values.items():
            if not isinstance(v, torch.Tensor):
                if not isinstance(v, (int, float)):
                    raise TypeError(f"training_step returned {key!r} of type {type(v).__name__}; return tensors "
                                    "(or numbers) to log, and keep other objects on the method.")
                v = torch.tensor(float(v), device=self.device)
            v = v.detach().float().mean()
            if key in self.sums:
                self.sums[key] += v
            else:
                self.sums[key] = v.clone()
        self.count += 1

    def means(self) -> dict[str, float]:
        """One host sync (and one all_reduce under DDP) for all metrics."""
        if not self.sums:
            return {}
        keys = list(self.sums)
        total = all_reduce_sum(torch.stack([self.sums[k] for k in keys]).double())
        values = (total / (self.count * world_size())).tolist()
        return dict(zip(keys, values))

    def state(self) -> dict:
        return {"sums": {k: v.detach().cpu() for k, v in self.sums.items()}, "count": self.count}


class FiniteGuard:
    """Remembers, on the device, the first global step whose loss was NaN or inf."""

    def __init__(self, device: torch.device):
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)

    def update(self, loss: torch.Tensor, step: int) -> None:
        bad = ~torch.isfinite(loss.detach()).all()
        self.first_bad = torch.where(bad & (self.first_bad < 0), torch.full_like(self.first_bad, step),
                                     self.first_bad)

    def first_bad_step(self) -> Optional[int]:
        """The step (any rank's; one host sync), or None when every loss so far was finite."""
        v = self.first_bad.clone()
        if world_size() > 1:  # earliest bad step over ranks; -1 (none) must not win the minimum
            never = torch.iinfo(torch.long).max
            v = torch.where(v < 0, torch.full_like(v, never), v)
            dist.all_reduce(v, op=dist.ReduceOp.MIN)
            v = torch.where(v == never, torch.full_like(v, -1), v)
        step = int(v.item())
        return None if step < 0 else step
