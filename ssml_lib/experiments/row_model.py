"""The network a table row starts from: its model settings (``ModelConfig``), the device, the stand-in or
ImageNet weights, and the optional label-free PCA start of the embedding head."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import torch

from ..config import Config, RunConfig
from ..errors import ConfigError
from ..models import build_model
from ..paths import shown_path
from .standin_pretrain import PretrainSettings, standin_pretrained_weights
from .tables import TableSpec

STANDIN_BACKBONE = "convnet4"


@dataclass(frozen=True)
class ModelConfig(Config):
    backbone: Optional[str] = None      # None: the table's backbone on real data, convnet4 on the stand-in
    embedding_size: int = 128
    pooling: Optional[str] = None       # None: avg for the DML tables, GeM (p = 3) for the GLDv2 tables
    max_side: Optional[int] = None      # revisited images: thumbnail to this longer side (1024 in the refs)
    pretrain_epochs: int = 12           # stand-in "ImageNet" pre-training (ignored on real data)
    # "orthogonal": STML's official heads; "pca": the start's principal directions (label-free; our option,
    # ssml_lib.models.head_init)
    head_init: Literal["default", "orthogonal", "pca"] = "default"
    # training augmentation (ssml_lib.data.transforms presets): "thesis" = Resize(shorter side) + RandomCrop +
    # HFlip; "spreading" = Resize((s, s)) squash + RandomCrop + HFlip, the thesis's "Resize to 256x256"
    augmentation: Literal["thesis", "spreading", "stml", "insclr"] = "thesis"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA device is visible. Fix: -p device cpu (or auto).")
    return torch.device(name)


# torchvision's ImageNet weights (GoogLeNet included, through transform_input) expect ImageNet mean/std input;
# the stand-in pre-training uses the same normalisation
NORMALIZATION = "resnet"


def initial_model(spec: TableSpec, mcfg: ModelConfig, *, standin: bool, size: str, seed: int,
                  image_size: int, device: torch.device, method: str = "pretrained", progress: bool = True,
                  pretrained_fc: bool = False):
    """The network before any training: stand-in or ImageNet pre-trained, or random (scratch tables).
    ``pretrained_fc``: the ``pretrained`` row keeps the new, untrained embedding head (the Spreading paper's
    "Initial (FC)" row; :func:`wants_pretrained_fc`) instead of embedding with the pooled features."""
    backbone = mcfg.backbone or (STANDIN_BACKBONE if standin else spec.backbone)
    pooling = mcfg.pooling or ("gem" if spec.protocol != "recall" else "avg")  # GeM on every retrieval table
    pretrained: Any = None
    if spec.init == "imagenet":
        if standin:
            settings = PretrainSettings(backbone=backbone, size=size, seed=seed, image_size=image_size,
                                        epochs=mcfg.pretrain_epochs)
            pretrained = standin_pretrained_weights(settings, progress=progress)
        else:
            pretrained = "imagenet"
    # the pretrained row embeds with the pooled features (or its untrained FC); trained methods add the head
    kwargs = dict(pooling=pooling, head="identity" if method == "pretrained" and not pretrained_fc else "linear")
    if method == "insclr":
        from ..methods.insclr import MODEL_DEFAULTS

        kwargs.update(MODEL_DEFAULTS)
        if mcfg.pooling:
            kwargs["pooling"] = mcfg.pooling
    torch.manual_seed(seed)
    model = build_model(backbone, embedding_size=mcfg.embedding_size, normalize=True, pretrained=pretrained,
                        head_init="default" if mcfg.head_init == "pca" else mcfg.head_init, **kwargs)
    return model.to(device), {"backbone": backbone, **kwargs, "init": spec.init,
                              "weights": shown_path(pretrained) if isinstance(pretrained, Path) else str(pretrained) if pretrained is not None else "random"}


def wants_pretrained_fc(resolved: dict) -> bool:
    """Whether a row's resolved configs ask for the untrained FC (``pretrained_output: fc``)."""
    return getattr(resolved["method"], "pretrained_output", None) == "fc"


def init_head_by_pca(model, train_set, test_tf, run: RunConfig, device: torch.device, *, progress: bool = True) -> dict:
    """``head_init='pca'``: the head starts as the principal directions of the training set's pooled features
    under the initial network (test transform; labels are not read)."""
    from ..eval import extract_embeddings
    from ..methods.views import Transformed
    from ..models.head_init import pca_init_

    class _Pooled(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.features(x).flatten(1)

    feats, _ = extract_embeddings(_Pooled(model), Transformed(train_set, test_tf), device=device,
                                  batch_size=run.eval.batch_size, normalize=False, progress=progress)
    return pca_init_(model.head, feats)


__all__ = ["ModelConfig", "NORMALIZATION", "STANDIN_BACKBONE", "init_head_by_pca", "initial_model", "resolve_device",
           "wants_pretrained_fc"]
