"""``supervised``: the labelled upper bound of the thesis's "Supervised" rows.

A standard metric-learning loss from pytorch-metric-learning on the true training labels: Multi-Similarity
(default; alpha 2, beta 50, base 0.5, with its miner, epsilon 0.1), contrastive (margins 0 / 1) or triplet
margin (0.05), each with the library's defaults unless ``loss_options`` overrides them. Batches hold
``m_per_class`` images of each of ``batch_size / m_per_class`` classes (pytorch-metric-learning's
MPerClassSampler), built per epoch as an index table seeded by (seed, epoch). The thesis gives no recipe for
these rows, so ``train_defaults`` is a common choice (AdamW lr 1e-4, decay 1e-4, cosine, batch 64), not a
reproduced one; params files may override it.

This is the only method whose loss sees labels; its ``pos_precision`` is 1.0 by construction.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Literal

import torch
from torch import nn

from ..config import Config
from ..engine import derive_seed
from ..errors import ConfigError
from ._common import EmbedOutputMixin, gather_views, labels_tensor, retrieval_embedding
from .base import Method
from .views import Transformed

SUPERVISED_LOSSES = {"multi_similarity": "MultiSimilarityLoss", "contrastive": "ContrastiveLoss",
                     "triplet_margin": "TripletMarginLoss"}


@dataclasses.dataclass(frozen=True)
class SupervisedConfig(Config):
    supervised_loss: Literal["multi_similarity", "contrastive", "triplet_margin"] = "multi_similarity"
    loss_options: dict[str, float] = dataclasses.field(default_factory=dict)  # keyword arguments of the loss
    ms_miner_epsilon: float | None = 0.1  # MultiSimilarityMiner with multi_similarity; None: no miner
    m_per_class: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.m_per_class < 1:
            raise ConfigError(f"m_per_class must be >= 1, got {self.m_per_class}. Fix: use e.g. 4.")


def m_per_class_batches(labels: torch.Tensor, batch_size: int, m: int, seed: int, epoch: int) -> torch.Tensor:
    """(N // batch_size, batch_size) indices: each row holds ``batch_size // m`` distinct classes, ``m`` items of
    each (drawn without replacement, cycling through classes with fewer than m items). Seeded by (seed, epoch)."""
    classes, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    n_cls, per_batch = classes.numel(), batch_size // m
    if batch_size % m or per_batch > n_cls:
        raise ConfigError(f"batch_size={batch_size} must be a multiple of m_per_class={m} with at most {n_cls} "
                          f"classes per batch. Fix: use batch_size = m_per_class x (classes per batch).")
    gen = torch.Generator().manual_seed(derive_seed(seed, epoch))
    # members[c, :counts[c]] = the items of class c (rest padding)
    order = torch.argsort(inverse, stable=True)
    start = torch.cumsum(counts, 0) - counts
    width = int(counts.max())
    slot = torch.arange(width)
    members = torch.zeros(n_cls, width, dtype=torch.int64)
    members[inverse[order], torch.arange(labels.numel()) - start[inverse[order]]] = order
    n_batches = labels.numel() // batch_size
    chosen = torch.rand(n_batches, n_cls, generator=gen).argsort(1)[:, :per_batch]  # (nb, P) classes
    # a random permutation of each chosen class's members: invalid slots sort last
    keys = torch.rand(n_batches, per_batch, width, generator=gen)
    keys = keys.masked_fill(slot >= counts[chosen][..., None], 2.0)
    perm = keys.argsort(-1)
    pick = torch.arange(m) % counts[chosen][..., None]  # cycle when a class has fewer than m items
    rows = torch.gather(perm, -1, pick)
    return members[chosen[..., None], rows].reshape(n_batches, batch_size)


class Supervised(EmbedOutputMixin, Method):
    name: ClassVar[str] = "supervised"
    Config: ClassVar[type] = SupervisedConfig
    train_defaults: ClassVar[dict] = dict(optimizer="adamw", lr=1e-4, weight_decay=1e-4, epochs=60,
                                          schedule="cosine", batch_size=64)

    def __init__(self, model: nn.Module, cfg: SupervisedConfig, *, train_transform: Callable,
                 test_transform: Callable):
        super().__init__()
        from pytorch_metric_learning import losses, miners  # optional heavy import, only for this method

        self.model, self.cfg = model, cfg
        self.train_transform, self.test_transform = train_transform, test_transform
        try:
            self.loss_fn = getattr(losses, SUPERVISED_LOSSES[cfg.supervised_loss])(**cfg.loss_options)
        except TypeError as exc:
            raise ConfigError(f"loss_options {cfg.loss_options} do not fit {SUPERVISED_LOSSES[cfg.supervised_loss]} "
                              f"({exc}). Fix: use that loss's keyword arguments.") from None
        use_miner = cfg.supervised_loss == "multi_similarity" and cfg.ms_miner_epsilon is not None
        self.miner = miners.MultiSimilarityMiner(epsilon=cfg.ms_miner_epsilon) if use_miner else None
        self._data = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return retrieval_embedding(self.model(images))

    @classmethod
    def validate(cls, cfg: SupervisedConfig, train_cfg, train_set: Any) -> None:
        """Batches of ``m_per_class`` images from each of ``batch_size / m_per_class`` distinct classes, at least
        one batch an epoch (checked by fit_method before anything is written)."""
        n, b, m = len(train_set), train_cfg.batch_size, cfg.m_per_class
        n_cls = int(labels_tensor(train_set).unique().numel())
        if b % m or b // m > n_cls or b > n:
            fits = m * max(1, min(n_cls, n // m))
            raise ConfigError(f"supervised: batch_size={b} must be m_per_class={m} x (classes per batch), with at "
                              f"most the {n_cls} training classes in a batch and at most the {n} training images. "
                              f"Fix: -p batch_size {fits} (or another multiple of {m} up to {fits}).")

    def on_fit_start(self, ctx) -> None:
        self._data = Transformed(ctx.train_set, self.train_transform)
        self._labels = labels_tensor(ctx.train_set)

    def train_dataset(self, ctx) -> Transformed:
        return self._data

    def epoch_batches(self, epoch: int, ctx) -> torch.Tensor:
        return m_per_class_batches(self._labels, ctx.cfg.batch_size, self.cfg.m_per_class, ctx.seed, epoch)

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        images, labels, _ = batch
        emb = gather_views(self(images).float())  # the global batch under DDP, as on one GPU
        labels = gather_views(labels, grad=False)
        pairs = self.miner(emb, labels) if self.miner is not None else None
        return {"loss": self.loss_fn(emb, labels, pairs)}

    def on_epoch_end(self, epoch: int, ctx) -> dict[str, Any]:
        return {"pos_precision": 1.0}  # true labels
