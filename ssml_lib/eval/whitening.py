"""Learned PCA-whitening of global descriptors (Radenović et al. 2018; the "ImageNet + PCA" rows of InsCLR).

Fitted on a set of training descriptors X (n, d): their mean m, and the eigen-decomposition of their covariance
C = (X - m)^T (X - m) / n = V diag(λ) V^T, eigenvalues in descending order. A descriptor x becomes
``diag(λ_k^-1/2) V_k^T (x - m)`` on the k kept directions, then is L2-normalised. Before the normalisation the
training descriptors' covariance is the identity on the kept directions (what "whitened" means here).

Directions whose eigenvalue is at most ``rel_eps`` times the largest are never kept: with fewer training
descriptors than dimensions (n <= d) the covariance has rank at most n - 1, and dividing by a zero eigenvalue
would amplify noise without bound. ``dims`` keeps only the leading ``dims`` directions (a dimensionality
reduction, as the papers' PCA to 128/256/512 dimensions).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ._inputs import EvalInputError


@dataclass(frozen=True)
class PCAWhitening:
    mean: torch.Tensor          # (d,)
    projection: torch.Tensor    # (k, d): rows are the kept eigenvectors scaled by eigenvalue^-1/2
    eigenvalues: torch.Tensor   # (k,) kept eigenvalues, descending

    @property
    def dims(self) -> int:
        return int(self.projection.shape[0])


def learn_pca_whitening(x: torch.Tensor, dims: Optional[int] = None, *, rel_eps: float = 1e-6) -> PCAWhitening:
    """Fit PCA-whitening on training descriptors ``x`` (n, d), computed in float64."""
    if x.ndim != 2 or x.shape[0] < 2:
        raise EvalInputError(f"whitening needs a (n >= 2, d) matrix of training descriptors, got shape "
                             f"{tuple(x.shape)}.")
    if not torch.isfinite(x).all():
        raise EvalInputError("training descriptors contain NaN or inf; check the network before whitening.")
    if dims is not None and dims < 1:
        raise EvalInputError(f"whitening dims must be a positive int or None (all usable), got {dims!r}.")
    x64 = x.detach().to("cpu", torch.float64)
    mean = x64.mean(dim=0)
    centred = x64 - mean
    cov = centred.T @ centred / x64.shape[0]
    cov = (cov + cov.T) / 2  # exactly symmetric for eigh
    values, vectors = torch.linalg.eigh(cov)  # ascending
    values, vectors = values.flip(0), vectors.flip(1)
    usable = int((values > rel_eps * values[0].clamp_min(torch.finfo(torch.float64).tiny)).sum())
    if usable == 0:
        raise EvalInputError("the training descriptors are all equal: there is nothing to whiten.")
    keep = usable if dims is None else min(dims, usable)
    projection = vectors[:, :keep].T / values[:keep].sqrt()[:, None]
    return PCAWhitening(mean.float(), projection.float(), values[:keep].float())


def apply_pca_whitening(x: torch.Tensor, whitening: PCAWhitening, *, normalize: bool = True) -> torch.Tensor:
    """Whiten descriptors ``x`` (n, d) and (by default) L2-normalise them; returns (n, k) float32."""
    if x.ndim != 2 or x.shape[1] != whitening.mean.shape[0]:
        raise EvalInputError(f"descriptors of shape {tuple(x.shape)} do not match the whitening's "
                             f"{whitening.mean.shape[0]} input dimensions; fit it on the same network's features.")
    out = (x.detach().float().cpu() - whitening.mean) @ whitening.projection.T
    return torch.nn.functional.normalize(out, dim=1) if normalize else out
