"""Embedding heads on a pooled feature vector ``(B, D)``.

- ``linear``: Linear(D -> E). Init ``default`` = PyTorch's (Spreading's GoogLeNet head) or ``orthogonal`` with
  bias 0 (STML's f and g heads, Spreading's ResNet head).
- ``linear_norm``: Linear(D -> E) then L2 (InsCLR INSTRE, Spreading).
- ``norm_linear_norm``: L2, Linear(D -> E, no bias), L2 (InsCLR GLDv2: 2048 -> 2048).
- ``identity``: the pooled feature itself (E = D).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssml_lib.errors import ConfigError

HEADS = ("linear", "linear_norm", "norm_linear_norm", "identity")
HEAD_INITS = ("default", "orthogonal")


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return F.normalize(x, p=2.0, dim=-1, eps=eps)


def make_linear(in_dim: int, out_dim: int, *, bias: bool = True, init: str = "default") -> nn.Linear:
    if init not in HEAD_INITS:
        raise ConfigError(f"unknown head_init {init!r}; choose one of {list(HEAD_INITS)}")
    layer = nn.Linear(in_dim, out_dim, bias=bias)
    if init == "orthogonal":
        nn.init.orthogonal_(layer.weight)
        if bias:
            nn.init.zeros_(layer.bias)
    return layer


class LinearHead(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, *, bias: bool = True, init: str = "default",
                 normalize_input: bool = False, normalize_output: bool = False):
        super().__init__()
        self.fc = make_linear(in_dim, out_dim, bias=bias, init=init)
        self.normalize_input, self.normalize_output = normalize_input, normalize_output
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize_input:
            x = l2_normalize(x)
        x = self.fc(x)
        return l2_normalize(x) if self.normalize_output else x

    def extra_repr(self) -> str:
        return f"normalize_input={self.normalize_input}, normalize_output={self.normalize_output}"


class IdentityHead(nn.Module):
    def __init__(self, in_dim: int):
        super().__init__()
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def build_head(name: str, in_dim: int, out_dim: int, *, init: str = "default") -> nn.Module:
    """One head by name; ``out_dim`` is ignored by ``identity``."""
    if name == "identity":
        return IdentityHead(in_dim)
    if name == "linear":
        return LinearHead(in_dim, out_dim, init=init)
    if name == "linear_norm":
        return LinearHead(in_dim, out_dim, init=init, normalize_output=True)
    if name == "norm_linear_norm":
        return LinearHead(in_dim, out_dim, bias=False, init=init, normalize_input=True, normalize_output=True)
    raise ConfigError(f"unknown head {name!r}; choose one of {list(HEADS)}")
