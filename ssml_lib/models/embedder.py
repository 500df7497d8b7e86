"""The embedding network: backbone -> global pooling -> head(s), and ``build_model`` to make one by name."""
from __future__ import annotations

import torch
from torch import nn

from ssml_lib.errors import ConfigError
from ssml_lib.models.backbones import backbone_spec, build_backbone
from ssml_lib.models.heads import HEAD_INITS, HEADS, build_head, l2_normalize, make_linear
from ssml_lib.models.pooling import POOLINGS, build_pooling
from ssml_lib.models.weights import load_weights, resolve_weights


class Embedder(nn.Module):
    """``forward(x)`` returns the embedding ``f``, or ``(g, f)`` when a second head ``g`` exists (STML student).

    ``normalize_output`` L2-normalises ``f`` only; ``g`` is never normalised (as in STML).
    ``features(x)`` is the pooled vector before any head (Spreading's pool5, the "pretrained" row).
    """

    def __init__(self, backbone: nn.Module, pool: nn.Module, head: nn.Module, *, second_head: nn.Module | None = None,
                 normalize_output: bool = True, backbone_name: str = ""):
        super().__init__()
        self.backbone, self.pool, self.head, self.second_head = backbone, pool, head, second_head
        self.normalize_output = normalize_output
        self.backbone_name = backbone_name
        self.feature_dim = backbone.out_channels
        self.embedding_dim = head.out_dim
        self.second_embedding_dim = second_head.out_features if second_head is not None else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        feat = self.features(x)
        f = self.head(feat)
        if self.normalize_output:
            f = l2_normalize(f)
        if self.second_head is None:
            return f
        return self.second_head(feat), f

    def extra_repr(self) -> str:
        return (f"backbone_name={self.backbone_name!r}, feature_dim={self.feature_dim}, "
                f"embedding_dim={self.embedding_dim}, normalize_output={self.normalize_output}")


def build_model(backbone: str, *, pooling: str = "gem", gem_p: float = 3.0, gem_learnable: bool = False,
                head: str = "linear", embedding_size: int = 128, head_init: str = "default",
                second_head_size: int | None = None, normalize: bool = True,
                pretrained: str | bool | None = None, allow_download: bool = False,
                transform_input: bool | None = None, channels_last: bool = False) -> Embedder:
    """Build an :class:`Embedder`; every argument is checked and the weights located before anything is built.

    ``pretrained``: None/False (random init), True or ``'imagenet'`` (torchvision file from the hub cache; never
    downloaded unless ``allow_download``), a name given to :func:`register_weights_resolver`, or a file path.
    ``transform_input`` (GoogLeNet only): None means True exactly when ImageNet weights are loaded, because
    torchvision's GoogLeNet weights expect [-1, 1] inputs (torchvision sets it then too).
    ``second_head_size``: adds STML's ``g`` head (Linear(feat -> size), same init as ``f``); forward returns (g, f).
    """
    spec = backbone_spec(backbone)
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}; choose one of {list(POOLINGS)}")
    if head not in HEADS:
        raise ConfigError(f"unknown head {head!r}; choose one of {list(HEADS)}")
    if head_init not in HEAD_INITS:
        raise ConfigError(f"unknown head_init {head_init!r}; choose one of {list(HEAD_INITS)}")
    for name, size in (("embedding_size", embedding_size), ("second_head_size", second_head_size)):
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ConfigError(f"{name} must be a positive int, got {size!r}")
    if pooling == "gem" and not gem_p > 0:
        raise ConfigError(f"GeM needs gem_p > 0, got {gem_p}; use 1 for average or a large value for max pooling")
    source = resolve_weights(backbone, pretrained, allow_download=allow_download)
    if transform_input is None:
        transform_input = pretrained is True or pretrained == "imagenet"

    trunk = build_backbone(backbone, transform_input=transform_input)
    g = make_linear(spec.feature_dim, second_head_size, init=head_init) if second_head_size else None
    model = Embedder(trunk, build_pooling(pooling, gem_p=gem_p, gem_learnable=gem_learnable),
                     build_head(head, spec.feature_dim, embedding_size, init=head_init),
                     second_head=g, normalize_output=normalize, backbone_name=backbone)
    if source is not None:
        load_weights(model, source)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def bn_freeze(model: nn.Module) -> int:
    """Put every BatchNorm in eval mode and freeze its affine parameters (STML ``bn_freeze``).

    ``model.train()`` undoes the eval mode, so call this after it (STML does so every epoch). Returns how many
    BatchNorm layers were frozen.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            for param in module.parameters(recurse=False):
                param.requires_grad_(False)
            count += 1
    return count


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
