"""``isl``: Instance Similarity Learning (Wang et al., ICCV 2021; docs/methods.md).

Rounds as stages: ``round{r}_backbone`` then ``round{r}_gan`` for r < rounds - 1, then the last backbone round.

* backbone stage: full-softmax affinity loss over a momentum memory bank (N x D, uniform init, M[i] <-
  normalise(mu M[i] + (1 - mu) x_i), mu = 0.5) with the "hard-positive" KL term (lambda 0.5, T 0.1); A(i) are
  the mined affinity sets (empty in round 0: pure instance discrimination). At the start of round r >= 1 the
  previous round's GAN mines: for each image, a triplet (a = its current augmented feature, p = its own bank
  entry, n = hardest of ``isl_num_candidates`` random bank entries outside A(i)), proxy p' = G(a, p, n),
  confidence s = sigmoid(D(a, p', n)) (``isl_sampling_times`` > 1: that many triplets, the most confident proxy
  kept; ``isl_similarity: euclidean``: the anchor's own feature instead of a proxy, s = 1); anchors with
  s > gate add the bank entries among the proxy's top-k with cosine > R + (1 - s)(1 - R) to A(i), symmetrically;
  mining epochs repeat until links / N exceeds (round + 1) x 0.5 (or 200 epochs), the official stop rule.
* gan stage: backbone frozen (eval mode, no gradient); one D step and one G step per batch (BCE on logits),
  Adam lr 1e-4. Both objectives go into one backward: G's loss sees D through detached weights, so each
  network gets only its own gradient (the official code steps D first and then G against the updated D).
  The stage runs up to ``isl_gan_epochs`` (official 200) and ends early by the official ``stop_train_GAN``
  rule on the per-epoch mean G-loss (``isl_gan_early_stop``; the engine's ``stop_training`` hook).

The memory bank, affinity sets and GAN carry from stage to stage (read from the previous stage's checkpoint).
Logged per epoch: ``pos_precision`` = fraction of links in A(i) whose endpoints share the true class.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import torch
from torch import nn
from torch.func import functional_call

from ..config import Config
from ..engine import derive_seed, load_checkpoint
from ..engine.distributed import all_reduce_sum
from ..errors import ConfigError
from ..losses import isl_affinity_loss
from ..mining import (AffinitySets, FeatureMemory, ProxyDiscriminator, ProxyGenerator, discriminator_objective,
                      enlarge_positive_sets, gan_should_stop, generator_objective, mining_queries,
                      mining_should_stop, sample_triplets)
from ..mining.isl_proxy import SIMILARITIES
from ._common import NormalizedEmbedMixin, labels_tensor
from .base import Method
from .views import Transformed

_CARRIED = ("memory.", "affinity.", "generator.", "discriminator.")  # state passed between stages


@dataclasses.dataclass(frozen=True)
class ISLConfig(Config):
    isl_rounds: int = 4
    isl_temperature: float = 0.1  # CIFAR; ImageNet 0.07
    isl_memory_momentum: float = 0.5
    hard_positive_weight: float = 0.5
    isl_gan_epochs: int = 200  # official: up to 200, ended earlier by stop_train_GAN (isl_gan_early_stop)
    isl_gan_early_stop: bool = True  # official; False: always isl_gan_epochs (the rule is still logged)
    isl_gan_lr: float = 1e-4
    isl_gate: float = 0.5  # tau_s (CIFAR); ImageNet 0.3
    isl_radius: float = 0.6  # R (CIFAR); ImageNet 0.3
    isl_top_k: int = 10
    isl_per_round: float = 0.5
    isl_mining_max_epochs: int = 200
    isl_num_candidates: int = 4096
    isl_affinity_capacity: int = 64
    isl_similarity: str = "geodesic"  # the miner's queries: GAN proxies (ISL) or "euclidean" (the anchors themselves)
    isl_sampling_times: int = 1  # triplets drawn per anchor when mining, the most confident proxy kept (official 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (self.isl_rounds >= 1 and self.isl_gan_epochs >= 1 and self.isl_mining_max_epochs >= 1,
             "isl_rounds/isl_gan_epochs/isl_mining_max_epochs", "use positive integers"),
            (self.isl_temperature > 0 and self.isl_gan_lr > 0, "isl_temperature/isl_gan_lr", "use > 0"),
            (0.0 <= self.isl_memory_momentum <= 1.0, "isl_memory_momentum", "use a value in [0, 1]"),
            (self.hard_positive_weight >= 0 and self.isl_per_round > 0, "hard_positive_weight/isl_per_round",
             "use >= 0 and > 0"),
            (0.0 <= self.isl_gate < 1.0 and -1.0 <= self.isl_radius <= 1.0, "isl_gate/isl_radius",
             "use a gate in [0, 1) and a cosine radius in [-1, 1]"),
            (self.isl_top_k >= 1 and self.isl_num_candidates >= 1 and self.isl_affinity_capacity >= 1
             and self.isl_sampling_times >= 1, "isl_top_k/isl_num_candidates/isl_affinity_capacity/"
             "isl_sampling_times", "use positive integers"),
            (self.isl_similarity in SIMILARITIES, "isl_similarity", f"use one of {', '.join(SIMILARITIES)}"),
        ]
        for ok, key, fix in checks:
            if not ok:
                raise ConfigError(f"invalid ISL setting {key}. Fix: {fix}.")


def isl_plan(cfg: ISLConfig) -> list[tuple[str, int]]:
    """(kind, round) of every stage: backbone, gan, backbone, gan, ..., backbone."""
    plan = []
    for r in range(cfg.isl_rounds):
        plan.append(("backbone", r))
        if r < cfg.isl_rounds - 1:
            plan.append(("gan", r))
    return plan


class ISL(NormalizedEmbedMixin, Method):
    name: ClassVar[str] = "isl"
    Config: ClassVar[type] = ISLConfig
    train_defaults: ClassVar[dict] = dict(optimizer="sgd", lr=0.03, momentum=0.9, weight_decay=5e-4, epochs=200,
                                          batch_size=128, schedule="constant")

    def __init__(self, model: nn.Module, cfg: ISLConfig, *, train_transform: Callable, test_transform: Callable):
        super().__init__()
        dim = getattr(model, "embedding_dim", None)
        if not isinstance(dim, int):
            raise ConfigError("ISL needs a model with an integer .embedding_dim (ssml_lib.models.build_model). "
                              "Fix: build the model with build_model(..., embedding_size=128).")
        self.model, self.cfg, self._dim = model, cfg, dim
        self.train_transform, self.test_transform = train_transform, test_transform
        self.normalize = not getattr(model, "normalize_output", False)
        self.generator, self.discriminator = ProxyGenerator(dim), ProxyDiscriminator(dim)
        self.register_buffer("gan_history", torch.full((cfg.isl_gan_epochs,), float("nan")))  # G-loss per epoch
        self.register_buffer("gan_sums", torch.zeros(3))  # G loss, D loss, steps of the current epoch

    @classmethod
    def stages(cls, cfg: ISLConfig) -> list:
        from .schedule import Stage

        return [Stage(f"round{r}_{kind}", train=({} if kind == "backbone" else dict(
            optimizer="adam", epochs=cfg.isl_gan_epochs, schedule="constant", warmup=0)))
            for kind, r in isl_plan(cfg)]

    @property
    def kind_round(self) -> tuple[str, int]:
        info = getattr(self, "stage_info", None)
        return isl_plan(self.cfg)[info.index if info is not None else 0]

    def param_groups(self, cfg) -> list[dict]:
        if self.kind_round[0] == "gan":
            gan = [*self.generator.named_parameters(prefix="generator"),
                   *self.discriminator.named_parameters(prefix="discriminator")]
            return [{"name": "gan", "params": gan, "lr": self.cfg.isl_gan_lr, "weight_decay": 0.0}]
        return [{"name": "model", "params": [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]}]

    # ------------------------------------------------------------------ stage start: state and mining

    def on_fit_start(self, ctx) -> None:
        n, kind = len(ctx.train_set), self.kind_round[0]
        self._ctx, self._labels = ctx, labels_tensor(ctx.train_set, ctx.device)
        # a private seeded generator: the same initial bank on every DDP rank (global RNGs are seeded seed + rank)
        init = torch.Generator().manual_seed(derive_seed(ctx.seed, self._dim))
        self.memory = FeatureMemory(n, self._dim, device=ctx.device, init="uniform", generator=init)
        self.affinity = AffinitySets(n, self.cfg.isl_affinity_capacity, device=ctx.device)
        info = getattr(self, "stage_info", None)
        if info is not None and info.previous_dirs:  # bank, sets and GAN of the previous stage
            state = load_checkpoint(info.previous_dirs[-1] / "last.pt")["method"]
            carried = {k: v for k, v in state.items() if k.startswith(_CARRIED)}
            missing = self.load_state_dict(carried, strict=False).missing_keys
            if any(k.startswith(_CARRIED) for k in missing):
                raise ConfigError(f"{info.previous_dirs[-1]} lacks ISL state {missing[:3]}. Fix: rerun the schedule "
                                  "in a fresh out_dir.")
        gan = kind == "gan"
        self.ddp_find_unused_parameters = gan  # the frozen backbone gets no gradient in GAN stages
        for p in [*self.generator.parameters(), *self.discriminator.parameters()]:
            p.requires_grad_(gan)
        self._data = Transformed(ctx.train_set, self.train_transform)
        self._mining: dict[str, Any] = {}  # this epoch's mining statistics (extra state: survives a resume)
        self._pending = None

    def get_extra_state(self) -> dict:
        return {"mining": dict(getattr(self, "_mining", {}))}

    def set_extra_state(self, state: dict) -> None:
        self._mining = dict(state.get("mining", {}))

    def on_epoch_start(self, epoch: int, ctx) -> None:
        kind, r = self.kind_round
        if kind == "backbone" and r > 0 and epoch == 0:
            self._mine(ctx, r - 1)

    @torch.no_grad()
    def _mine(self, ctx, round_index: int) -> None:
        """Official ``mine_affinity`` epochs with the previous round's GAN, until its stop rule holds."""
        cfg, n = self.cfg, len(ctx.train_set)
        step, before = ctx.cfg.batch_size, int(self.affinity.num_links())
        passed = epochs = 0
        for epochs in range(1, cfg.isl_mining_max_epochs + 1):
            feats = ctx.embed(self._data)  # augmented views, backbone in eval mode
            gen = torch.Generator(device=ctx.device).manual_seed(derive_seed(ctx.seed, round_index, epochs))
            for start in range(0, n, step):  # batches of anchors; every op inside is vectorised
                idx = torch.arange(start, min(n, start + step), device=ctx.device)
                q = mining_queries(self.generator, self.discriminator, feats[idx], idx, self.memory, self.affinity,
                                   similarity=cfg.isl_similarity, sampling_times=cfg.isl_sampling_times,
                                   num_candidates=min(cfg.isl_num_candidates, n), rng=gen)
                out = enlarge_positive_sets(idx, q.vectors, q.confidence, self.memory, self.affinity,
                                            gate=cfg.isl_gate, radius=cfg.isl_radius, top_k=min(cfg.isl_top_k, n - 1))
                passed += int(out.passed.sum())
            if mining_should_stop(int(self.affinity.num_links()), n, round_index, epochs,
                                  per_round=cfg.isl_per_round, max_epochs=cfg.isl_mining_max_epochs):
                break
        self._mining = {"mining_epochs": epochs, "mining_new_links": int(self.affinity.num_links()) - before,
                        "mining_pass_rate": passed / (epochs * n)}

    def train_dataset(self, ctx) -> Transformed:
        return self._data

    # ------------------------------------------------------------------ steps

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        images, _labels, idx = batch  # labels unused: self-supervised
        if self.kind_round[0] == "gan":
            return self._gan_step(images, idx)
        emb = self(images)
        loss = isl_affinity_loss(emb, self.memory.features, idx, self.affinity.table[idx],
                                 temperature=self.cfg.isl_temperature,
                                 hard_positive_weight=self.cfg.hard_positive_weight)
        self._pending = (idx, emb.detach())  # the bank changes after backward, which still needs it
        return {"loss": loss}

    def on_after_step(self, step: int, ctx) -> None:
        if self._pending is not None:
            self.memory.momentum_update(*self._pending, self.cfg.isl_memory_momentum)
            self._pending = None

    def _gan_step(self, images: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            was = self.model.training
            self.model.eval()  # official: frozen backbone in eval mode
            anchor = self(images).float()
            self.model.train(was)
        t = sample_triplets(anchor, idx, self.memory, self.affinity,
                            num_candidates=min(self.cfg.isl_num_candidates, self.memory.num_items))
        fake = self.generator(t.anchor, t.positive, t.negative)
        d_loss = discriminator_objective(self.discriminator, t.anchor, t.positive, t.negative, fake)
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        frozen_d = lambda a, p, n: functional_call(self.discriminator, frozen, (a, p, n))  # noqa: E731
        g_loss = generator_objective(frozen_d, t.anchor, t.positive, t.negative, fake)
        self.gan_sums += torch.stack([g_loss.detach(), d_loss.detach(), torch.ones_like(g_loss)]).float()
        return {"loss": d_loss + g_loss, "loss_g": g_loss.detach(), "loss_d": d_loss.detach()}

    def on_epoch_end(self, epoch: int, ctx) -> dict[str, Any]:
        table = self.affinity.table
        valid = table >= 0
        same = (self._labels[table.clamp(min=0)] == self._labels[:, None]) & valid
        links = int(valid.sum())
        out = {"pos_precision": int(same.sum()) / links if links else float("nan"),
               "links_per_item": links / table.shape[0], "affinity_overflow": int(self.affinity.overflow),
               **self._mining}
        self._mining = {}
        kind, r = self.kind_round
        if kind == "gan":
            g, _, steps = all_reduce_sum(self.gan_sums.clone()).tolist()  # every rank: the same history
            if epoch < self.gan_history.numel():
                self.gan_history[epoch] = g / max(steps, 1.0)
            history = [v for v in self.gan_history[: epoch + 1].tolist()]
            met = gan_should_stop(history, r, max_epochs=self.cfg.isl_gan_epochs)
            out["gan_stop_rule_met"] = met
            if met and self.cfg.isl_gan_early_stop:
                out["stop_training"] = True  # fit ends the stage after this epoch (checkpointed, complete)
            self.gan_sums.zero_()
        return out


__all__ = ["ISL", "ISLConfig", "isl_plan"]
