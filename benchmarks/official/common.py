"""What every block shares: its context, the synthetic inputs, and the row it reports."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .timing import side_by_side


@dataclass
class Context:
    device: torch.device
    tiny: bool                      # smoke sizes: seconds, numbers meaningless
    checkouts: dict                 # repository key -> folder or None
    pool_sizes: tuple = ()          # candidate pool: the sizes measured (paper: 240,000 extrapolated from them)
    budget_s: float = 30.0          # per block, beyond the minimum repeats
    log: Callable = print
    shims: list = field(default_factory=list)


def unit_rows(n: int, d: int, seed: int, *, classes: int | None = None, noise: float = 1.0,
              device: torch.device | str = "cpu", chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded L2-normalised rows (class centre + noise) and their class labels, built in chunks."""
    g = torch.Generator().manual_seed(seed)
    classes = classes or max(2, n // 5)
    labels = torch.randint(0, classes, (n,), generator=g)
    centres = torch.nn.functional.normalize(torch.randn(classes, d, generator=g), dim=1)
    out = torch.empty(n, d)
    for s in range(0, n, chunk):
        part = centres[labels[s:s + chunk]] + noise / d**0.5 * torch.randn(min(chunk, n - s), d, generator=g)
        out[s:s + chunk] = torch.nn.functional.normalize(part, dim=1)
    return out.to(device), labels.to(device)


def compare(fns: dict, ctx: Context, **timing) -> tuple[dict, dict]:
    """Time the callables side by side (one thread each) within the block's budget."""
    return side_by_side(fns, ctx.device, budget_s=ctx.budget_s, **timing)


def row(block: str, *, stats: dict, sizes: dict, official: str, ours: str, agree: bool, agreement: str,
        loaded: str, shims: list, checkout: dict | None, note: str = "", paper_size: bool = True) -> dict:
    """One result row: medians, the ratio official / ssml (> 1: ssml faster) and, where timed, before / after."""
    out = {"block": block, "sizes": sizes, "paper_size": paper_size, "official": official, "ours": ours,
           "ours_s": stats["ours"]["median_s"], "official_s": stats["official"]["median_s"],
           "ratio": stats["official"]["median_s"] / stats["ours"]["median_s"],
           "repeats": {k: v["repeats"] for k, v in stats.items()},
           "times_s": {k: v["times_s"] for k, v in stats.items()},
           "agree": bool(agree), "agreement": agreement, "loaded": loaded, "shims": list(shims),
           "checkout": checkout, "note": note}
    if "before" in stats:
        out["before_s"] = stats["before"]["median_s"]
        out["ratio_before"] = stats["official"]["median_s"] / stats["before"]["median_s"]
    return out


def max_abs_diff(a, b) -> float:
    a, b = torch.as_tensor(a).double().cpu(), torch.as_tensor(b).double().cpu()
    return float((a - b).abs().max()) if a.numel() else 0.0


__all__ = ["Context", "compare", "max_abs_diff", "row", "unit_rows"]
