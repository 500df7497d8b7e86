"""The Spreading paper's Figure 4: 4-NN retrievals of a few CUB test queries at different training epochs.

The model is the ``spreading`` row of the paper's Table 3 (``paper_spreading_table3_cub``: its parameters and
initial network, the ImageNet start with its new 128-d FC), trained here in its own run folder
(``runs/<standin|real>/paper_spreading_fig4_retrievals/``) with an ``eval_fn`` that, after every epoch, embeds
the test split and logs the nearest test images of the chosen queries; epoch 0 is the initial network. A finished
run is read back from its log. Queries and neighbours as the thesis's neighbours figure
(:func:`~.neighbours.query_neighbours`: ``n_queries`` test images drawn with the seed, cosine, itself excluded),
drawn by :func:`~.figures.plot_neighbours` (green frame: same class as the query, red: another class), one row
per shown epoch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from typing import Any, Mapping

import numpy as np

from ..config import Config, load_config, notebook_parameters, to_dict
from ..errors import ConfigError
from ..io import atomic_write_text
from ..paths import shown_path
from ..provenance import collect_provenance
from .figures import FigureResult, data_label, figures_dir, plot_neighbours, save_figure, thumbnail
from .mining_snapshots import pick_points, stage_logs
from .neighbours import query_neighbours

FIGURE = "paper_spreading_fig4_retrievals"
TABLE = "paper_spreading_table3_cub"
KEY = "retrievals"  # the log.jsonl field: query index -> its nearest test images


@dataclasses.dataclass(frozen=True)
class RetrievalsConfig(Config):
    n_queries: int = 2
    n_neighbours: int = 4
    n_points: int = 3  # epochs shown: evenly spaced over 0 .. the last epoch, both included

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.n_queries, self.n_neighbours, self.n_points) < 1:
            raise ConfigError("n_queries, n_neighbours and n_points must be >= 1. Fix: e.g. 2, 4, 3.")


def _retrieval_fn(test, cfg: RetrievalsConfig, run) -> Any:
    """embedder -> (queries, (n_queries, k) neighbour indices) on the test split, as the neighbours figure."""
    from ..eval import extract_embeddings

    def retrieve(embedder, device):
        embedder.eval()
        emb, _ = extract_embeddings(embedder, test, device=device, batch_size=run.eval.batch_size,
                                    scales=run.eval.scales, progress=False)
        return query_neighbours(emb, cfg.n_queries, cfg.n_neighbours, run.seed, run.eval.knn_backend)
    return retrieve


def retrieval_figure(method: str = "spreading", *, n_queries: int = 2, n_neighbours: int = 4, n_points: int = 3,
                     params_file: Any = None, progress: bool = True, **overrides: Any) -> FigureResult:
    """Train (or read back) Table 3's row with per-epoch retrievals, then one figure per query (rows: epochs)."""
    from ..data import build_transform, open_dataset
    from ..methods.pretrained import Pretrained, PretrainedConfig
    from ..methods.schedule import fit_method
    from ..paths import runs_dir
    from .datasets import dataset_root
    from .preflight import check_row_data
    from .runner import NORMALIZATION, initial_model, resolve_device, resolve_params, run_dir_for
    from .tables import get_table

    start = time.time()
    cfg = load_config(RetrievalsConfig, None, dict(n_queries=n_queries, n_neighbours=n_neighbours,
                                                   n_points=n_points))
    if method == "pretrained":
        raise ConfigError(f"{FIGURE} shows a row over training; 'pretrained' does not train. Fix: -p method "
                          "spreading (or nce, mom).")
    spec = get_table(TABLE)
    resolved = resolve_params(TABLE, params_file, {"method": method, **overrides})
    run, mcfg, standin = resolved["run"], resolved["model"], resolved["standin"]
    device = resolve_device(run.device)
    roots = {"cub200": dataset_root("cub200", run.data.data_root, standin_size=run.data.standin_size,
                                    standin_seed=run.data.standin_seed)}
    data = check_row_data(spec, resolved, roots, standin=standin)
    tf = {train: build_transform(mcfg.augmentation, train=train, size=run.data.image_size,
                                 resize=run.data.resize_size, normalize=NORMALIZATION) for train in (True, False)}
    test = open_dataset("cub200", roots["cub200"], "test", tf[False], expect_counts="off" if standin else "warn",
                        skip=data.eval_skip.get("cub200"))
    retrieve = _retrieval_fn(test, cfg, run)
    model, model_info = initial_model(spec, mcfg, standin=standin, size=run.data.standin_size, seed=run.seed,
                                      image_size=run.data.image_size, device=device, method=method,
                                      progress=progress)
    queries, first = retrieve(Pretrained(model, PretrainedConfig("head")), device)  # epoch 0: the initial network

    def eval_fn(m, ctx) -> dict:
        q, nn = retrieve(m, ctx.device)
        return {KEY: {str(int(a)): [int(j) for j in row] for a, row in zip(q, nn)}}

    tag = hashlib.sha256(json.dumps([queries.tolist(), cfg.n_neighbours]).encode()).hexdigest()[:6]
    out_dir = (runs_dir() / ("standin" if standin else "real") / FIGURE
               / f"{run_dir_for(TABLE, method, standin, resolved).name}-q{tag}")
    method_run = fit_method(method, model=model, train_set=data.train, method_cfg=resolved["method"],
                            train_cfg=resolved["train"], out_dir=out_dir, train_transform=tf[True],
                            test_transform=tf[False], eval_fn=eval_fn, progress=progress, standin=standin)
    epochs = [(0, {int(a): row.tolist() for a, row in zip(queries, first)})]
    cum = 0
    for _, records in stage_logs(out_dir):
        for rec in records:
            cum += 1
            if KEY in rec:
                epochs.append((cum, {int(a): list(r) for a, r in rec[KEY].items()}))
    shown = [epochs[i] for i in pick_points(len(epochs), cfg.n_points)]
    labels = np.asarray(test.labels)
    side = max(run.data.image_size, 64) if standin else 160
    out = figures_dir(standin, run.output_dir, run.data.standin_size)
    figures, paths, record = {}, {}, {}
    for q in (int(a) for a in queries):
        rows = [nn[q] for _, nn in shown]
        names = [f"epoch {e}" for e, _ in shown]
        fig = plot_neighbours([thumbnail(test.load_image(q), side)] * len(rows),
                              [[thumbnail(test.load_image(j), side) for j in row] for row in rows],
                              [int(labels[q])] * len(rows), [labels[row].tolist() for row in rows],
                              row_names=names,
                              title=f"Spreading paper, Figure 4: test query {q}, its {cfg.n_neighbours} nearest test "
                                    f"images after each epoch shown ({method}, {TABLE})\n{data_label(standin)}")
        figures[f"query{q}"] = fig
        paths[f"query{q}"] = save_figure(fig, out / f"{FIGURE}_{method}_query{q}.png")
        record[q] = {name: {"neighbours": row, "precision": float((labels[row] == labels[q]).mean())}
                     for name, row in zip(names, rows)}
    provenance = collect_provenance(
        {"figure": FIGURE, "config": to_dict(cfg), "method": method,
         "row": {k: to_dict(resolved[k]) for k in ("run", "model", "method", "train")}},
        standin=standin, data_fingerprint=None, wall_time_s=time.time() - start,
        extra={"figure": FIGURE, "table": TABLE, "model": model_info, "run": shown_path(out_dir),
               "train_time_s": method_run.train_time_s, "queries": record, "files": resolved["files"]})
    paths["provenance"] = atomic_write_text(out / f"{FIGURE}_{method}.json",
                                            json.dumps(provenance, indent=2, default=str) + "\n")
    per_epoch = {name: np.mean([record[q][name]["precision"] for q in record]) for name in names}
    notes = ("Each figure: one test query (black frame; its class number above), and per row its nearest test "
             "images by cosine after the epoch named on the left (epoch 0: the initial network with its untrained "
             "FC); green frame = the query's class, red = another class. Share of neighbours of the query's class: "
             + ", ".join(f"{k} {v:.0%}" for k, v in per_epoch.items()) + ".")
    return FigureResult(FIGURE, standin, figures, paths, provenance=provenance, notes=notes)


def run_retrievals_notebook(namespace: Mapping[str, Any], *, progress: bool = True) -> FigureResult:
    """The notebook's one call: its parameters checked (unknown names refused), then the figure."""
    params = {k: v for k, v in notebook_parameters(namespace).items() if v is not None}
    own = {k: params.pop(k) for k in ("method", "n_queries", "n_neighbours", "n_points", "params_file")
           if k in params}
    return retrieval_figure(**own, progress=progress, **params)


__all__ = ["FIGURE", "RetrievalsConfig", "retrieval_figure", "run_retrievals_notebook"]
