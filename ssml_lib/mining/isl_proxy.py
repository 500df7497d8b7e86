"""ISL: GAN proxy generator / discriminator, triplet sampling, and confidence-gated set enlargement.

Official ``models/GAN.py``, ``lib/LinearAverage.py`` (``sample_pos_neg``, ``add_affinity``),
``small_main.py`` (``mine_affinity``), ``lib/utils.py`` (stop rules). The discriminator here returns a
logit (BCE-with-logits is the stable form of the official sigmoid + BCE); confidence = sigmoid(logit).
The backbone is frozen while these run. The two GAN objectives live here because they train these proxy
modules only; the backbone's affinity loss belongs to ``ssml_lib.losses``.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SsmlError
from ._common import as_features, as_index, check_positive_int, fill_at_
from .affinity import AffinitySets
from .memory_bank import FeatureMemory


class ProxyGenerator(nn.Module):
    """p' = G(a, p, n): concat (3D) -> 2D -> D -> D with LeakyReLU(0.01), L2-normalised."""

    def __init__(self, dim: int = 128, negative_slope: float = 0.01):
        super().__init__()
        d = check_positive_int(dim, "dim")
        self.net = nn.Sequential(nn.Linear(3 * d, 2 * d), nn.LeakyReLU(negative_slope),
                                 nn.Linear(2 * d, d), nn.LeakyReLU(negative_slope), nn.Linear(d, d))

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(torch.cat([anchor, positive, negative], dim=1)), dim=1)


class ProxyDiscriminator(nn.Module):
    """Logit that (a, p, n) is a real triplet: concat (3D) -> D -> D/2 -> 1 with LeakyReLU(0.01)."""

    def __init__(self, dim: int = 128, negative_slope: float = 0.01):
        super().__init__()
        d = check_positive_int(dim, "dim", minimum=2)
        self.net = nn.Sequential(nn.Linear(3 * d, d), nn.LeakyReLU(negative_slope),
                                 nn.Linear(d, d // 2), nn.LeakyReLU(negative_slope), nn.Linear(d // 2, 1))

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([anchor, positive, negative], dim=1)).squeeze(1)


def discriminator_objective(disc: ProxyDiscriminator, a: torch.Tensor, p: torch.Tensor, n: torch.Tensor,
                            fake: torch.Tensor) -> torch.Tensor:
    """D step: ( BCE(D(a,p,n), 1) + 1/2 BCE(D(a,p,p'), 0) + 1/2 BCE(D(a,p',n), 0) ) / 2; p' detached."""
    fake = fake.detach()
    real, f1, f2 = disc(a, p, n), disc(a, p, fake), disc(a, fake, n)
    bce = F.binary_cross_entropy_with_logits
    return 0.5 * (bce(real, torch.ones_like(real)) + 0.5 * bce(f1, torch.zeros_like(f1))
                  + 0.5 * bce(f2, torch.zeros_like(f2)))


def generator_objective(disc: ProxyDiscriminator, a: torch.Tensor, p: torch.Tensor, n: torch.Tensor,
                        fake: torch.Tensor) -> torch.Tensor:
    """G step (D frozen by the caller): 1/2 BCE(D(a,p,p'), 1) + 1/2 BCE(D(a,p',n), 1)."""
    f1, f2 = disc(a, p, fake), disc(a, fake, n)
    bce = F.binary_cross_entropy_with_logits
    return 0.5 * bce(f1, torch.ones_like(f1)) + 0.5 * bce(f2, torch.ones_like(f2))


class Triplets(NamedTuple):
    anchor: torch.Tensor    # (B, D) detached current features
    positive: torch.Tensor  # (B, D) the anchor's own memory entry
    negative: torch.Tensor  # (B, D) hardest of the drawn candidates outside A(i)
    negative_index: torch.Tensor


@torch.no_grad()
def sample_triplets(features: Any, indices: Any, memory: FeatureMemory, affinity: AffinitySets, *,
                    num_candidates: int = 4096, generator: torch.Generator | None = None) -> Triplets:
    """Official ``sample_pos_neg`` without its per-sample redraw loop: candidates inside A(i) are masked
    out instead of redrawn (same distribution over the remaining ones). With issue #1's fix: each anchor
    is checked against its own set."""
    a = as_features(features).detach().float()
    idx = as_index(indices, "indices", ndim=1).to(a.device)
    n = memory.num_items
    num_candidates = check_positive_int(num_candidates, "num_candidates")
    gen_dev = generator.device if generator is not None else a.device
    cand = torch.randint(n, (idx.numel(), num_candidates), generator=generator, device=gen_dev).to(a.device)
    sims = torch.einsum("bd,bld->bl", a, memory.read(cand))
    sims = sims.masked_fill(affinity.contains(idx, cand), float("-inf"))
    neg = cand.gather(1, sims.argmax(1, keepdim=True)).squeeze(1)
    return Triplets(a, memory.read(idx), memory.read(neg), neg)


SIMILARITIES = ("geodesic", "euclidean")


class Queries(NamedTuple):
    vectors: torch.Tensor     # (B, D) what the bank is searched with for each anchor
    confidence: torch.Tensor  # (B,) the discriminator's confidence in it (1 for the anchor itself)


@torch.no_grad()
def mining_queries(generator: nn.Module, discriminator: nn.Module, features: Any, indices: Any,
                   memory: FeatureMemory, affinity: AffinitySets, *, similarity: str = "geodesic",
                   sampling_times: int = 1, num_candidates: int = 4096,
                   rng: torch.Generator | None = None) -> Queries:
    """What the miner searches the bank with, per anchor (``features`` are the anchors' current features).

    * ``geodesic`` (ISL, the default): the GAN's proxy p' = G(a, p, n) and its confidence s = sigmoid(D(a, p', n)).
      With ``sampling_times`` T > 1, T triplets are drawn per anchor and the proxy of highest confidence is kept
      (the paper's "optimal proxy", Sec. 3.2, read as the most confident one; the official code draws one).
    * ``euclidean`` (the conventional neighbourhood discovery the paper compares with): the anchor's own feature,
      confidence 1, so every anchor passes the gate and the radius is R itself. Features and bank entries are
      unit vectors, so the nearest by cosine are the nearest by Euclidean distance.
    """
    a = as_features(features).detach().float()
    if similarity not in SIMILARITIES:
        raise SsmlError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}.")
    if similarity == "euclidean":
        return Queries(a, torch.ones(a.shape[0], device=a.device))
    idx = as_index(indices, "indices", ndim=1).to(a.device)
    times, b = check_positive_int(sampling_times, "sampling_times"), a.shape[0]
    t = sample_triplets(a.repeat(times, 1), idx.repeat(times), memory, affinity, num_candidates=num_candidates,
                        generator=rng)
    proxy = generator(t.anchor, t.positive, t.negative)
    confidence = torch.sigmoid(discriminator(t.anchor, proxy, t.negative)).reshape(times, b)
    best = confidence.argmax(0)  # first of equals
    cols = torch.arange(b, device=a.device)
    return Queries(proxy.reshape(times, b, -1)[best, cols], confidence[best, cols])


class Enlargement(NamedTuple):
    passed: torch.Tensor      # (B,) bool: confidence > gate
    neighbours: torch.Tensor  # (B, top_k) bank indices nearest to the proxy (self excluded); -1 where not passed
    added: torch.Tensor       # (B, top_k) bool: pair proposed for A(i) (symmetrically)


@torch.no_grad()
def enlarge_positive_sets(indices: Any, proxies: Any, confidence: Any, memory: FeatureMemory,
                          affinity: AffinitySets, *, gate: float = 0.5, radius: float = 0.6,
                          top_k: int = 10) -> Enlargement:
    """Official ``mine_affinity``/``add_affinity``: anchors whose discriminator confidence s passes
    ``s > gate`` take the ``top_k`` bank entries nearest to their proxy p' (cosine, self excluded) and add
    those with similarity > r = radius + (1 - s)(1 - radius) to A(i), symmetrically. Defaults are the
    CIFAR settings (gate 0.5, R 0.6); ImageNet used 0.3 / 0.3."""
    p = as_features(proxies, "proxies").float()
    idx = as_index(indices, "indices", ndim=1).to(p.device)
    s = torch.as_tensor(confidence).to(p.device).float().reshape(-1)
    if s.numel() != idx.numel() or p.shape[0] != idx.numel():
        raise SsmlError(f"indices ({idx.numel()}), proxies ({p.shape[0]}) and confidence ({s.numel()}) must "
                        f"have one entry per anchor.")
    top_k = check_positive_int(top_k, "top_k")
    if top_k >= memory.num_items:
        raise SsmlError(f"top_k={top_k} needs at least {top_k + 1} bank entries, the bank has "
                        f"{memory.num_items}; lower top_k.")
    passed = s > gate
    r = radius + (1.0 - s) * (1.0 - radius)
    rows = passed.nonzero().squeeze(1) if p.device.type == "cpu" else None  # a CPU searches the passed only
    q, q_idx = (p, idx) if rows is None else (p[rows], idx[rows])
    sims = q @ memory.features.float().T
    fill_at_(sims, (torch.arange(q_idx.numel(), device=p.device), q_idx), float("-inf"))
    best = sims.topk(top_k, dim=1)
    neighbours = torch.full((idx.numel(), top_k), -1, dtype=torch.int64, device=p.device)
    values = torch.full((idx.numel(), top_k), float("-inf"), device=p.device)
    if rows is None:
        neighbours, values = torch.where(passed[:, None], best.indices, neighbours), best.values
    else:
        neighbours[rows], values[rows] = best.indices, best.values
    added = passed[:, None] & (values > r[:, None])
    affinity.add_pairs(idx[:, None].expand_as(neighbours), neighbours.clamp(min=0), added)
    return Enlargement(passed, neighbours, added)


def gan_should_stop(generator_losses: Sequence[float], round_index: int, *, max_epochs: int = 200,
                    min_epochs_round0: int = 10) -> bool:
    """The official ``stop_train_GAN`` on the per-epoch mean G-losses (host floats, between epochs).

    Checked in this order, the first that applies decides:

    * ``max_epochs`` epochs done: stop (the official GAN loop simply ends there);
    * round 0 with fewer than ``min_epochs_round0`` epochs: go on;
    * the lowest loss so far is above 1, or (round 0 only) the latest loss is above 1: go on;
    * the latest loss is the lowest of the last three epochs (ties included): go on;
    * stop only when the lowest value of the whole history appears nowhere among the last three
      epochs. A minimum that is equalled again late keeps the GAN training.

    The window of three epochs is fixed, as in the official code. Comparisons are exact float equality,
    and a NaN anywhere makes the minimum NaN the way ``numpy.min`` does (so NaN losses end the stage
    once past the round-0 guards). Without NaN, fewer than four epochs never stop before the cap.
    """
    losses = [float(v) for v in generator_losses]
    epochs = len(losses)
    if epochs >= max_epochs:
        return True
    if epochs == 0 or (round_index == 0 and epochs < min_epochs_round0):
        return False
    lowest, last, recent = _nan_min(losses), losses[-1], losses[-3:]
    if lowest > 1.0 or (round_index == 0 and last > 1.0):
        return False
    if _nan_min(recent) == last:
        return False
    return not any(v == lowest for v in recent)


def _nan_min(values: list[float]) -> float:
    """``min`` that returns NaN when any value is NaN, as ``numpy.min`` does."""
    return math.nan if any(math.isnan(v) for v in values) else min(values)


def mining_should_stop(num_links: int, num_items: int, round_index: int, epochs: int, *,
                       per_round: float = 0.5, max_epochs: int = 200) -> bool:
    """``stop_mining``: stop once links / N exceeds (round + 1) * per_round, or after ``max_epochs``."""
    return num_links / num_items > (round_index + 1) * per_round or epochs >= max_epochs
