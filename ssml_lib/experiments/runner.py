"""Fill one row of a thesis table: data -> initial network -> (training) -> protocol -> results + provenance.

``run_table_row(table, params_file=None, overrides=None)`` is the one call a table notebook makes. Parameters
come from the params file(s) and the notebook's parameters cell, checked by the typed configs (unknown or
mistyped names are refused before any work starts).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import pandas as pd
import torch

from ..config import Config, EvalConfig, RunConfig, load_configs, read_params_file, to_dict
from ..paths import REPO_ROOT
from ..errors import ConfigError
from ..models import build_model
from ..provenance import collect_provenance, fingerprint_files
from ..results import render_table, side_by_side, write_results
from .datasets import dataset_root
from .evaluate import evaluate_recall, evaluate_revisited
from .standin_pretrain import PretrainSettings, standin_pretrained_weights
from .tables import TableSpec, get_table

STANDIN_BACKBONE = "convnet4"
STANDIN_PARAMS = REPO_ROOT / "params" / "standin.yaml"


def _sets_data_root(params_file: str | Path) -> bool:
    return read_params_file(params_file).get("data_root") is not None


@dataclass(frozen=True)
class ModelConfig(Config):
    backbone: Optional[str] = None      # None: the table's backbone on real data, convnet4 on the stand-in
    embedding_size: int = 128
    pooling: Optional[str] = None       # None: avg for the DML tables, GeM (p = 3) for the GLDv2 tables
    max_side: Optional[int] = None      # revisited images: thumbnail to this longer side (1024 in the refs)
    pretrain_epochs: int = 12           # stand-in "ImageNet" pre-training (ignored on real data)


@dataclass
class RowResult:
    table: str
    method: str
    standin: bool
    rows: pd.DataFrame
    side_by_side: pd.DataFrame
    markdown: str
    paths: dict
    provenance: dict
    info: dict = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA device is visible. Fix: -p device cpu (or auto).")
    return torch.device(name)


def _normalization(backbone: str) -> str:
    # torchvision's ImageNet weights (GoogLeNet included, with transform_input) expect ImageNet mean/std input
    return "resnet"


def initial_model(spec: TableSpec, mcfg: ModelConfig, *, standin: bool, size: str, seed: int,
                  image_size: int, device: torch.device, head: str = "identity", progress: bool = True):
    """The network before any training: stand-in or ImageNet pre-trained, or random (scratch tables)."""
    backbone = mcfg.backbone or (STANDIN_BACKBONE if standin else spec.backbone)
    pooling = mcfg.pooling or ("gem" if spec.protocol == "revisited" else "avg")
    pretrained: Any = None
    if spec.init == "imagenet":
        if standin:
            settings = PretrainSettings(backbone=backbone, size=size, seed=seed, image_size=image_size,
                                        epochs=mcfg.pretrain_epochs)
            pretrained = standin_pretrained_weights(settings, progress=progress)
        else:
            pretrained = "imagenet"
    torch.manual_seed(seed)
    model = build_model(backbone, pooling=pooling, head=head, embedding_size=mcfg.embedding_size,
                        normalize=True, pretrained=pretrained)
    return model.to(device), {"backbone": backbone, "pooling": pooling, "init": spec.init,
                              "weights": str(pretrained) if pretrained is not None else "random"}


def evaluate(spec: TableSpec, model, roots: Mapping[str, Path], run: RunConfig, mcfg: ModelConfig,
             device: torch.device, progress: bool = True, *, standin: bool = False) -> tuple[list, dict]:
    rows: list = []
    info: dict = {}
    norm = _normalization(mcfg.backbone or spec.backbone)
    ecfg = run.eval
    for name in spec.eval_datasets:
        if spec.protocol == "recall":
            r, i = evaluate_recall(model, name, roots[name], ecfg, image_size=run.data.image_size,
                                   resize_size=run.data.resize_size, normalize=norm, device=device,
                                   progress=progress, standin=standin)
        else:
            r, i = evaluate_revisited(model, name, roots[name], ecfg, max_side=mcfg.max_side, normalize=norm,
                                      device=device, progress=progress, standin=standin)
        rows += r
        info[name] = i
    return rows, info


def run_table_row(table: str, params_file: str | Path | Sequence[str | Path] | None = None,
                  overrides: Optional[Mapping[str, Any]] = None, *, progress: bool = True) -> RowResult:
    """Run ``overrides['method']`` (or the params file's) on ``table`` and write its results."""
    spec = get_table(table)
    params = {"table": table, **dict(overrides or {})}
    files = [params_file] if isinstance(params_file, (str, Path)) else list(params_file or [])
    if params.get("data_root") is None and not any(_sets_data_root(f) for f in files):
        files = [STANDIN_PARAMS, *files]  # stand-in scale first; the user's files and overrides win
    cfgs = load_configs({"run": RunConfig, "model": ModelConfig}, files or None, params)
    run: RunConfig = cfgs["run"]
    mcfg: ModelConfig = cfgs["model"]
    if run.table != table:
        raise ConfigError(f"this is {table}, but the parameters say table={run.table!r}. Fix: drop `table`.")
    from ..methods import METHODS

    if run.method not in METHODS:
        METHODS[run.method]  # raises ConfigError naming the methods, before any work
    if run.eval.ks != spec.ks and run.eval.ks == EvalConfig().ks:
        run = replace(run, eval=replace(run.eval, ks=spec.ks))  # the table's K set unless given explicitly
    start = time.time()
    device = resolve_device(run.device)
    standin = run.data.data_root is None
    needed = dict.fromkeys((spec.train_dataset, *spec.eval_datasets))
    roots = {name: dataset_root(name, run.data.data_root, standin_size=run.data.standin_size,
                                standin_seed=run.data.standin_seed) for name in needed}
    model, model_info = initial_model(spec, mcfg, standin=standin, size=run.data.standin_size,
                                      seed=run.seed, image_size=run.data.image_size, device=device,
                                      progress=progress)
    if run.method != "pretrained":
        raise ConfigError(f"method {run.method!r} is not wired into the table runner yet; only 'pretrained' "
                          "(the initial network) runs from the notebooks in this version.")
    rows, info = evaluate(spec, model, roots, run, mcfg, device, progress, standin=standin)
    fingerprint = ";".join(f"{name}={fingerprint_files(root, sample=2000)}" for name, root in roots.items())
    provenance = collect_provenance({"run": to_dict(run), "model": to_dict(mcfg)}, standin=standin,
                                    data_fingerprint=fingerprint, wall_time_s=time.time() - start,
                                    extra={"model": model_info, "evaluation": info,
                                           "data_roots": {k: str(v) for k, v in roots.items()}})
    paths = write_results(table, run.method, rows, provenance, results_dir=run.output_dir)
    ours = pd.DataFrame(rows).assign(method=run.method)
    return RowResult(table, run.method, standin, pd.DataFrame(rows), side_by_side(table, ours),
                     render_table(table, run.output_dir, standin=standin), paths, provenance, info)


def run_notebook_row(table: str, namespace: Mapping[str, Any], *, progress: bool = True) -> RowResult:
    """The table notebooks' one call: every parameter in the notebook's namespace (its parameters cell and
    whatever papermill injected with -p or -f) is checked by the typed configs; unknown names are refused."""
    from ..config import notebook_parameters

    params = notebook_parameters(namespace)
    params_file = params.pop("params_file", None)
    return run_table_row(table, params_file, params, progress=progress)


def show(row: RowResult) -> None:
    """Display a row's table (paper beside ours, stand-in label, provenance) in a notebook."""
    from IPython.display import Markdown, display

    label = "STAND-IN DATA (synthetic; not comparable with the paper)" if row.standin else "real data"
    display(Markdown(f"**{row.table} / {row.method}: {label}**"))
    display(row.side_by_side[row.side_by_side["method"] == row.method])
    display(Markdown(row.markdown))
