"""``insclr``: InsCLR, instance-wise contrastive learning for retrieval (Deng et al., AAAI 2022; thesis §3.2).

A schedule of stages (the official pipeline; docs/methods.md), each a fit in its own folder:

1. at the stage start, embed the training set with the model as it left the previous stage (stage 0: the
   L2-normalised pooled GeM vector, no head, as the official stage 0) and keep each image's top-``pool_size``
   neighbours by exact inner product (``candidate_pool.npz``, the official file layout);
2. train on tuple batches: shuffled anchors, each followed by its first ``num_neighbors`` pool neighbours,
   pseudo-label = anchor index + 1 (true labels never reach the loss);
3. contrastive loss with margin 0.4 on the batch, plus a memory loss on bank rows:
   ``base`` stages ("instance-discrimination cycles"): memory v1, a bank of augmented features overwritten
   each step, contributing random negatives only; ``impr`` stage ("candidate-pool cycle"): memory v2, positive
   sets grown by query expansion over the no-augmentation bank, negatives from beyond the pool boundary.
   ``impr_memory_sets`` picks how v2 forms its sets (:mod:`ssml_lib.mining.query_expansion`): "official"
   (default) as the official ``XBMv2.get``: the batch is written to the banks first, a batch member may
   return as a memory positive of its own group, each image gets one label per step (the largest group
   label claiming it), and members or unselected candidates may be memory negatives; "exclusive" (the
   earlier rule here): mining reads the banks before the batch is written, members are never their own
   group's memory positives, an image may be a positive of several groups, and no member, positive or
   candidate of any group is a memory negative, so no image carries contradictory labels in one step.
   ``impr_query_set="anchor"`` mines from the anchor alone (the paper's Table 1 "D-anchor": its in-batch
   positives stay positives in the batch loss but do not join the memory query set). ``impr_mode`` also takes
   the paper's Table 2 variants (:func:`~ssml_lib.mining.parse_selection_mode`: no sparsity, threshold
   selection). In-batch selection (neighbour kept as positive only if its no-aug cosine to the anchor >=
   threshold) runs wherever a threshold is set.

Defaults are the thesis schedule (three ``base`` cycles, one ``impr``; threshold 0.95 in batch, 0.6 in memory,
pool 250, k = 3); the official configs differ where noted on each field. ``train_defaults`` is the official
GLDv2 base recipe (Adam 1e-4 with coupled L2 on weights only, per-step multistep); the ``impr`` stage scales the
lr by ``impr_lr_scale`` (official 3e-5 / 1e-4) and may have its own length, lr milestones and batch
(``impr_max_steps``, ``impr_milestones``, ``impr_batch_size``; None = as the base stages; official GLDv2 impr:
40k steps, decay at 20k, 16 x 4 images). Its image size (official 448 px against 224) is not a setting here:
every stage uses the train transform given to ``fit_method``. The model (GeM p = 3, norm-linear-norm head on
ResNet; 128-d for the DML tables) is the caller's: see :data:`MODEL_DEFAULTS`.

Logged per epoch: ``pos_precision`` (fraction of mined positives, in batch and from memory, sharing the
anchor's true class), its two parts, the selection accept rate, and ``pool_precision`` (top-k of the pool).
``precision_log_every`` (None: off) adds ``precision_trace``, the counts behind the two parts per window of that
many steps (``[step, batch hits, batch positives, memory hits, memory positives]``), for precision curves.

``selection_rule`` picks the similarity that in-batch selection thresholds (the InsCLR paper's Figure 4):
"noaug" (default; official) the no-augmentation features, "augmented" the training (augmented) features,
"relative" the no-aug similarities divided by the tuple's largest, "multiscale" no-aug features averaged over
``selection_scales``. Only the selection reads them; the memory banks keep the single-scale no-aug features.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config
from ..engine import default_epoch_batches
from ..errors import ConfigError
from ..losses import insclr_contrastive_loss
from ..mining import (FeatureMemory, QueryExpansionMemory, candidate_pool, draw_negatives, load_candidate_pool,
                      parse_selection_mode, save_candidate_pool, select_in_batch, tuple_labels)
from ..models import l2_normalize
from ._common import EmbedOutputMixin, labels_tensor, neighbour_precision, retrieval_embedding
from .base import Method
from .views import Transformed

POOL_FILE = "candidate_pool.npz"
MODEL_DEFAULTS = dict(pooling="gem", gem_p=3.0, gem_learnable=False, head="norm_linear_norm")  # official GLDv2
_COUNTERS = ("pos_hits", "accepted", "proposed", "mem_hits", "mem_total")  # per-epoch diagnostics
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclasses.dataclass(frozen=True)
class InsCLRConfig(Config):
    insclr_stages: tuple[Literal["base", "impr"], ...] = ("base", "base", "base", "impr")  # thesis; INSTRE: base
    pool_size: int = 250  # thesis; official 500
    num_neighbors: int = 3
    margin: float = 0.4
    loss_value: Literal["official", "hinge"] = "official"
    memory_weight: float = 1.0
    pool_scales: tuple[float, ...] = (1.0,)  # official (1, 1/sqrt 2, 1/2)
    first_pool_features: Literal["pooled", "embedding"] = "pooled"  # stage 0 pool from the GeM vector
    memory_dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    memory_draw: int = 100_000  # GET_SIZE; at most N - 1 are drawn
    # base stages (official base configs: no selection, v1 start 2000 / use 4000, 50 pool neighbours excluded)
    base_selection_threshold: Optional[float] = 0.95  # thesis T_h1; official None (off)
    base_memory: bool = True
    memory_start_step: int = 2000
    memory_use_step: int = 4000
    memory_exclude: int = 50
    # impr stage (official GLDv2 impr: selection 0.6, b+i_tr4_avg0.60_k05, boundaries 0.75 / 0.5)
    impr_selection_threshold: Optional[float] = 0.95  # thesis T_h1; official 0.6
    impr_mode: str = "b+i_tr4_avg0.60_k05"  # thesis T_h2 = 0.6
    impr_positive_threshold: float = 0.75
    impr_negative_threshold: float = 0.5
    impr_use_negative: bool = True
    impr_memory_sets: Literal["official", "exclusive"] = "official"  # v2 positive/negative sets (see below)
    impr_query_set: Literal["tuple", "anchor"] = "tuple"  # v2 mines from the tuple's members; "anchor": paper D-anchor
    impr_pool_columns: Optional[int] = None  # pool columns per member scanned by v2 (None: all)
    impr_lr_scale: float = 0.3
    impr_max_steps: Optional[int] = None  # official GLDv2 impr: 40_000 (None: the TrainConfig's max_steps)
    impr_milestones: Optional[tuple[int, ...]] = None  # official (20_000,); () = constant lr; None: as the base
    impr_batch_size: Optional[int] = None  # official 64 = 16 x 4 (None: the TrainConfig's batch_size)
    # in-batch selection rule (paper Figure 4; official: noaug) and the precision log
    selection_rule: Literal["noaug", "augmented", "relative", "multiscale"] = "noaug"
    selection_scales: tuple[float, ...] = (1.0, 2 ** -0.5, 0.5)  # "multiscale" only (official SCALES)
    precision_log_every: Optional[int] = None  # steps per precision_trace window (None: no trace)

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_selection_mode(self.impr_mode)  # ConfigError with the expected form
        checks = [
            (len(self.insclr_stages) >= 1, "insclr_stages", "give at least one stage, e.g. ['base', 'impr']"),
            (self.num_neighbors >= 1 and self.pool_size >= self.num_neighbors, "pool_size/num_neighbors",
             "use 1 <= num_neighbors <= pool_size"),
            (-1.0 <= self.margin <= 1.0, "margin", "use a cosine in [-1, 1], e.g. 0.4"),
            (self.memory_weight >= 0 and self.memory_draw >= 1, "memory_weight/memory_draw", "use >= 0 and >= 1"),
            (len(self.pool_scales) > 0 and min(self.pool_scales) > 0, "pool_scales", "give positive factors"),
            (len(self.selection_scales) > 0 and min(self.selection_scales) > 0, "selection_scales",
             "give positive factors"),
            (self.precision_log_every is None or self.precision_log_every >= 1, "precision_log_every",
             "use None (off) or >= 1"),
            (0 <= self.memory_start_step <= self.memory_use_step, "memory_start_step/memory_use_step",
             "use 0 <= start <= use"),
            (all(t is None or -1.0 <= t <= 1.0 for t in (self.base_selection_threshold,
                                                         self.impr_selection_threshold)),
             "base/impr_selection_threshold", "use None (off) or a cosine in [-1, 1]"),
            (self.impr_negative_threshold <= self.impr_positive_threshold, "impr_negative_threshold",
             "use negative <= positive boundary"),
            (self.impr_lr_scale > 0, "impr_lr_scale", "use a positive factor"),
            (self.impr_max_steps is None or self.impr_max_steps >= 1, "impr_max_steps", "use None or >= 1"),
            (self.impr_milestones is None or (min(self.impr_milestones, default=1) >= 1 and list(
                self.impr_milestones) == sorted(set(self.impr_milestones))), "impr_milestones",
             "use None, [] (constant lr) or strictly increasing positive steps, e.g. [20000]"),
            (self.impr_batch_size is None or self.impr_batch_size % (1 + self.num_neighbors) == 0
             and self.impr_batch_size > 0, "impr_batch_size",
             f"use None or a positive multiple of 1 + num_neighbors = {1 + self.num_neighbors}"),
        ]
        for ok, key, fix in checks:
            if not ok:
                raise ConfigError(f"invalid InsCLR setting {key}. Fix: {fix}.")


class _AugAndPlain(Transformed):
    """``(augmented view, no-augmentation view, label, index)``: one decode, two transforms."""

    def __init__(self, base: Any, transform: Callable, plain: Callable):
        super().__init__(base, transform)
        self.plain = plain

    def __getitem__(self, i: int):
        image, label, _ = self.base[int(i)]
        return self.transform(image), self.plain(image), int(label), int(i)


class InsCLR(EmbedOutputMixin, Method):
    name: ClassVar[str] = "insclr"
    Config: ClassVar[type] = InsCLRConfig
    train_defaults: ClassVar[dict] = dict(optimizer="adam", lr=1e-4, weight_decay=1e-4, batch_size=256,
                                          schedule="multistep", schedule_unit="step", milestones=(40_000,),
                                          gamma=0.1, max_steps=60_000, epochs=10_000)

    def __init__(self, model: nn.Module, cfg: InsCLRConfig, *, train_transform: Callable, test_transform: Callable):
        super().__init__()
        self.model, self.cfg = model, cfg
        self.train_transform, self.test_transform = train_transform, test_transform
        self.normalize = not getattr(model, "normalize_output", False)  # the loss needs unit vectors
        self._scales: tuple[float, ...] = (1.0,)
        for name in _COUNTERS:
            self.register_buffer(name, torch.zeros((), dtype=torch.int64))  # epoch counters (checkpointed)

    @classmethod
    def stages(cls, cfg: InsCLRConfig) -> list:
        from .schedule import Stage

        return [Stage(f"cycle{i + 1}_{kind}", train=cls.impr_train_overrides(cfg) if kind == "impr" else {})
                for i, kind in enumerate(cfg.insclr_stages)]

    @staticmethod
    def impr_train_overrides(cfg: InsCLRConfig) -> dict[str, Any]:
        """TrainConfig overrides of the impr stage (empty: it runs as the base stages)."""
        out: dict[str, Any] = {}
        if cfg.impr_max_steps is not None:
            out["max_steps"] = cfg.impr_max_steps
        if cfg.impr_batch_size is not None:
            out["batch_size"] = cfg.impr_batch_size
        if cfg.impr_milestones:  # counted in the impr stage's own steps (each stage is a fit from step 0)
            out.update(schedule="multistep", schedule_unit="step", milestones=tuple(cfg.impr_milestones))
        elif cfg.impr_milestones is not None:  # (): no decay in the impr stage
            out.update(schedule="constant", milestones=())
        return out

    @property
    def kind(self) -> str:
        info = getattr(self, "stage_info", None)
        return self.cfg.insclr_stages[info.index if info is not None else 0]

    def _threshold(self) -> Optional[float]:
        return self.cfg.base_selection_threshold if self.kind == "base" else self.cfg.impr_selection_threshold

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        emb = retrieval_embedding(self.model(images))
        return l2_normalize(emb) if self.normalize else emb

    def embed_batch(self, batch: Any) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        one = (lambda x: self(x)) if self._embed_output == "f" else (lambda x: super(InsCLR, self).embed_batch(x))
        if self._scales == (1.0,):
            return one(images)
        total = sum(one(images if s == 1 else F.interpolate(images, scale_factor=s, mode="bilinear",
                                                            align_corners=False)) for s in self._scales)
        return l2_normalize(total / len(self._scales))  # official: mean over scales, then L2

    def param_groups(self, cfg) -> list[dict]:
        scale = self.cfg.impr_lr_scale if self.kind == "impr" else 1.0
        return [{"name": "model", "lr_scale": scale,
                 "params": [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]}]

    # ------------------------------------------------------------------ per stage: pool and banks

    @classmethod
    def validate(cls, cfg: InsCLRConfig, train_cfg, train_set: Any) -> None:
        """Pool and batch against the training set (fit_method calls it for every stage before any write)."""
        n, k, b = len(train_set), cfg.num_neighbors, train_cfg.batch_size
        if cfg.pool_size > n - 1:
            raise ConfigError(f"InsCLR pool_size={cfg.pool_size} but the training set has {n} images (a pool holds "
                              f"other images). Fix: -p pool_size {max(n - 1, k)} (or less).")
        if b % (1 + k) or b // (1 + k) > n:
            fits = (1 + k) * max(1, min(b // (1 + k), n))
            raise ConfigError(f"InsCLR batches are groups of 1 + num_neighbors = {1 + k} images (an anchor and its "
                              f"neighbours), at most one group per each of the {n} training images, but "
                              f"batch_size={b}. Fix: -p batch_size {fits}.")

    def on_fit_start(self, ctx) -> None:
        cfg, n, k = self.cfg, len(ctx.train_set), self.cfg.num_neighbors
        if cfg.pool_size > n - 1:
            raise ConfigError(f"pool_size={cfg.pool_size} but the training set has {n} images. Fix: use pool_size "
                              f"<= {n - 1}.")
        local = ctx.cfg.batch_size // ctx.world_size
        if local % (1 + k):
            raise ConfigError(f"InsCLR batches are groups of 1 + num_neighbors = {1 + k} images, but the per-rank "
                              f"batch is {local}. Fix: use batch_size = {1 + k} x anchors x ranks (thesis: 64).")
        self._ctx, self._labels = ctx, labels_tensor(ctx.train_set, ctx.device)
        self.pool, self.pool_sims = self._candidate_pool(ctx)
        self._pool_precision = neighbour_precision(self.pool[:, :k], self._labels, skip_first=False)
        dtype, draw = _DTYPES[cfg.memory_dtype], min(cfg.memory_draw, n - 1)
        self._draw = draw
        if self.kind == "base" and cfg.base_memory:
            self.memory = FeatureMemory(n, self._dim(ctx), dtype=dtype, device=ctx.device)
        elif self.kind == "impr":
            self.memory = QueryExpansionMemory(n, self._dim(ctx), dtype=dtype, device=ctx.device)
        plain = (self._threshold() is not None and cfg.selection_rule != "augmented") or self.kind == "impr"
        self._trace: list[tuple[int, torch.Tensor]] = []  # (step, device snapshot of the counters)
        self._steps_done = 0
        self._data = (_AugAndPlain(ctx.train_set, self.train_transform, self.test_transform) if plain
                      else Transformed(ctx.train_set, self.train_transform))

    def _dim(self, ctx) -> int:
        dim = getattr(self.model, "embedding_dim", None)
        if not isinstance(dim, int):
            raise ConfigError("InsCLR's banks need the model's .embedding_dim (ssml_lib.models.build_model). "
                              "Fix: build the model with build_model(...).")
        return dim

    def _candidate_pool(self, ctx) -> tuple[torch.Tensor, torch.Tensor]:
        path = ctx.out_dir / POOL_FILE
        if path.is_file():  # computed at this stage's first start, from the previous stage's model
            return load_candidate_pool(path, num_items=len(ctx.train_set), device=ctx.device)
        first = getattr(self, "stage_info", None) is None or self.stage_info.index == 0
        which = "features" if first and self.cfg.first_pool_features == "pooled" else "f"
        self._scales = tuple(self.cfg.pool_scales)
        try:
            with self.embedding_output(which):
                feats = ctx.embed(ctx.datasets["noaug"])
        finally:
            self._scales = (1.0,)
        idx, sims = candidate_pool(l2_normalize(feats), self.cfg.pool_size)
        if ctx.is_main:
            save_candidate_pool(path, idx, sims)
        return idx, sims

    def on_epoch_start(self, epoch: int, ctx) -> None:
        if epoch == 0 and self.kind == "impr":  # official xbmv2 init: one pass fills both banks
            self.memory.aug.write(torch.arange(len(ctx.train_set)), ctx.embed(Transformed(ctx.train_set,
                                                                                     self.train_transform)))
            self.memory.noaug.write(torch.arange(len(ctx.train_set)), ctx.embed(ctx.datasets["noaug"]))

    def train_dataset(self, ctx) -> Any:
        return self._data

    def epoch_batches(self, epoch: int, ctx) -> torch.Tensor:
        """Rows of ``[a_1, n_11..n_1k, a_2, ...]``: a seeded shuffle of anchors, each with its top-k."""
        k = self.cfg.num_neighbors
        anchors = default_epoch_batches(self.pool.shape[0], ctx.cfg.batch_size // (1 + k), ctx.seed, epoch,
                                        shuffle=ctx.cfg.shuffle)
        pool = self.pool[:, :k].cpu()
        return torch.cat([anchors[..., None], pool[anchors]], dim=-1).reshape(anchors.shape[0], -1)

    # ------------------------------------------------------------------ step

    @torch.no_grad()
    def _plain_embedding(self, images: torch.Tensor, scales: tuple[float, ...] = (1.0,)) -> torch.Tensor:
        was = self.model.training
        self.model.eval()  # official: BN in eval mode, no gradient, for the no-aug features
        try:
            if scales == (1.0,):
                return self(images).float()
            total = sum(self(images if s == 1 else F.interpolate(images, scale_factor=s, mode="bilinear",
                                                                 align_corners=False)).float() for s in scales)
            return l2_normalize(total / len(scales))  # as the multi-scale pool features: mean, then L2
        finally:
            self.model.train(was)

    def _selection_features(self, emb: torch.Tensor, plain: Optional[torch.Tensor],
                            noaug: Optional[torch.Tensor]) -> torch.Tensor:
        """The features whose anchor-neighbour similarity the selection thresholds (``selection_rule``)."""
        rule = self.cfg.selection_rule
        if rule == "augmented":
            return emb.detach().float()
        if rule == "multiscale":
            return self._plain_embedding(plain, tuple(self.cfg.selection_scales))
        return noaug

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        cfg, k, step = self.cfg, self.cfg.num_neighbors, self._ctx.step
        if isinstance(self._data, _AugAndPlain):
            aug, plain, true_labels, idx = batch
        else:
            (aug, true_labels, idx), plain = batch, None
        labels = tuple_labels(idx, k)
        emb = self(aug)
        noaug = self._plain_embedding(plain) if plain is not None else None
        threshold = self._threshold()
        groups = true_labels.view(-1, 1 + k)
        if threshold is not None:
            sel = select_in_batch(self._selection_features(emb, plain, noaug), labels, k, threshold,
                                  normalize=False, relative=cfg.selection_rule == "relative")
            labels, accepted = sel.labels, sel.accepted
        else:
            accepted = torch.ones_like(groups[:, 1:], dtype=torch.bool)
        self.pos_hits += (accepted & (groups[:, 1:] == groups[:, :1])).sum()
        self.accepted += accepted.sum()
        self.proposed += accepted.numel()
        batch_loss = insclr_contrastive_loss(emb, labels, margin=cfg.margin, value=cfg.loss_value)
        out = {"loss_batch": batch_loss.detach()}
        draw = None
        if self.kind == "base" and cfg.base_memory and step >= cfg.memory_use_step:
            draw = draw_negatives(self.memory, idx, self.pool, self._draw, num_exclude=cfg.memory_exclude)
        elif self.kind == "impr":
            if cfg.impr_memory_sets == "official":  # the official trainer enqueues the batch, then mines
                self._write_impr(idx, emb, noaug)
            draw = self.memory.mine(idx, labels, noaug, self.pool, self.pool_sims, num_neighbors=k,
                                    positive_threshold=cfg.impr_positive_threshold,
                                    negative_threshold=cfg.impr_negative_threshold,
                                    num_negatives=self._draw if cfg.impr_use_negative else 0,
                                    pool_columns=cfg.impr_pool_columns, sets=cfg.impr_memory_sets,
                                    query_members=cfg.impr_query_set,
                                    **parse_selection_mode(cfg.impr_mode))
            positive = draw.valid & (draw.labels <= len(self._labels))  # dummy label N + 1 marks negatives
            anchor = (draw.labels - 1).clamp(0, len(self._labels) - 1)
            self.mem_hits += (positive & (self._labels[draw.indices] == self._labels[anchor])).sum()
            self.mem_total += positive.sum()
        loss = batch_loss
        if draw is not None:
            memory_loss = insclr_contrastive_loss(emb, labels, draw.features, draw.labels, margin=cfg.margin,
                                                  value=cfg.loss_value, anchor_mask=labels > 0)
            loss = loss + cfg.memory_weight * memory_loss
            out["loss_memory"] = memory_loss.detach()
        if self.kind == "base" and cfg.base_memory and step >= cfg.memory_start_step:
            self.memory.write(idx, emb.detach())  # overwrite, no momentum (official v1)
        elif self.kind == "impr" and cfg.impr_memory_sets == "exclusive":
            self._write_impr(idx, emb, noaug)
        self._steps_done = step + 1
        every = cfg.precision_log_every
        if every and self._steps_done % every == 0:  # a device snapshot of the counters, no host sync
            self._trace.append((self._steps_done, self._snapshot()))
        return {"loss": loss, **out}

    def _snapshot(self) -> torch.Tensor:
        return torch.stack([self.pos_hits, self.accepted, self.mem_hits, self.mem_total]).clone()

    def _write_impr(self, idx: torch.Tensor, emb: torch.Tensor, noaug: torch.Tensor) -> None:
        self.memory.aug.write(idx, emb.detach())
        self.memory.noaug.write(idx, noaug)

    def _precision_trace(self) -> list[list[int]]:
        """Per window: [last step, batch hits, batch positives, memory hits, memory positives] (window counts)."""
        snaps = self._trace + [(self._steps_done, self._snapshot())]
        self._trace = []
        steps = torch.tensor([step for step, _ in snaps])
        counts = torch.cat([steps[:, None], torch.stack([c for _, c in snaps]).cpu().to(steps.dtype)], dim=1)
        counts = counts[torch.cat([counts[1:, 0] != counts[:-1, 0], counts.new_ones(1, dtype=torch.bool)])]
        counts[1:, 1:] -= counts[:-1, 1:].clone()  # cumulative in the epoch -> per window
        return counts.tolist()

    def on_epoch_end(self, epoch: int, ctx) -> dict[str, Any]:
        hits, total = int(self.pos_hits), int(self.accepted)
        mem_hits, mem_total = int(self.mem_hits), int(self.mem_total)
        out = {"pos_precision": (hits + mem_hits) / (total + mem_total) if total + mem_total else float("nan"),
               "batch_pos_precision": hits / total if total else float("nan"),
               "selection_accept_rate": total / max(int(self.proposed), 1),
               "pool_precision": self._pool_precision, "stage_kind": self.kind}
        if self.kind == "impr":
            out["memory_pos_precision"] = mem_hits / mem_total if mem_total else float("nan")
            out["memory_positives_per_step"] = mem_total / max(ctx.steps_in_epoch, 1)
        if self.cfg.precision_log_every:
            out["precision_trace"] = self._precision_trace()
        for name in _COUNTERS:
            getattr(self, name).zero_()
        return out


__all__ = ["InsCLR", "InsCLRConfig", "MODEL_DEFAULTS", "POOL_FILE"]
