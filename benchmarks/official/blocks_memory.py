"""InsCLR memory v2 mining per step: the official ``XBMv2.get`` against ``QueryExpansionMemory.mine`` (and the
miner before the speed-up), on one synthetic bank both sides share.

The bank: items in clusters of 32 (a landmark's images), each item its cluster centre plus noise of its own
scale, so that same-cluster similarities spread over the positive (>= 0.75), candidate (0.5-0.75) and lower
zones. Each pool row lists the cluster mates with their exact similarities, then items of other clusters with
similarities below the negative threshold, sorted. The batch is 64 tuples of an anchor and its first 3 pool
neighbours (as the official sampler builds them), about a tenth of the neighbours rejected by in-batch
selection (negative labels). Settings: the GLDv2 impr config (b+i_tr4_avg0.60_k05, 0.75 / 0.5, negatives on,
100,000 rows per draw).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ssml_lib.mining import QueryExpansionMemory

from .checkouts import describe
from .common import Context, compare, row
from .loading import load_module
from .previous import old_mine

CLUSTER = 32


def synthetic_bank(n: int, d: int, pool: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(features (n, d) unit rows, pool indices (n, pool) int64, pool similarities (n, pool) float32)."""
    if n % CLUSTER:
        raise ValueError(f"n={n} must be a multiple of the cluster size {CLUSTER}")
    g = torch.Generator().manual_seed(seed)
    n_clusters = n // CLUSTER
    centres = torch.nn.functional.normalize(torch.randn(n_clusters, d, generator=g), dim=1)
    scale = 0.3 + 0.7 * torch.rand(n, 1, generator=g)
    feats = torch.empty(n, d)
    for s in range(0, n, 65536):  # in chunks: the noise of the whole bank at once would double its memory
        e = min(n, s + 65536)
        noise = torch.randn(e - s, d, generator=g) * scale[s:e] / d**0.5
        feats[s:e] = torch.nn.functional.normalize(centres[torch.arange(s, e) // CLUSTER] + noise, dim=1)
    grouped = feats[: n_clusters * CLUSTER].view(n_clusters, CLUSTER, d)
    mate_sims = torch.bmm(grouped, grouped.transpose(1, 2)).view(-1, CLUSTER)      # (n, 32), self included
    rows = torch.arange(n_clusters * CLUSTER)
    mates = (rows // CLUSTER * CLUSTER)[:, None] + torch.arange(CLUSTER)
    not_self = mates != rows[:, None]
    mates, mate_sims = mates[not_self].view(-1, CLUSTER - 1), mate_sims[not_self].view(-1, CLUSTER - 1)
    others = pool - (CLUSTER - 1)  # one item from each of the next clusters: all distinct
    other_cluster = (rows[:, None] // CLUSTER + 1 + torch.arange(others)) % n_clusters
    other = other_cluster * CLUSTER + torch.randint(CLUSTER, (len(rows), others), generator=g)
    other_sims = 0.05 + 0.4 * torch.rand(len(rows), others, generator=g)
    idx, sims = torch.cat([mates, other], 1), torch.cat([mate_sims, other_sims], 1)
    sims, order = sims.sort(dim=1, descending=True, stable=True)
    return feats, idx.gather(1, order).numpy(), sims.numpy().astype(np.float32)


def synthetic_batch(pool_idx: np.ndarray, groups: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, labels) of ``groups`` tuples (anchor + its first 3 pool neighbours); rejected neighbours < 0."""
    g = torch.Generator().manual_seed(seed)
    anchors = torch.randperm(pool_idx.shape[0], generator=g)[:groups]
    idx = torch.cat([anchors[:, None], torch.from_numpy(pool_idx[anchors.numpy(), :3])], 1).reshape(-1)
    labels = (torch.arange(groups)[:, None] + 1).expand(groups, 4).clone()
    rejected = torch.rand(groups, 4, generator=g) < 0.1
    rejected[:, 0] = False
    labels[rejected] *= -1
    return idx, labels.reshape(-1)


def memory_v2(ctx: Context) -> dict:
    folder = ctx.checkouts["insclr"]
    n, d, pool, groups, draw = (2_048, 32, 50, 8, 1_000) if ctx.tiny else (240_000, 2_048, 500, 64, 100_000)
    feats, pool_idx, pool_sims = synthetic_bank(n, d, pool)
    idx, labels = synthetic_batch(pool_idx, groups)
    module = load_module(folder / "benchmark/models/xbmv2.py", "_official_insclr_xbmv2")
    with tempfile.TemporaryDirectory() as tmp:  # the official constructor reads the pool from its file
        path = Path(tmp) / "pool_neighbor.npz"
        np.savez(path, neighbor=pool_idx, similarity=pool_sims)
        cfg = SimpleNamespace(
            XBM=SimpleNamespace(POSITIVE_THRESH=0.75, NEGATIVE_THRESH=0.5, CANDIDATE_MODE="b+i_tr4_avg0.60_k05",
                                SIZE=n, FEATURE_DIM=d, USE_NEGATIVE=True),
            NEIGHBOR=SimpleNamespace(SRC=str(path)))
        official = module.XBMv2(cfg)
    # The state after the official full pass over the data (init): every row written. Both banks share one
    # tensor, here and on the ssml side (what the rows hold does not change the work).
    official.features = official.noaug_features = feats
    official.update_counter.fill_(1)
    mem = QueryExpansionMemory(n, d, device=ctx.device)
    bank = feats.to(ctx.device)
    mem.aug.features = mem.noaug.features = bank
    mem.aug.written.fill_(True)
    mem.noaug.written.fill_(True)
    pool_t, sims_t = torch.from_numpy(pool_idx).to(ctx.device), torch.from_numpy(pool_sims).to(ctx.device)
    idx_d, labels_d = idx.to(ctx.device), labels.to(ctx.device)
    settings = dict(num_neighbors=3, positive_threshold=0.75, negative_threshold=0.5, rounds=4, min_similarity=0.6,
                    aggregate="avg", top_k=5, num_negatives=draw, sets="official")

    def ours(before: bool = False):
        gen = torch.Generator(device=ctx.device).manual_seed(0)
        args = (idx_d, labels_d, bank[idx_d], pool_t, sims_t)  # the batch's no-aug rows, as the official reads
        if before:
            return old_mine(mem, *args, generator=gen, **settings)
        return mem.mine(*args, generator=gen, **settings)

    agree, text = _agreement(official, ours(), draw, idx, labels, pool_idx, n)
    stats, _ = compare({"ours": ours, "official": lambda: official.get(draw, idx, labels),
                        "before": lambda: ours(before=True)}, ctx)
    return row("insclr_memory_v2_mining", stats=stats, agree=agree, agreement=text,
               sizes={"batch": f"{groups} x 4", "bank_rows": n, "dim": d, "pool": pool, "draw": draw},
               official="benchmark/models/xbmv2.py XBMv2.get (b+i_tr4_avg0.60_k05, 0.75 / 0.5, negatives on)",
               ours="ssml_lib.mining.QueryExpansionMemory.mine(sets='official')", loaded="imported module",
               shims=["bank state set directly (every row written), as after the official init pass"],
               checkout=describe("insclr", folder),
               note="synthetic bank: clusters of 32 items, pool = cluster mates then other clusters")


def _agreement(official, draw, size, idx, labels, pool_idx, n) -> tuple[bool, str]:
    """Positives (image, label) identical; pool negatives identical; the same number of rows drawn."""
    saved = official.features
    official.features = torch.arange(n, dtype=torch.float32)[:, None]  # rows that name their own index
    np.random.seed(0)
    try:
        rows, off_labels, _ = official.get(size, idx, labels)
    finally:
        official.features = saved
    off_idx, dummy = rows[:, 0].long(), n + 1
    keep = draw.valid.cpu()
    our_idx, our_labels = draw.indices.cpu()[keep], draw.labels.cpu()[keep]
    pos = lambda i, lab: sorted(zip(i[lab != dummy].tolist(), lab[lab != dummy].tolist()))  # noqa: E731
    members = idx[labels > 0].numpy()
    beyond = set(np.concatenate([pool_idx[i, int(official.negative_boundary[i]):] for i in members]).tolist())
    pool_neg = lambda i, lab: sorted(set(i[lab == dummy].tolist()) & beyond)  # noqa: E731
    same_pos = pos(our_idx, our_labels) == pos(off_idx, off_labels)
    same_neg = pool_neg(our_idx, our_labels) == pool_neg(off_idx, off_labels)
    counts = (int((our_labels == dummy).sum()), int((off_labels == dummy).sum()))
    ok = same_pos and same_neg and counts[0] == counts[1] and len(set(our_idx.tolist())) == len(our_idx)
    return ok, (f"{len(pos(off_idx, off_labels))} positives (image, label) {'identical' if same_pos else 'DIFFER'}; "
                f"{len(pool_neg(off_idx, off_labels))} pool negatives {'identical' if same_neg else 'DIFFER'}; "
                f"negatives drawn {counts[0]} (ssml) vs {counts[1]} (official; the random ones differ by RNG)")


__all__ = ["memory_v2", "synthetic_bank", "synthetic_batch"]
