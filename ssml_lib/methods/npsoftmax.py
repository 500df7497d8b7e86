"""``npsoftmax``: instance discrimination with a memory bank (Wu et al., CVPR 2018), the non-parametric softmax
baseline of the Spreading paper's CIFAR-10 table.

One augmented view per image; its L2-normalised embedding f is classified among all N training images by
:func:`ssml_lib.losses.npsoftmax_loss` against the memory bank V (T = ``temperature``, 0.1 in the CIFAR code).
After each optimiser step the rows of the batch are updated, v_i <- normalise(m v_i + (1 - m) f_i) with
m = ``memory_momentum`` (0.5). The bank starts uniform in [-1/sqrt(D/3), 1/sqrt(D/3)], as the official
``LinearAverage``. ``train_defaults`` are the Spreading paper's CIFAR recipe, which its Table 1 gives for all
competing methods (SGD lr 0.03, momentum 0.9, decay 5e-4, batch 128, 200 epochs, lr x0.1 at 120 and 160).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from ..config import Config
from ..engine import derive_seed
from ..errors import ConfigError
from ..losses.npsoftmax import npsoftmax_loss
from ..mining import FeatureMemory
from ._common import CIFAR_TRAIN_DEFAULTS, NormalizedEmbedMixin
from .base import Method
from .views import Transformed


@dataclasses.dataclass(frozen=True)
class NPSoftmaxConfig(Config):
    temperature: float = 0.1  # official lemniscate cifar.py --nce-t
    memory_momentum: float = 0.5  # official lemniscate --nce-m

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.temperature > 0:
            raise ConfigError(f"npsoftmax temperature must be > 0, got {self.temperature}. Fix: use e.g. 0.1.")
        if not 0.0 <= self.memory_momentum < 1.0:
            raise ConfigError(f"memory_momentum must lie in [0, 1), got {self.memory_momentum}. Fix: 0.5.")


class NPSoftmax(NormalizedEmbedMixin, Method):
    name: ClassVar[str] = "npsoftmax"
    Config: ClassVar[type] = NPSoftmaxConfig
    train_defaults: ClassVar[dict] = dict(CIFAR_TRAIN_DEFAULTS)

    def __init__(self, model: nn.Module, cfg: NPSoftmaxConfig, *, train_transform: Callable,
                 test_transform: Callable):
        super().__init__()
        self.model, self.cfg = model, cfg
        self.train_transform, self.test_transform = train_transform, test_transform
        self.normalize = not getattr(model, "normalize_output", False)
        self.memory = None
        self._pending = None
        self._data = None

    def on_fit_start(self, ctx) -> None:
        self._data = Transformed(ctx.train_set, self.train_transform)
        n = len(ctx.train_set)
        if self.memory is None or self.memory.num_items != n:
            dim = getattr(self.model, "embedding_dim", None) or _embedding_dim(self.model)
            init = torch.Generator().manual_seed(derive_seed(ctx.seed, dim))  # the same bank on every rank
            self.memory = FeatureMemory(n, dim, device=ctx.device, init="uniform", generator=init)

    def train_dataset(self, ctx) -> Transformed:
        return self._data

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        images, _labels, idx = batch  # labels unused: self-supervised
        emb = self(images)
        loss = npsoftmax_loss(emb, self.memory.features, idx, self.cfg.temperature)
        self._pending = (idx, emb.detach())  # the bank changes after the step (backward still reads it)
        return {"loss": loss}

    def on_after_step(self, step: int, ctx) -> None:
        if self._pending is not None:
            self.memory.momentum_update(*self._pending, self.cfg.memory_momentum)
            self._pending = None


def _embedding_dim(model: nn.Module) -> int:
    """The embedding size: the out_features of the model's head (the last Linear)."""
    head = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not head:
        raise ConfigError("npsoftmax needs a model with a linear embedding head (build_model(..., head='linear')).")
    return head[-1].out_features
