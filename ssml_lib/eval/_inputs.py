"""Input checks shared by the metrics: arrays or tensors in, float32/int64 tensors out, errors before work."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import SsmlError


class EvalInputError(SsmlError, ValueError):
    """Embeddings, labels or arguments given to a metric have the wrong shape, type or value."""


def as_embeddings(x: Any, name: str) -> torch.Tensor:
    """Return a 2-D float32 tensor (rows = items) on the input's device; refuse non-finite values."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise EvalInputError(f"{name} must be a NumPy array or torch tensor, got {type(x).__name__}; "
                             "convert it with np.asarray(...) first.")
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() != 2:
        raise EvalInputError(f"{name} must be 2-D (items x dims), got shape {tuple(x.shape)}; reshape it.")
    if x.is_complex() or not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64, torch.int16)):
        raise EvalInputError(f"{name} has dtype {x.dtype}; pass real-valued embeddings.")
    x = x.detach().to(torch.float32).contiguous()
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise EvalInputError(f"{name} contains NaN or inf; check the model output (a diverged run?) "
                             "before evaluating.")
    return x


def as_labels(y: Any, n: int, name: str) -> torch.Tensor:
    """Return a 1-D int64 tensor of length ``n``."""
    if isinstance(y, (list, tuple)):
        y = np.asarray(y)
    if isinstance(y, np.ndarray):
        if y.dtype.kind not in "iub":
            raise EvalInputError(f"{name} must hold integer class ids, got dtype {y.dtype}; map them to ints.")
        y = torch.from_numpy(y.astype(np.int64))
    if not isinstance(y, torch.Tensor):
        raise EvalInputError(f"{name} must be a sequence, array or tensor of ints, got {type(y).__name__}.")
    if y.is_floating_point() or y.is_complex():
        raise EvalInputError(f"{name} must hold integer class ids, got dtype {y.dtype}; use .long().")
    y = y.detach().reshape(-1).to(torch.int64)
    if y.numel() != n:
        raise EvalInputError(f"{name} has {y.numel()} entries but there are {n} embeddings; pass one label "
                             "per row.")
    return y
