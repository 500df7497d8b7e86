"""The ISL paper's Figure 3 (Wang et al., ICCV 2021, Sec. 4.2.1): the precision of the mined positive sets, the
fraction of each anchor's positives from the anchor's class averaged over all anchors, per epoch of training, for
two set sizes, with positives chosen by geodesic similarity (ISL's GAN proxies) or by Euclidean distance.

ISL is trained on CIFAR-10 (:mod:`.paper_isl_figs`); after every backbone epoch each training image is an
anchor, its current augmented feature a the query it mines with (as ISL's miner), and for each set size K:

* ``euclidean``: the K bank entries nearest to a (the conventional neighbourhood discovery: "the closest samples");
* ``geodesic``: the K bank entries nearest to the proxy the previous round's GAN generates for the anchor
  (:func:`ssml_lib.mining.mining_queries`, ``isl_similarity: geodesic``, with ``isl_sampling_times`` draws).
  Round 0 has no trained GAN, so its epochs have no geodesic value.

Labels are read for scoring only. Our reading of the figure: the set of size K is the proxy's (or anchor's) K
nearest entries, self excluded; the paper's two sizes are lost in our copy of its text, so ours are a setting.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from ..engine import derive_seed
from ..mining import mining_queries
from .paper_isl_figs import COMMON_PARAMS, FigureRun, figure_table

TABLE = "paper_isl_fig3_mining_precision"
KINDS = ("geodesic", "euclidean")
# Stand-in: three rounds (two of them with a trained GAN); sizes our choice (the paper's are lost), below the
# tiny stand-in's 12 images a class so a set can be all of one class.
FIG3 = figure_table(TABLE, {"set_sizes": [3, 10]}, {"isl_rounds": 3})
NOTEBOOK_PARAMS = ("set_sizes", "network", *COMMON_PARAMS)


@torch.no_grad()
def same_class_counts(queries: torch.Tensor, bank: torch.Tensor, anchors: torch.Tensor, labels: torch.Tensor,
                      sizes: Sequence[int]) -> torch.Tensor:
    """(len(sizes),) number of each query's ``k`` nearest bank entries (cosine, its anchor excluded) that share
    the anchor's label, summed over the queries, for every k of ``sizes`` (one top-k for all)."""
    sims = queries.float() @ bank.float().T
    sims[torch.arange(anchors.numel(), device=sims.device), anchors] = float("-inf")
    top = sims.topk(max(sizes), dim=1).indices
    same = labels[top] == labels[anchors][:, None]
    return torch.stack([same[:, :k].sum() for k in sizes])


def precision_eval(sizes: Sequence[int]):
    """The ``epoch_eval``: ``{'<kind>@<k>': precision}`` of all training images as anchors, in anchor batches."""
    sizes = [int(k) for k in sizes]

    @torch.no_grad()
    def epoch_eval(method, ctx) -> dict[str, float]:
        cfg, (_, r) = method.cfg, method.kind_round
        feats, labels = ctx.embed(method._data).float(), method._labels
        n, bank = feats.shape[0], method.memory.features
        counts = {kind: torch.zeros(len(sizes), device=feats.device) for kind in KINDS}
        gen = torch.Generator(device=feats.device).manual_seed(derive_seed(ctx.seed, r, 0))  # not the training RNG
        for start in range(0, n, ctx.cfg.batch_size):
            idx = torch.arange(start, min(n, start + ctx.cfg.batch_size), device=feats.device)
            counts["euclidean"] += same_class_counts(feats[idx], bank, idx, labels, sizes)
            if r >= 1:  # the previous round's GAN
                q = mining_queries(method.generator, method.discriminator, feats[idx], idx, method.memory,
                                   method.affinity, sampling_times=cfg.isl_sampling_times,
                                   num_candidates=min(cfg.isl_num_candidates, n), rng=gen)
                counts["geodesic"] += same_class_counts(q.vectors, bank, idx, labels, sizes)
        out = {}
        for kind in KINDS:
            values = (counts[kind] / (n * torch.tensor(sizes, device=feats.device))).tolist()
            out.update({f"{kind}@{k}": (v if kind == "euclidean" or r >= 1 else math.nan)
                        for k, v in zip(sizes, values)})
        return out

    return epoch_eval


def precision_curves(history: Sequence[Mapping[str, Any]], sizes: Sequence[int]) -> pd.DataFrame:
    """Tidy rows (epoch, set_size, similarity, precision) of the logged measurements."""
    return pd.DataFrame([{"epoch": rec["epoch"], "set_size": int(k), "similarity": kind,
                          "precision": float(rec["extra"][f"{kind}@{k}"])}
                         for rec in history if rec.get("extra") for k in sizes for kind in KINDS])


def run_paper_isl_fig3_notebook(params: Mapping[str, Any]):
    """The notebook's one call: train ISL with the precision logged per epoch, then the figure."""
    from .paper_isl_fig3_report import report

    params = {k: params.get(k) for k in NOTEBOOK_PARAMS}
    run = FigureRun(FIG3, params)
    row = run.row()
    sizes = [int(k) for k in run.figure_setting("set_sizes")]
    done = run.train(row, precision_eval(sizes))
    curves = precision_curves(done["history"], sizes)
    print(f"ISL with the mining precision per epoch: {done['history'][-1]['epoch']} backbone epochs "
          f"({done['wall_s']:.0f} s)", flush=True)
    return report(run, done, curves, sizes, params)
