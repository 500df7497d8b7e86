"""``stml``: Self-Taught Metric Learning (Kim et al., CVPR 2022; thesis §3.3), as the official code runs it
(docs/methods.md).

- Student: the model with two heads, ``g`` (``g_embedding_size`` = 1024, raw) and ``f`` (the retrieval
  embedding, not L2-normalised unless ``student_norm``). A model built without ``g`` gets one here
  (orthogonal init, bias 0, as the official heads).
- Teacher: backbone + pooling + its own ``g`` (no ``f``), no autograd, always in eval mode, fed the same
  augmented views as the student, updated by EMA over the whole state_dict with ``teacher_momentum``
  (0.999; 0.9 for SOP) after backward and before the optimiser step (the official one-step lag;
  ``ema_after_step`` gives the lag-free form). ``teacher_momentum_steps`` rescales the momentum to a run of
  another length (m' = m ** (official steps / steps)), so that a short stand-in run's teacher moves as much
  over the run as the official one does over 90 epochs; the momentum used is logged per epoch. Its backbone
  starts as a copy of the student's (equal to the official teacher for pre-trained runs; the official scratch
  ResNet18 teacher is a second random draw) and its ``g`` gets its own random orthogonal init, as in the
  official code.
- Batches: at every epoch start the student (eval mode) embeds the no-augmentation view of the training set
  through ``g``; each image keeps its ``num_neighbors`` nearest images including itself (squared Euclidean);
  a batch is ``batch_size / num_neighbors`` random queries, each followed by its list
  (:class:`~ssml_lib.mining.NeighbourBatchSampler`). The table is method state, so a run resumes mid-epoch.
- Loss: :func:`~ssml_lib.losses.stml_targets` on the teacher's g with k = num_neighbors x 2 views, then
  (L_RC(f) + L_RC(g)) / 2 + KL(g -> f), sigma 3, delta 1 (0.9 for SOP). Under DDP the embeddings are
  gathered so that W and the loss cover the global batch, as on the official single GPU.
- Optimiser (``train_defaults``): AdamP with nesterov (``adamp`` package), decay 1e-2 decoupled, lr 1e-4
  for the backbone and ``embedding_lr`` (1e-4; 1e-2 for SOP) for both heads, cosine per epoch, 90 epochs,
  batch 120.

Mined-positive precision (labels used for it only): ``pos_precision`` is over the pairs of different images
in a batch whose target W > 0.5 (the pairs the loss pulls more than it pushes), the fraction that share a
class, summed over the epoch; ``pos_pairs_per_row`` is their number per embedding row; ``nn_precision`` is
the precision of the epoch's neighbour table (the K - 1 neighbours of every image).
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable, ClassVar, Optional

import torch
from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..losses import relaxed_contrastive_loss, stml_kl_distillation, stml_targets
from ..mining import NeighbourBatchSampler, ema_update_, neighbour_table
from ..models import bn_freeze
from ..models.heads import make_linear
from ._common import EmbedOutputMixin, gather_views, labels_tensor, neighbour_precision
from .base import Method
from .views import TwoViews

VIEWS = 2


@dataclasses.dataclass(frozen=True)
class STMLConfig(Config):
    num_neighbors: int = 5  # images per NN list, self included (2 for SOP)
    sigma: float = 3.0
    delta: float = 1.0  # 0.9 for SOP
    teacher_momentum: float = 0.999  # 0.9 for SOP
    # The length (steps) of the run ``teacher_momentum`` was set for. Given, the momentum is rescaled to this run's
    # length so that the teacher forgets as much over the whole run: m' = m ** (teacher_momentum_steps / steps).
    # None: used as is (the official recipe). The stand-in sets it (its runs are ~30x shorter).
    teacher_momentum_steps: Optional[int] = None
    ema_after_step: bool = False  # False: the official update before optimizer.step (one-step lag)
    g_embedding_size: int = 1024
    student_norm: bool = False  # L2-normalise f (training and evaluation); the official default is off
    embedding_lr: Optional[float] = 1e-4  # both heads; None: the backbone's lr
    bn_freeze: bool = False  # BatchNorm in eval mode with frozen affine parameters (BN-Inception runs)

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [(self.num_neighbors >= 1, "num_neighbors", "use >= 1, e.g. 5 (CUB/Cars) or 2 (SOP)"),
                  (self.sigma > 0, "sigma", "use > 0, e.g. 3"), (self.delta > 0, "delta", "use > 0, e.g. 1"),
                  (0.0 <= self.teacher_momentum <= 1.0, "teacher_momentum", "use a value in [0, 1], e.g. 0.999"),
                  (self.teacher_momentum_steps is None or self.teacher_momentum_steps >= 1, "teacher_momentum_steps",
                   "use None or the official run's step count, e.g. 4320 (CUB: 90 epochs x 48 steps)"),
                  (self.g_embedding_size >= 1, "g_embedding_size", "use e.g. 1024"),
                  (self.embedding_lr is None or self.embedding_lr > 0, "embedding_lr", "use None or > 0")]
        for ok, key, fix in checks:
            if not ok:
                raise ConfigError(f"invalid STML {key}: {getattr(self, key)!r}. Fix: {fix}.")


class GTeacher(nn.Module):
    """The teacher network: backbone -> pooling -> g. Module names equal the student's, so the EMA pairs
    tensors by name and the student's extra ``head`` (f) is ignored."""

    def __init__(self, backbone: nn.Module, pool: nn.Module, second_head: nn.Module):
        super().__init__()
        self.backbone, self.pool, self.second_head = backbone, pool, second_head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.second_head(self.pool(self.backbone(images)))


def effective_momentum(cfg: STMLConfig, train_cfg, num_items: int) -> float:
    """The teacher's EMA momentum for this run (see ``STMLConfig.teacher_momentum_steps``)."""
    if cfg.teacher_momentum_steps is None:
        return cfg.teacher_momentum
    per_epoch = max(num_items // train_cfg.batch_size, 1)  # the NN sampler's epoch length
    steps = train_cfg.max_steps if train_cfg.max_steps else train_cfg.epochs * per_epoch
    return float(cfg.teacher_momentum ** (cfg.teacher_momentum_steps / max(steps, 1)))


class STML(EmbedOutputMixin, Method):
    name: ClassVar[str] = "stml"
    Config: ClassVar[type] = STMLConfig
    train_defaults: ClassVar[dict] = dict(optimizer="adamp", lr=1e-4, weight_decay=1e-2, epochs=90, schedule="cosine",
                                          schedule_unit="epoch", batch_size=120)

    def __init__(self, model: nn.Module, cfg: STMLConfig, *, train_transform: Callable,
                 test_transform: Callable):
        super().__init__()
        for attr in ("backbone", "pool", "head", "features"):
            if not hasattr(model, attr):
                raise ConfigError(f"STML needs an ssml_lib.models.Embedder (backbone, pool, head), got "
                                  f"{type(model).__name__}. Fix: build it with ssml_lib.models.build_model.")
        if model.second_head is None:
            model.second_head = make_linear(model.feature_dim, cfg.g_embedding_size, init="orthogonal")
            model.second_embedding_dim = cfg.g_embedding_size
        elif model.second_head.out_features != cfg.g_embedding_size:
            raise ConfigError(f"the model's g head has {model.second_head.out_features} outputs but "
                              f"g_embedding_size={cfg.g_embedding_size}. Fix: make them agree.")
        model.normalize_output = cfg.student_norm
        self.model, self.cfg = model, cfg
        self.train_transform, self.test_transform = train_transform, test_transform
        self.teacher = GTeacher(copy.deepcopy(model.backbone), copy.deepcopy(model.pool),
                                make_linear(model.feature_dim, cfg.g_embedding_size, init="orthogonal"))
        self.teacher.requires_grad_(False)
        if cfg.bn_freeze:
            bn_freeze(self.model)
        self.register_buffer("neighbours", torch.zeros(0, cfg.num_neighbors, dtype=torch.int64))
        # W > 0.5 pairs of the epoch so far: [pairs, same-class pairs, rows]; state, so resumption is exact
        self.register_buffer("pos_counts", torch.zeros(3, dtype=torch.float64))
        self.train()

    def train(self, mode: bool = True) -> "STML":
        super().train(mode)
        self.teacher.eval()
        if mode and self.cfg.bn_freeze:
            bn_freeze(self.model)
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)[1]

    def compiled_modules(self) -> list[nn.Module]:
        return [self.model, self.teacher]

    def param_groups(self, cfg) -> list[dict]:
        named = [(f"model.{n}", p, n.startswith(("head.", "second_head."))) for n, p in self.model.named_parameters()]
        heads = [(n, p) for n, p, is_head in named if is_head]
        rest = [(n, p) for n, p, is_head in named if not is_head]
        emb = {"lr": self.cfg.embedding_lr} if self.cfg.embedding_lr is not None else {}
        return [{"name": "backbone", "params": rest}, {"name": "embedding", "params": heads, **emb}]

    # ------------------------------------------------------------------ data

    @classmethod
    def validate(cls, cfg: STMLConfig, train_cfg, train_set: Any) -> None:
        """Refuse a batch that cannot hold whole NN lists (called by fit_method before anything is written)."""
        n, k, b = len(train_set), cfg.num_neighbors, train_cfg.batch_size
        if b % k or k > n or b > n:
            fits = k * max(1, min(b, n) // k)
            raise ConfigError(f"STML batch_size={b} must be a multiple of num_neighbors={k}, and both at most the "
                              f"{n} training images. Fix: use batch_size = queries x num_neighbors, e.g. "
                              + (f"-p batch_size {fits} ({fits // k} x {k})." if k <= n else
                                 f"-p num_neighbors {n} or fewer."))

    def on_fit_start(self, ctx) -> None:
        self.validate(self.cfg, ctx.cfg, ctx.train_set)
        n, k = len(ctx.train_set), self.cfg.num_neighbors
        self._views = TwoViews(ctx.train_set, self.train_transform)
        self._labels = labels_tensor(ctx.train_set, ctx.device)
        self.neighbours = torch.zeros(n, k, dtype=torch.int64, device=self.neighbours.device)  # restore target
        self.momentum = effective_momentum(self.cfg, ctx.cfg, n)

    def on_epoch_start(self, epoch: int, ctx) -> None:
        with self.embedding_output("g"):  # student g (raw, 1024-d) of the no-augmentation view
            feats = ctx.embed(ctx.datasets["noaug"])
        self.neighbours = neighbour_table(feats, self.cfg.num_neighbors, metric="l2sq").to(self.neighbours.device)
        self.pos_counts.zero_()

    def train_dataset(self, ctx) -> TwoViews:
        return self._views

    def epoch_batches(self, epoch: int, ctx) -> torch.Tensor:
        # the engine splits each global batch across ranks itself, so the sampler sees one replica
        table = self.neighbours.cpu()
        sampler = NeighbourBatchSampler(table, ctx.cfg.batch_size, seed=ctx.seed, num_replicas=1, rank=0)
        return sampler.global_batches(epoch)

    # ------------------------------------------------------------------ step

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        g, f, t, ids, row_labels = self._views_forward(batch)
        with torch.no_grad():
            weights = stml_targets(t, ids, VIEWS * self.cfg.num_neighbors, self.cfg.sigma)
            self._count_positives(weights, ids, row_labels)
        rc_f, rc_g, kl = self._batch_terms(f, g, weights)
        rc = (rc_f + rc_g) / 2
        return {"loss": rc + kl, "rc": rc.detach(), "rc_f": rc_f.detach(), "rc_g": rc_g.detach(),
                "kl": kl.detach()}

    def _views_forward(self, batch: Any):
        """Both views through the student and (no grad) the teacher: (g, f, teacher float32, ids, labels), the
        rows of the global batch, views stacked. Under DDP every rank computes the global batch's loss (identity
        on one process): the targets need all rows."""
        (view1, view2), labels, index = batch
        images = torch.cat([view1, view2])
        g, f = self.model(images)
        g, f = gather_views(g, VIEWS), gather_views(f, VIEWS)
        index, labels = gather_views(index, grad=False), gather_views(labels, grad=False)
        with torch.no_grad():
            t = gather_views(self.teacher(images), VIEWS, grad=False).float()
        return g, f, t, torch.cat([index, index]), torch.cat([labels, labels])

    def _batch_terms(self, f: torch.Tensor, g: torch.Tensor, weights: torch.Tensor):
        """(relaxed contrastive loss of f, of g, the KL distillation of g into f) on the batch targets."""
        delta = self.cfg.delta
        return (relaxed_contrastive_loss(f, weights, delta), relaxed_contrastive_loss(g, weights, delta),
                stml_kl_distillation(f, g))

    @torch.no_grad()
    def _count_positives(self, weights: torch.Tensor, ids: torch.Tensor, labels: torch.Tensor) -> None:
        pos = (weights > 0.5) & (ids[:, None] != ids[None, :])  # pseudo-positive pairs of different images
        same = pos & (labels[:, None] == labels[None, :])
        self.pos_counts += torch.stack([pos.sum(), same.sum(), torch.full((), ids.numel(), device=ids.device)]).double()

    def on_before_optimizer_step(self, step: int, ctx) -> None:
        if not self.cfg.ema_after_step:
            ema_update_(self.teacher, self.model, self.momentum)

    def on_after_step(self, step: int, ctx) -> None:
        if self.cfg.ema_after_step:
            ema_update_(self.teacher, self.model, self.momentum)

    def on_epoch_end(self, epoch: int, ctx) -> dict[str, Any]:
        pairs, same, rows = self.pos_counts.tolist()  # global batches: the same on every rank
        return {"pos_precision": same / pairs if pairs else None,  # None (null): no pair had W > 0.5
                "teacher_momentum": self.momentum,
                "pos_pairs_per_row": pairs / rows if rows else 0.0,
                "nn_precision": neighbour_precision(self.neighbours, self._labels)}
