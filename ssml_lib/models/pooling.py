"""Global pooling of a feature map ``(B, C, H, W)`` to ``(B, C)``: pure functions plus thin module shells."""
from __future__ import annotations

import torch
from torch import nn

from ssml_lib.errors import ConfigError


def gem(x: torch.Tensor, p: float | torch.Tensor = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """Generalised mean ``(mean_hw clamp(x, eps)^p)^(1/p)``: p = 1 is average pooling, p -> inf is max pooling.

    Computed as ``m * (mean (x/m)^p)^(1/p)`` with ``m`` the (detached) per-channel max, which is the same value
    and gradient but cannot overflow for large p (a learnable p may grow).
    """
    x = x.clamp(min=eps)
    scale = x.detach().amax(dim=(-2, -1), keepdim=True)
    pooled = (x / scale).pow(p).mean(dim=(-2, -1), keepdim=True).pow(1.0 / p) * scale
    return pooled.flatten(1)


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(-2, -1))


def global_max_pool(x: torch.Tensor) -> torch.Tensor:
    return x.amax(dim=(-2, -1))


def global_avg_max_pool(x: torch.Tensor) -> torch.Tensor:
    """STML: global average pool + global max pool, summed."""
    return x.mean(dim=(-2, -1)) + x.amax(dim=(-2, -1))


class GeM(nn.Module):
    """GeM pooling; ``learnable=True`` makes p a parameter (cirtorch), otherwise p is fixed (InsCLR: p = 3)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learnable: bool = False):
        super().__init__()
        if not p > 0:
            raise ConfigError(f"GeM needs p > 0, got gem_p={p}; use 1 for average or a large value for max pooling")
        self.eps, self.learnable = eps, learnable
        if learnable:
            self.p = nn.Parameter(torch.tensor([float(p)]))
        else:
            self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gem(x, self.p, self.eps)

    def extra_repr(self) -> str:
        p = self.p.detach().item() if self.learnable else self.p
        return f"p={p:.4g}, eps={self.eps}, learnable={self.learnable}"


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return global_avg_pool(x)


class GlobalMaxPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return global_max_pool(x)


class GlobalAvgMaxPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return global_avg_max_pool(x)


POOLINGS = ("gem", "avg", "max", "avgmax")


def build_pooling(name: str, *, gem_p: float = 3.0, gem_learnable: bool = False) -> nn.Module:
    if name == "gem":
        return GeM(gem_p, learnable=gem_learnable)
    shells = {"avg": GlobalAvgPool, "max": GlobalMaxPool, "avgmax": GlobalAvgMaxPool}
    if name not in shells:
        raise ConfigError(f"unknown pooling {name!r}; choose one of {list(POOLINGS)}")
    return shells[name]()
