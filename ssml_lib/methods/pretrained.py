"""``pretrained``: every table's "ImageNet pre-trained" row: no training, the initial network is evaluated."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Literal

import torch
from torch import nn

from ..config import Config
from ._common import EmbedOutputMixin, retrieval_embedding
from .base import Method


@dataclasses.dataclass(frozen=True)
class PretrainedConfig(Config):
    # 'head': the network as built (pooled features -> embedding head, e.g. 128-d, as the trained rows);
    # 'features': the pooled backbone features (GoogLeNet pool5, 1024-d), L2-normalised.
    # 'fc': the network with its new, untrained embedding head (e.g. 128-d FC), the one training starts from:
    #   the Spreading paper's "Initial (FC)" row (the table runner builds the head; ssml_lib.experiments.row_model)
    pretrained_output: Literal["head", "features", "fc"] = "head"


class Pretrained(EmbedOutputMixin, Method):
    """No training step and no stages: ``fit_method`` returns the model untouched after zero steps."""

    name: ClassVar[str] = "pretrained"
    Config: ClassVar[type] = PretrainedConfig
    train_defaults: ClassVar[dict] = {}

    def __init__(self, model: nn.Module, cfg: PretrainedConfig, *, train_transform: Callable = None,
                 test_transform: Callable = None):
        super().__init__()
        self.model, self.cfg = model, cfg
        self.train_transform, self.test_transform = train_transform, test_transform
        self._embed_output = "features" if cfg.pretrained_output == "features" else "f"

    @classmethod
    def stages(cls, cfg: PretrainedConfig) -> list:
        return []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self._embed_output == "features":
            return self.embed_batch(images)
        return retrieval_embedding(self.model(images))

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        raise RuntimeError("the 'pretrained' method does not train; fit_method runs no stage for it.")
