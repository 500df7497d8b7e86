"""``mom``: Mining on Manifolds (Iscen et al., CVPR 2018; thesis §2.4), the baseline of the InsCLR and Spreading
papers.

Every ``mom_mine_every`` epochs the training set is embedded (test transform, eval mode) and mined
(:func:`ssml_lib.mining.mom_pools`): the anchors are the modes of the mutual kNN graph ranked by the random
walk's stationary probability; for each anchor, P+ = its k manifold (diffusion) neighbours that are not
among its k Euclidean neighbours, P- = Euclidean neighbours that are not manifold neighbours (Eqs. 2.8-2.9).
Each anchor gives ``mom_triplets_per_anchor`` triplets with a positive and a negative drawn uniformly from its
pools (seeded by (seed, epoch)); anchors with an empty pool are skipped. Batches hold whole triplets laid out
``[a, p, n, a, p, n, ...]`` through the train transform; the loss is :func:`ssml_lib.losses.mom_triplet_loss`.

The triplets of the current epoch are method state (checkpointed), so a resumed run trains on the same ones.
Logged per epoch: ``pos_precision`` (triplet positives sharing the anchor's true class; labels are used for
this diagnostic only), ``neg_false_rate`` (negatives that do), pool sizes and the number of triplets.
The recipe (``train_defaults``, margin, k, anchors) is ours: the thesis gives no MOM settings.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Literal

import torch
from torch import nn

from ..config import Config
from ..engine import derive_seed
from ..errors import ConfigError
from ..losses import mom_triplet_loss
from ..mining import mom_pools, select_anchors, manifold_graph
from ..models import l2_normalize
from ._common import NormalizedEmbedMixin, labels_tensor
from .base import Method
from .views import Transformed


@dataclasses.dataclass(frozen=True)
class MOMConfig(Config):
    mom_k: int = 50  # size of NN^m_k and NN^e_k
    mom_graph_k: int = 50  # neighbours per node of the kNN graph
    mom_num_anchors: int = 1000  # at most this many graph modes
    mom_alpha: float = 0.99
    mom_power: float = 3.0
    mom_cg_iterations: int = 20
    mom_triplets_per_anchor: int = 10
    mom_margin: float = 0.1
    mom_squared: bool = True
    mom_mine_every: int = 1  # epochs between re-minings
    mom_features: Literal["embedding", "pooled"] = "embedding"

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (min(self.mom_k, self.mom_graph_k, self.mom_num_anchors, self.mom_cg_iterations,
                 self.mom_triplets_per_anchor, self.mom_mine_every) >= 1,
             "mom_k/graph_k/num_anchors/cg_iterations/triplets_per_anchor/mine_every", "use positive integers"),
            (0.0 < self.mom_alpha < 1.0 and self.mom_power > 0, "mom_alpha/mom_power", "use alpha in (0, 1), power > 0"),
            (self.mom_margin >= 0, "mom_margin", "use a margin >= 0"),
        ]
        for ok, key, fix in checks:
            if not ok:
                raise ConfigError(f"invalid MOM setting {key}. Fix: {fix}.")


def draw_from_pools(members: torch.Tensor, mask: torch.Tensor, draws: int, gen: torch.Generator) -> tuple[
        torch.Tensor, torch.Tensor]:
    """``draws`` uniform picks (with replacement) per row among ``members[mask]``: (R, draws) indices and a
    (R,) flag of rows with a non-empty pool. Uniform keys restricted to the mask, argmax: no Python loop."""
    keys = torch.rand(members.shape[0], draws, members.shape[1], generator=gen)
    keys = torch.where(mask.cpu()[:, None, :], keys, torch.full_like(keys, -1.0))
    pick = keys.argmax(-1)
    return members.cpu().gather(1, pick), mask.any(1).cpu()


class MOM(NormalizedEmbedMixin, Method):
    name: ClassVar[str] = "mom"
    Config: ClassVar[type] = MOMConfig
    train_defaults: ClassVar[dict] = dict(optimizer="adam", lr=1e-4, weight_decay=1e-4, epochs=30, batch_size=96,
                                          schedule="constant")

    def __init__(self, model: nn.Module, cfg: MOMConfig, *, train_transform: Callable, test_transform: Callable):
        super().__init__()
        self.model, self.cfg = model, cfg
        self.train_transform, self.test_transform = train_transform, test_transform
        self.normalize = not getattr(model, "normalize_output", False)
        self.triplets = torch.zeros(0, 3, dtype=torch.int64)  # (T, 3) of this epoch; in get_extra_state
        self._stats: dict[str, float] = {}

    def get_extra_state(self) -> dict:  # the mining statistics too: a mid-epoch resume logs the same line
        return {"triplets": self.triplets.cpu(), "stats": dict(self._stats)}

    def set_extra_state(self, state: dict) -> None:
        self.triplets = torch.as_tensor(state["triplets"], dtype=torch.int64)
        self._stats = dict(state.get("stats", {}))

    @classmethod
    def validate(cls, cfg: MOMConfig, train_cfg, train_set: Any) -> None:
        """Neighbourhoods and triplet batches against the training set (before anything is written)."""
        n = len(train_set)
        if max(cfg.mom_k, cfg.mom_graph_k) >= n:
            raise ConfigError(f"mom_k={cfg.mom_k} and mom_graph_k={cfg.mom_graph_k} must be below the {n} training "
                              f"images. Fix: -p mom_k {n - 1} -p mom_graph_k {n - 1} (or less).")
        if train_cfg.batch_size % 3:
            raise ConfigError(f"MOM batches are whole triplets, but batch_size={train_cfg.batch_size} is not divisible "
                              f"by 3. Fix: e.g. -p batch_size {3 * max(1, train_cfg.batch_size // 3)}.")

    def on_fit_start(self, ctx) -> None:
        n, cfg = len(ctx.train_set), self.cfg
        if max(cfg.mom_k, cfg.mom_graph_k) >= n:
            raise ConfigError(f"mom_k={cfg.mom_k} and mom_graph_k={cfg.mom_graph_k} must be below the {n} training "
                              "images. Fix: lower them.")
        if (ctx.cfg.batch_size // ctx.world_size) % 3:
            raise ConfigError(f"MOM batches are whole triplets, but the per-rank batch is "
                              f"{ctx.cfg.batch_size // ctx.world_size}. Fix: use a batch_size divisible by 3 x ranks.")
        self._labels = labels_tensor(ctx.train_set)
        self._data = Transformed(ctx.train_set, self.train_transform)

    def on_epoch_start(self, epoch: int, ctx) -> None:
        if epoch % self.cfg.mom_mine_every and self.triplets.numel():
            return
        cfg = self.cfg
        with self.embedding_output("f" if cfg.mom_features == "embedding" else "features"):
            feats = l2_normalize(ctx.embed(ctx.datasets["noaug"]))
        graph = manifold_graph(feats, cfg.mom_graph_k, power=cfg.mom_power)
        anchors, ok = select_anchors(graph, cfg.mom_num_anchors)
        anchors = anchors[ok]
        pools = mom_pools(feats, anchors, cfg.mom_k, graph_k=cfg.mom_graph_k, power=cfg.mom_power,
                          alpha=cfg.mom_alpha, iterations=cfg.mom_cg_iterations)
        gen = torch.Generator().manual_seed(derive_seed(ctx.seed, epoch))
        t = cfg.mom_triplets_per_anchor
        pos, has_pos = draw_from_pools(pools.positives, pools.positive_mask, t, gen)
        neg, has_neg = draw_from_pools(pools.negatives, pools.negative_mask, t, gen)
        keep = has_pos & has_neg
        a = anchors.cpu()[keep][:, None].expand(-1, t)
        self.triplets = torch.stack([a, pos[keep], neg[keep]], -1).reshape(-1, 3)
        if self.triplets.shape[0] == 0:
            raise ConfigError("MOM found no anchor with both a hard positive and a hard negative. Fix: raise "
                              "mom_num_anchors or mom_k, or lower mom_graph_k.")
        y = self._labels
        self._stats = {"num_anchors": int(anchors.numel()), "num_triplets": int(self.triplets.shape[0]),
                       "pos_pool_size": float(pools.positive_mask.sum(1).float().mean()),
                       "neg_pool_size": float(pools.negative_mask.sum(1).float().mean()),
                       "pool_pos_precision": float((y[pools.positives.cpu()] == y[anchors.cpu(), None])[
                           pools.positive_mask.cpu()].double().mean())}

    def train_dataset(self, ctx) -> Transformed:
        return self._data

    def epoch_batches(self, epoch: int, ctx) -> torch.Tensor:
        """Shuffled triplets (cycled when fewer than one batch), flattened to rows ``[a, p, n, a, p, n, ...]``."""
        per_batch = ctx.cfg.batch_size // 3
        order = torch.randperm(self.triplets.shape[0], generator=torch.Generator().manual_seed(
            derive_seed(ctx.seed, epoch)))
        n_batches = max(1, self.triplets.shape[0] // per_batch)
        order = order.repeat(-(-n_batches * per_batch // order.numel()))[: n_batches * per_batch]
        return self.triplets[order].reshape(n_batches, per_batch * 3)

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        images, _labels, _idx = batch  # labels unused: self-supervised
        emb = self(images)
        rows = torch.arange(0, emb.shape[0], 3, device=emb.device)
        loss = mom_triplet_loss(emb, rows, rows + 1, rows + 2, self.cfg.mom_margin, squared=self.cfg.mom_squared)
        return {"loss": loss}

    def on_epoch_end(self, epoch: int, ctx) -> dict[str, Any]:
        y = self._labels
        a, p, n = self.triplets.unbind(1)
        return {"pos_precision": float((y[p] == y[a]).double().mean()),
                "neg_false_rate": float((y[n] == y[a]).double().mean()), **self._stats}


__all__ = ["MOM", "MOMConfig", "draw_from_pools"]
