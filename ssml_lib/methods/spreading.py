"""``spreading``: Invariant and Spreading Instance Feature (Ye et al., CVPR 2019; thesis §3.1).

Each training item gives two augmented views; one forward over [view 1; view 2] (BatchNorm sees both, as the
official code concatenates them) yields L2-normalised embeddings and :func:`ssml_lib.losses.spreading_loss`
(official form by default: column side detached, 2B - 1 terms, T = 0.1), over the global batch under DDP
(embeddings gathered with their gradient). The recipe
(docs/methods.md) is in ``train_defaults``: SGD lr 0.001, momentum 0.9, L2 decay
5e-4, 60 epochs, lr x0.1 at epochs 20 and 40, 64 instances (128 images) a batch.

``nn_positive_prob`` is the official code's undocumented CUB-only trick: before every epoch the
training images are embedded with the test transform through the L2-normalised pooled features (pool5), and
the second view of item i comes from its 1-NN with that probability (0.5 there). The official code turns it
on for ``--dataset cub200`` only; here it is off (0.0) unless asked for, e.g. in the CUB params files.

``negatives`` (the Spreading paper's Table 8): ``all`` (default), ``hard_half`` or ``easy_half``, each anchor's
most / least similar half of its in-batch negatives (:func:`ssml_lib.losses.spreading_loss`).

Mined positives: the pseudo-positive of item i is its partner's view (itself without the trick), so the
logged ``pos_precision`` is the fraction of items whose partner shares their class: 1.0 unless the trick is on.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Literal

import torch
from torch import nn

from ..config import Config
from ..engine import derive_seed
from ..errors import ConfigError
from ..losses import spreading_loss
from ..mining import spreading_partners
from ..models import l2_normalize
from ._common import EmbedOutputMixin, gather_views, labels_tensor, retrieval_embedding
from .base import Method
from .views import TwoViews


@dataclasses.dataclass(frozen=True)
class SpreadingConfig(Config):
    temperature: float = 0.1
    spreading_variant: Literal["official", "paper"] = "official"
    negative_weight: float = 1.0  # the official --batch-m
    nn_positive_prob: float = 0.0  # official code: 0.5 on CUB only (see the module docstring)
    negatives: Literal["all", "hard_half", "easy_half"] = "all"  # the paper's Table 8 (spreading_loss)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.temperature > 0:
            raise ConfigError(f"spreading temperature must be > 0, got {self.temperature}. Fix: use e.g. 0.1.")
        if not 0.0 <= self.nn_positive_prob <= 1.0:
            raise ConfigError(f"nn_positive_prob must lie in [0, 1], got {self.nn_positive_prob}. Fix: 0.0 (off) "
                              "or 0.5 (the official CUB setting).")
        if self.spreading_variant == "official" and self.negative_weight < 1.0:
            raise ConfigError(f"the official spreading loss needs negative_weight >= 1, got {self.negative_weight}. "
                              "Fix: raise it, or use spreading_variant='paper'.")
        if self.negatives != "all" and self.spreading_variant != "official":
            raise ConfigError(f"negatives {self.negatives!r} selects among the official form's 2B - 2 negatives. "
                              "Fix: spreading_variant='official', or negatives='all'.")


class Spreading(EmbedOutputMixin, Method):
    name: ClassVar[str] = "spreading"
    Config: ClassVar[type] = SpreadingConfig
    train_defaults: ClassVar[dict] = dict(optimizer="sgd", lr=0.001, momentum=0.9, weight_decay=5e-4, epochs=60,
                                          schedule="multistep", schedule_unit="epoch", milestones=(20, 40), gamma=0.1,
                                          batch_size=64)

    def __init__(self, model: nn.Module, cfg: SpreadingConfig, *, train_transform: Callable,
                 test_transform: Callable):
        super().__init__()
        self.model, self.cfg = model, cfg
        self.train_transform, self.test_transform = train_transform, test_transform
        self.normalize = not getattr(model, "normalize_output", False)  # the loss needs unit vectors
        self.register_buffer("partner", torch.zeros(0, dtype=torch.int64))  # (N,) with the NN trick; state
        self._views = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        emb = retrieval_embedding(self.model(images))
        return l2_normalize(emb) if self.normalize else emb

    def embed_batch(self, batch: Any) -> torch.Tensor:
        if self._embed_output == "f":
            images = batch[0] if isinstance(batch, (list, tuple)) else batch
            return self(images)
        return super().embed_batch(batch)

    # ------------------------------------------------------------------ data

    def on_fit_start(self, ctx) -> None:
        self._views = TwoViews(ctx.train_set, self.train_transform)
        self._labels = labels_tensor(ctx.train_set)
        n = len(ctx.train_set)
        if self.cfg.nn_positive_prob > 0 and self.partner.numel() != n:
            self.partner = torch.arange(n, device=self.partner.device)  # sized before a checkpoint restores it

    def on_epoch_start(self, epoch: int, ctx) -> None:
        if self.cfg.nn_positive_prob == 0:
            return
        with self.embedding_output("features"):  # pool5 of the test view, as the official code
            feats = ctx.embed(ctx.datasets["noaug"])
        gen = torch.Generator().manual_seed(derive_seed(ctx.seed, epoch))
        self.partner = spreading_partners(feats.cpu(), probability=self.cfg.nn_positive_prob,
                                          generator=gen).to(self.partner.device)

    def train_dataset(self, ctx) -> TwoViews:
        self._views.set_partner(self.partner if self.partner.numel() else None)
        return self._views

    # ------------------------------------------------------------------ step

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        (view1, view2), _labels, _index = batch  # labels unused: self-supervised
        emb = self(torch.cat([view1, view2]))
        e1, e2 = gather_views(emb, 2).chunk(2)  # the global batch's negatives under DDP, as on one GPU
        loss = spreading_loss(e1, e2, self.cfg.temperature, variant=self.cfg.spreading_variant,
                              negative_weight=self.cfg.negative_weight, negatives=self.cfg.negatives)
        return {"loss": loss}

    def on_epoch_end(self, epoch: int, ctx) -> dict[str, Any]:
        if not self.partner.numel():
            return {"pos_precision": 1.0, "nn_partner_fraction": 0.0}
        p = self.partner.cpu()
        own = torch.arange(p.numel())
        same = (self._labels[p] == self._labels).double()
        swapped = p != own
        return {"pos_precision": float(same.mean()), "nn_partner_fraction": float(swapped.double().mean()),
                "nn_partner_precision": float(same[swapped].mean()) if swapped.any() else None}
