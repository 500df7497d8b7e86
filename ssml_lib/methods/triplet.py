"""``triplet``: the instance triplet baseline of the Spreading paper's CIFAR-10 table ("Triplet" and, with
``triplet_mining="hard"``, "Triplet (Hard)").

Each item gives two augmented views (one forward over [view 1; view 2], as Spreading); the second view of an
image is its positive and every other image of the batch a negative. The loss is
:func:`ssml_lib.losses.instance_triplet_loss` (pytorch-metric-learning's ``TripletMarginLoss``, margin 0.5 as the
paper states for the hard variant; ``BatchHardMiner`` when hard), over the global batch under DDP. The paper
names the hard variant "the online hard negative sample within each batch" and does not say how the plain one
picks its negatives: ``triplet_mining="all"`` (our reading) uses every in-batch triplet.
``train_defaults``: the paper's CIFAR recipe for all competing methods (as ``spreading`` on CIFAR).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Literal

import torch
from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..losses.triplet import instance_triplet_loss
from ._common import CIFAR_TRAIN_DEFAULTS, NormalizedEmbedMixin, gather_views
from .base import Method
from .views import TwoViews


@dataclasses.dataclass(frozen=True)
class TripletConfig(Config):
    margin: float = 0.5  # the Spreading paper, Sec. 4.1.1
    triplet_mining: Literal["all", "hard"] = "all"  # "hard": the paper's "Triplet (Hard)"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.margin > 0:
            raise ConfigError(f"triplet margin must be > 0, got {self.margin}. Fix: use 0.5 (the paper's).")


class Triplet(NormalizedEmbedMixin, Method):
    name: ClassVar[str] = "triplet"
    Config: ClassVar[type] = TripletConfig
    train_defaults: ClassVar[dict] = dict(CIFAR_TRAIN_DEFAULTS)

    def __init__(self, model: nn.Module, cfg: TripletConfig, *, train_transform: Callable, test_transform: Callable):
        super().__init__()
        self.model, self.cfg = model, cfg
        self.train_transform, self.test_transform = train_transform, test_transform
        self.normalize = not getattr(model, "normalize_output", False)
        self._views = None

    def on_fit_start(self, ctx) -> None:
        self._views = TwoViews(ctx.train_set, self.train_transform)

    def train_dataset(self, ctx) -> TwoViews:
        return self._views

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        (view1, view2), _labels, _index = batch  # labels unused: self-supervised
        emb = self(torch.cat([view1, view2]))
        e1, e2 = gather_views(emb, 2).chunk(2)
        return {"loss": instance_triplet_loss(e1, e2, self.cfg.margin, mining=self.cfg.triplet_mining)}
