"""Figures 20-21 of the thesis: queries from the test split and their nearest neighbours after training.

For each dataset (CUB -> Figure 20, Cars -> Figure 21) the model of the table row with the same dataset and
initialisation (scratch: Tables 2 / 4, ResNet18 in the paper, convnet4 on the stand-in) is trained with the
table runner's own pieces, so a run a table notebook already finished is loaded, not trained again (same run
folder under ``runs/``). The test split is embedded as the protocol does (Resize + CenterCrop, L2-normalised),
``n_queries`` test images are drawn with ``seed``, and each one's ``n_neighbours`` nearest test images by cosine
(itself excluded by index, ties by index) are drawn by :func:`~.figures.plot_neighbours`.
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Literal, Mapping, Optional

import numpy as np
import torch

from ..config import Config, EvalConfig, load_config, notebook_parameters, to_dict
from ..errors import ConfigError
from ..io import atomic_write_text
from ..models import l2_normalize
from ..paths import shown_path
from ..provenance import collect_provenance, fingerprint_files
from .figures import DISPLAY_NAMES, FigureResult, data_label, figures_dir, plot_neighbours, save_figure, thumbnail

FIGURE = "fig20_21_neighbours"
# (dataset, init) -> the table whose row trains the model; the thesis's figures are the scratch rows
ROW_TABLES = {("cub200", "scratch"): "table2_cub_scratch", ("cars196", "scratch"): "table4_cars_scratch",
              ("sop", "scratch"): "table6_sop_scratch", ("cub200", "pretrained"): "table1_cub_pretrained",
              ("cars196", "pretrained"): "table3_cars_pretrained", ("sop", "pretrained"): "table5_sop_pretrained"}
THESIS_FIGURE = {"cub200": "Figure 20", "cars196": "Figure 21"}


@dataclasses.dataclass(frozen=True)
class NeighboursConfig(Config):
    datasets: tuple[Literal["cub200", "cars196", "sop"], ...] = ("cub200", "cars196")
    init: Literal["scratch", "pretrained"] = "scratch"
    n_queries: int = 2
    n_neighbours: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.datasets or self.n_queries < 1 or self.n_neighbours < 1:
            raise ConfigError(f"{FIGURE} needs at least one dataset, n_queries >= 1 and n_neighbours >= 1 (got "
                              f"{self.datasets}, {self.n_queries}, {self.n_neighbours}). Fix: e.g. datasets "
                              "['cub200', 'cars196'], n_queries 2, n_neighbours 4.")


@dataclasses.dataclass
class TrainedRow:
    """A table row's model after training (or loaded from its finished run), with what it was built from."""

    table: str
    embedder: torch.nn.Module
    resolved: dict
    roots: dict
    standin: bool
    device: torch.device
    info: dict
    data: Any = None  # the row's checked data (preflight.RowData): the test images it left out


def trained_row_model(table: str, params_file: Any = None, overrides: Optional[Mapping[str, Any]] = None, *,
                      progress: bool = True) -> TrainedRow:
    """The row's model as ``run_table_row`` trains it (same parameters, same run folder, so a finished run is
    loaded), without evaluating or writing results. ``method='pretrained'`` gives the initial network."""
    from .datasets import dataset_root
    from .preflight import check_row_data
    from .runner import initial_model, resolve_device, resolve_params, train_row, wants_pretrained_fc
    from .tables import get_table

    spec = get_table(table)
    resolved = resolve_params(table, params_file, overrides)
    run, mcfg = resolved["run"], resolved["model"]
    if run.eval.ks == EvalConfig().ks and spec.ks != run.eval.ks:
        # as run_table_row does before training: the table's K set is part of the run folder's key
        run = resolved["run"] = dataclasses.replace(run, eval=dataclasses.replace(run.eval, ks=spec.ks))
    device = resolve_device(run.device)
    standin = resolved["standin"]
    roots = {name: dataset_root(name, run.data.data_root, standin_size=run.data.standin_size,
                                standin_seed=run.data.standin_seed)
             for name in dict.fromkeys((spec.train_dataset, *spec.eval_datasets))}
    data = check_row_data(spec, resolved, roots, standin=standin)  # everything the row reads, before any work
    model, model_info = initial_model(spec, mcfg, standin=standin, size=run.data.standin_size, seed=run.seed,
                                      image_size=run.data.image_size, device=device, method=run.method,
                                      progress=progress, pretrained_fc=wants_pretrained_fc(resolved))
    info: dict = {"model": model_info}
    embedder = model
    if run.method != "pretrained":
        method_run = train_row(spec, resolved, model, roots, standin=standin, device=device, progress=progress,
                               data=data)
        embedder = method_run.method
        info["training"] = {"out_dir": shown_path(method_run.out_dir), "stages": [s.name for s in method_run.stages],
                            "reused": all(s.skipped for s in method_run.stages),
                            "train_time_s": method_run.train_time_s}
    embedder.eval()
    info["data_checks"] = data.record
    return TrainedRow(table, embedder, resolved, roots, standin, device, info, data)


def query_neighbours(emb: torch.Tensor, n_queries: int, k: int, seed: int,
                     backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """``n_queries`` rows drawn with ``seed`` and the indices (n_queries, k) of their k nearest rows by
    cosine, self excluded by index, ties by index."""
    from ..eval import knn

    n = emb.shape[0]
    if n_queries > n or k > n - 1:
        raise ConfigError(f"the test split has {n} images: too few for {n_queries} queries with {k} neighbours. "
                          "Fix: lower n_queries / n_neighbours.")
    queries = np.sort(np.random.default_rng(seed).choice(n, size=n_queries, replace=False))
    emb = l2_normalize(emb.float())
    q = torch.as_tensor(queries)
    # k + 1 nearest of all rows (ties by index), then the query's own row dropped (the last one if a tie with
    # an identical, lower-indexed image pushed it out)
    _, idx = knn(emb[q], emb, k=k + 1, metric="ip", backend=backend)
    idx = idx.cpu()
    keep = idx != q[:, None]
    keep[keep.all(1), -1] = False
    return queries, idx[keep].reshape(n_queries, k).numpy()


def neighbour_figure(method: str = "spreading", *, datasets=("cub200", "cars196"), init: str = "scratch",
                     n_queries: int = 2, n_neighbours: int = 4, params_file: Any = None, progress: bool = True,
                     **overrides: Any) -> FigureResult:
    """Train (or load) ``method`` on each dataset's table row, then plot and save its query / neighbour grid.

    ``overrides`` are the row's parameters (data_root, standin_size, device, seed, epochs, ...), checked like
    a table notebook's; unknown names are refused before any work starts."""
    from ..data import build_transform, open_dataset
    from ..eval import extract_embeddings

    start = time.time()
    cfg = load_config(NeighboursConfig, None, dict(datasets=list(datasets) if not isinstance(datasets, str)
                                                   else [datasets], init=init, n_queries=n_queries,
                                                   n_neighbours=n_neighbours))
    tables = [ROW_TABLES[(d, cfg.init)] for d in cfg.datasets]
    from .runner import resolve_params

    for table in tables:  # every row's parameters are checked before anything trains or is written
        resolve_params(table, params_file, {"method": method, **overrides})
    figures, paths, record, standin = {}, {}, {}, True
    for dataset, table in zip(cfg.datasets, tables):
        row = trained_row_model(table, params_file, {"method": method, **overrides}, progress=progress)
        run, standin = row.resolved["run"], row.standin
        from .runner import NORMALIZATION

        # the protocol's test transform, as the row's evaluation builds it
        tf = build_transform(getattr(row.resolved["model"], "augmentation", "thesis"), train=False,
                             size=run.data.image_size, resize=run.data.resize_size, normalize=NORMALIZATION)
        test = open_dataset(dataset, row.roots[dataset], "test", tf, expect_counts="off" if standin else "warn",
                            skip=row.data.eval_skip.get(dataset) if row.data is not None else None)
        emb, _ = extract_embeddings(row.embedder, test, device=row.device, batch_size=run.eval.batch_size,
                                    scales=run.eval.scales, progress=progress)
        queries, neighbours = query_neighbours(emb, cfg.n_queries, cfg.n_neighbours, run.seed, run.eval.knn_backend)
        labels = np.asarray(test.labels)
        side = max(run.data.image_size, 64) if standin else 160
        title = (f"{THESIS_FIGURE.get(dataset, dataset)}: {DISPLAY_NAMES.get(method, method)} (`{method}`) on "
                 f"{dataset} ({cfg.init}, "
                 f"{row.info['model']['backbone']}), {len(queries)} queries + {cfg.n_neighbours} nearest test "
                 f"images\n{data_label(standin)}")
        fig = plot_neighbours([thumbnail(test.load_image(q), side) for q in queries],
                              [[thumbnail(test.load_image(j), side) for j in row_] for row_ in neighbours],
                              labels[queries].tolist(), labels[neighbours].tolist(), title=title)
        key = f"{dataset}_{method}"
        figures[key] = fig
        paths[key] = save_figure(fig, figures_dir(standin, run.output_dir, run.data.standin_size) / f"{FIGURE}_{key}_{cfg.init}.png")
        record[key] = {"table": table, "params": {k: to_dict(row.resolved[k]) for k in ("run", "model", "method",
                                                                                          "train")},
                       "queries": queries.tolist(), "neighbours": neighbours.tolist(),
                       "query_labels": labels[queries].tolist(), "neighbour_labels": labels[neighbours].tolist(),
                       "precision": float((labels[neighbours] == labels[queries][:, None]).mean()),
                       "data_fingerprint": fingerprint_files(row.roots[dataset], sample=2000), **row.info}
    provenance = collect_provenance({"figure": FIGURE, "config": to_dict(cfg), "method": method},
                                    standin=standin, data_fingerprint=";".join(
                                        f"{k}={v['data_fingerprint']}" for k, v in record.items()),
                                    wall_time_s=time.time() - start, extra={"figure": FIGURE, "rows": record})
    json_path = figures_dir(standin, run.output_dir, run.data.standin_size) / f"{FIGURE}_{method}_{cfg.init}.json"
    paths["provenance"] = atomic_write_text(json_path, json.dumps(provenance, indent=2, default=str) + "\n")
    notes = ("Each row: a test query (black frame) and its nearest test images by cosine, itself excluded; the "
             "number above each image is its class; green frame = same class as the query, red = another class. "
             + " ".join(f"{k}: {v['precision']:.0%} of the neighbours shown share the query's class."
                        for k, v in record.items()))
    return FigureResult(FIGURE, standin, figures, paths, provenance=provenance, notes=notes)


def run_neighbours_notebook(namespace: Mapping[str, Any], *, progress: bool = True) -> FigureResult:
    """The notebook's one call: its parameters (and anything papermill injected) checked, then the figure."""
    params = notebook_parameters(namespace)
    own = {k: params.pop(k) for k in ("method", "datasets", "init", "n_queries", "n_neighbours", "params_file")
           if k in params}
    return neighbour_figure(**own, progress=progress, **params)
