"""A label-free start for an embedding head: the principal directions of the start's pooled features.

A fresh random Linear(D -> E) head maps the pooled features through a random projection, which on its own
can cost retrieval accuracy against the pooled features the "pretrained" row is scored on. ``head_init =
"pca"`` (a ModelConfig option of the table runner) instead sets the head, before any training, to the top E
principal directions of the training set's pooled features under the initial network (test transform, no
labels): W = the top-E eigenvectors of their covariance (of their second moment for a head without bias,
whose input is not centred), b = -W mean. The embedding then starts as the best E-dimensional linear
summary of the features it is computed from. The official implementations use their random inits; "pca" is
our option, recorded in every run's provenance.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


def _linear(head: nn.Module) -> tuple[nn.Linear, bool]:
    if isinstance(head, nn.Linear):
        return head, False
    fc = getattr(head, "fc", None)
    if isinstance(fc, nn.Linear):
        return fc, bool(getattr(head, "normalize_input", False))
    raise ConfigError(f"head_init='pca' needs a linear head, got {type(head).__name__}. Fix: use head 'linear', "
                      "'linear_norm' or 'norm_linear_norm', or head_init='default'.")


@torch.no_grad()
def pca_init_(head: nn.Module, features: torch.Tensor) -> dict:
    """Set ``head``'s linear map to the principal directions of ``features`` (N, D), in place.

    Returns a small record (explained variance fraction, sample count) for the run's provenance.
    """
    fc, normalize_input = _linear(head)
    x = features.detach().double()
    if x.ndim != 2 or x.shape[1] != fc.in_features:
        raise ConfigError(f"head_init='pca' got features of shape {tuple(x.shape)} for a head with "
                          f"{fc.in_features} inputs.")
    if fc.out_features > fc.in_features or x.shape[0] < 2:
        raise ConfigError(f"head_init='pca' needs embedding_size <= feature size and >= 2 images (got "
                          f"{fc.out_features} > {fc.in_features} or {x.shape[0]} images). Fix: head_init='default'.")
    if normalize_input:
        x = torch.nn.functional.normalize(x, dim=1)
    mean = x.mean(0) if fc.bias is not None else torch.zeros(x.shape[1], dtype=x.dtype)
    centred = x - mean
    cov = centred.T @ centred / (x.shape[0] - 1)
    values, vectors = torch.linalg.eigh(cov)  # ascending
    top = vectors[:, -fc.out_features:].flip(1).T  # (E, D), largest variance first
    # a deterministic sign: the largest-magnitude entry of every direction is positive
    signs = torch.sign(top.gather(1, top.abs().argmax(1, keepdim=True)))
    top = top * torch.where(signs == 0, torch.ones_like(signs), signs)
    fc.weight.copy_(top.to(fc.weight.dtype))
    if fc.bias is not None:
        fc.bias.copy_((-(top @ mean)).to(fc.bias.dtype))
    total = values.clamp(min=0).sum()
    kept = values.flip(0)[: fc.out_features].clamp(min=0).sum()
    return {"head_init": "pca", "images": int(x.shape[0]),
            "explained_variance": float(kept / total) if total > 0 else 1.0}
