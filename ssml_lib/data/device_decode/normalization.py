"""The input normalisation of a torchvision pipeline (ToTensor, Normalize, CaffeNormalize) folded into one
per-channel affine map with a channel permutation, applied on the device after decoding."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch
from torchvision.transforms import transforms as T

from ...errors import ConfigError
from ..transforms import CaffeNormalize
from .files import FIX_CPU


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per output channel c: ``scale[c] * x[perm[c]] + shift[c]`` of pixel values x in 0..255."""

    perm: tuple[int, ...] = (0, 1, 2)
    scale: tuple[float, ...] = (1.0, 1.0, 1.0)
    shift: tuple[float, ...] = (0.0, 0.0, 0.0)

    def affine(self, scale: Sequence[float], shift: Sequence[float]) -> "Normalization":
        """Followed by ``y * scale + shift`` per output channel."""
        return Normalization(self.perm, tuple(a * s for a, s in zip(self.scale, scale)),
                             tuple(b * s + t for b, s, t in zip(self.shift, scale, shift)))

    def reversed_channels(self) -> "Normalization":
        """Followed by RGB <-> BGR (``flip(0)`` of the channels)."""
        return Normalization(self.perm[::-1], self.scale[::-1], self.shift[::-1])

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float pixel values -> normalised input (three channel ops, no host-to-device copy)."""
        return torch.stack([x[:, p] * a + b for p, a, b in zip(self.perm, self.scale, self.shift)], dim=1)


def _to_tensor_step(norm: Normalization) -> Normalization:
    return norm.affine((1 / 255.0,) * 3, (0.0,) * 3)


def _normalize_step(norm: Normalization, op: T.Normalize) -> Normalization:
    mean, std = _three(op.mean, "Normalize mean"), _three(op.std, "Normalize std")
    return norm.affine(tuple(1.0 / s for s in std), tuple(-m / s for m, s in zip(mean, std)))


def _caffe_step(norm: Normalization, op: CaffeNormalize) -> Normalization:
    mean = _three(op.mean.flatten().tolist(), "CaffeNormalize mean")
    norm = norm.affine((255.0,) * 3, (0.0,) * 3)
    if op.mean_order == "rgb":  # (x - mean).flip(0)
        return norm.affine((1.0,) * 3, tuple(-m for m in mean)).reversed_channels()
    return norm.reversed_channels().affine((1.0,) * 3, tuple(-m for m in mean))  # x.flip(0) - mean


def _three(values: Any, what: str) -> tuple[float, float, float]:
    v = [float(x) for x in (values.tolist() if isinstance(values, torch.Tensor) else values)]
    if len(v) == 1:
        v = v * 3
    if len(v) != 3:
        raise ConfigError(f"deferred_transform: {what} must have 1 or 3 values, got {len(v)}. {FIX_CPU}.")
    return v[0], v[1], v[2]
