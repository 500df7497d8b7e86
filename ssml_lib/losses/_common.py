"""Shared plumbing for the loss functions: input checks, full-precision compute, stable primitives.

Every loss computes in float32 (float64 when an input is float64), with autocast switched off locally, so
a bf16-autocast training step still gets float32 logsumexp/exp. The GEMMs are small (batch x batch, or
batch x bank), so the float32 cost is negligible next to the backbone.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from ..errors import SsmlError

_LN2 = math.log(2.0)


class LossInputError(SsmlError, ValueError):
    """A loss got an input of the wrong shape, type or range; raised before any work starts."""


def as_float(x, name: str) -> torch.Tensor:
    """Return ``x`` as a floating torch tensor (NumPy accepted); refuse integer or boolean input."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise LossInputError(f"{name} must be a torch tensor or NumPy array, got {type(x).__name__}; "
                             f"pass the embeddings as a (rows, dim) array.")
    if not x.is_floating_point():
        raise LossInputError(f"{name} has dtype {x.dtype}, expected a floating dtype; cast it with .float().")
    return x


def as_index(x, name: str, device: torch.device) -> torch.Tensor:
    """Return ``x`` as an integer tensor on ``device`` (NumPy and lists accepted)."""
    if isinstance(x, np.ndarray) or isinstance(x, (list, tuple)):
        x = torch.as_tensor(np.asarray(x))
    if not isinstance(x, torch.Tensor):
        raise LossInputError(f"{name} must be an integer tensor or array, got {type(x).__name__}.")
    if x.is_floating_point() or x.dtype == torch.bool:
        raise LossInputError(f"{name} has dtype {x.dtype}, expected integers; cast it with .long().")
    return x.to(device=device, dtype=torch.long)


def check_rows(x: torch.Tensor, name: str, min_rows: int = 1) -> None:
    if x.dim() != 2:
        raise LossInputError(f"{name} must be 2-D (rows, dim), got shape {tuple(x.shape)}; "
                             f"flatten extra axes or add a batch axis with x[None].")
    if x.shape[0] < min_rows:
        raise LossInputError(f"{name} has {x.shape[0]} rows, need at least {min_rows}; use a larger batch.")


def check_positive(value: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise LossInputError(f"{name} must be a positive finite number, got {value!r}.")


def compute_dtype(*xs: torch.Tensor) -> torch.dtype:
    """float64 if any input is float64, otherwise float32 (bf16/fp16 inputs are upcast)."""
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


@contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Switch autocast off on ``device`` so matmul/exp/log run in the dtype we chose."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, accurate at both ends (Maechler 2012); -inf maps to 0 with zero grad.

    Each branch sees a clamped input so the branch that ``where`` discards never produces inf/NaN grads.
    """
    near_zero = x > -_LN2
    a = torch.log(-torch.expm1(x.clamp(min=-_LN2)))
    b = torch.log1p(-torch.exp(x.clamp(max=-_LN2)))
    return torch.where(near_zero, a, b)


def safe_sqrt(sq: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not inf/NaN) gradient at exactly 0."""
    positive = sq > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, sq, torch.ones_like(sq))),
                       torch.zeros_like(sq))


def pairwise_distances(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distance matrix of the rows of ``x``: diagonal exactly 0, zero-safe gradient."""
    sq_norm = (x * x).sum(1)
    sq = sq_norm[:, None] + sq_norm[None, :] - 2.0 * (x @ x.T)
    eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    sq = sq.clamp(min=0).masked_fill(eye, 0.0)
    return safe_sqrt(sq)


def cross_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of ``x`` (N, D) and ``y`` (M, D), with a zero-safe gradient."""
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return safe_sqrt(sq.clamp(min=0))
