"""Fill one row of a thesis table: data -> initial network -> (training) -> protocol -> results + provenance.

``run_table_row(table, params_file=None, overrides=None)`` is the one call a table notebook makes. Parameters
come from the params file(s) and the notebook's parameters cell, checked by the typed configs (unknown or
mistyped names are refused before any work starts).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence

import pandas as pd
import torch

from ..config import Config, EvalConfig, RunConfig, load_configs, read_params_file, to_dict
from ..paths import REPO_ROOT, shown_path
from ..errors import ConfigError
from ..models import build_model
from ..provenance import collect_provenance, fingerprint_files
from ..results import render_table, side_by_side, write_results
from .datasets import dataset_root
from .evaluate import evaluate_recall, evaluate_revisited
from .datasets import open_train_set  # noqa: F401  (re-exported: callers import it from the runner)
from .preflight import check_row_data
from .standin_pretrain import PretrainSettings, standin_pretrained_weights
from .tables import TableSpec, get_table

STANDIN_BACKBONE = "convnet4"
STANDIN_PARAMS = REPO_ROOT / "params" / "standin.yaml"
_SHARED_WITH_RUN = {"seed", "device", "deterministic", "num_workers"}  # set once, from the run config


def _sets_data_root(params_file: str | Path) -> bool:
    return read_params_file(params_file).get("data_root") is not None


@dataclass(frozen=True)
class ModelConfig(Config):
    backbone: Optional[str] = None      # None: the table's backbone on real data, convnet4 on the stand-in
    embedding_size: int = 128
    pooling: Optional[str] = None       # None: avg for the DML tables, GeM (p = 3) for the GLDv2 tables
    max_side: Optional[int] = None      # revisited images: thumbnail to this longer side (1024 in the refs)
    pretrain_epochs: int = 12           # stand-in "ImageNet" pre-training (ignored on real data)
    # "orthogonal": STML's official heads; "pca": the start's principal directions (label-free; our option,
    # ssml_lib.models.head_init)
    head_init: Literal["default", "orthogonal", "pca"] = "default"
    # training augmentation (ssml_lib.data.transforms presets): "thesis" = Resize(shorter side) + RandomCrop +
    # HFlip; "spreading" = Resize((s, s)) squash + RandomCrop + HFlip, the thesis's "Resize to 256x256"
    augmentation: Literal["thesis", "spreading", "stml", "insclr"] = "thesis"


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


# torchvision's ImageNet weights (GoogLeNet included, through transform_input) expect ImageNet mean/std input;
# the stand-in pre-training uses the same normalisation
NORMALIZATION = "resnet"


def initial_model(spec: TableSpec, mcfg: ModelConfig, *, standin: bool, size: str, seed: int,
                  image_size: int, device: torch.device, method: str = "pretrained", progress: bool = True):
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
    # the pretrained row embeds with the pooled features; trained methods add the embedding head
    kwargs = dict(pooling=pooling, head="identity" if method == "pretrained" else "linear")
    if method == "insclr":
        from ..methods.insclr import MODEL_DEFAULTS

        kwargs.update(MODEL_DEFAULTS)
        if mcfg.pooling:
            kwargs["pooling"] = mcfg.pooling
    torch.manual_seed(seed)
    model = build_model(backbone, embedding_size=mcfg.embedding_size, normalize=True, pretrained=pretrained,
                        head_init="default" if mcfg.head_init == "pca" else mcfg.head_init, **kwargs)
    return model.to(device), {"backbone": backbone, **kwargs, "init": spec.init,
                              "weights": shown_path(pretrained) if isinstance(pretrained, Path) else str(pretrained) if pretrained is not None else "random"}


def evaluate(spec: TableSpec, model, roots: Mapping[str, Path], run: RunConfig, mcfg: ModelConfig,
             device: torch.device, progress: bool = True, *, standin: bool = False, data=None) -> tuple[list, dict]:
    """The table's protocol on every evaluation set. ``data``: the row's checked data
    (:func:`~.preflight.check_row_data`): the test images it left out and the K each test split allows."""
    rows: list = []
    info: dict = {}
    norm = NORMALIZATION
    ecfg = run.eval
    for name in spec.eval_datasets:
        if spec.protocol == "recall":
            ks = data.ks.get(name, ecfg.ks) if data is not None else ecfg.ks
            r, i = evaluate_recall(model, name, roots[name], replace(ecfg, ks=ks), image_size=run.data.image_size,
                                   resize_size=run.data.resize_size, normalize=norm, device=device,
                                   progress=progress, standin=standin, preset=mcfg.augmentation,
                                   skip=data.eval_skip.get(name) if data is not None else None)
        else:
            r, i = evaluate_revisited(model, name, roots[name], ecfg, max_side=mcfg.max_side, normalize=norm,
                                      device=device, progress=progress, standin=standin)
        rows += r
        info[name] = i
    return rows, info


def _read_flat(files: Sequence[str | Path]) -> dict:
    merged: dict = {}
    for f in files:
        merged.update(read_params_file(f))
    return merged


def _split_params(method: str, merged: dict) -> tuple[dict, dict, dict]:
    """Route flat parameters: the method's own fields, TrainConfig fields, and the rest (run + model)."""
    from ..engine import TrainConfig
    from ..methods.schedule import method_config_class

    method_fields = {f.name for f in fields(method_config_class(method))}
    train_fields = {f.name for f in fields(TrainConfig)} - _SHARED_WITH_RUN
    rest = dict(merged)
    method_params = {k: rest.pop(k) for k in list(rest) if k in method_fields}
    train_params = {k: rest.pop(k) for k in list(rest) if k in train_fields}
    return rest, method_params, train_params


def resolve_params(table: str, params_file=None, overrides: Optional[Mapping[str, Any]] = None) -> dict:
    """Every config of a row, checked: {'run', 'model', 'method', 'train', 'files', 'standin', 'standin_data'}.
    Nothing is written (stand-in markers under ``data_root`` are read). Refused here: unknown or mistyped names,
    another method's settings, a paper-scale file of another table, row or without ``data_root``."""
    from ..methods import METHODS
    from ..methods.schedule import method_config, train_config
    from .datasets import standin_data

    params = {"table": table, **dict(overrides or {})}
    files = [params_file] if isinstance(params_file, (str, Path)) else list(params_file or [])
    from_files = _read_flat(files)
    row = _paper_row(files, params)
    if row is not None:
        _check_paper_row_table(row, table)
    if "method" in from_files and "method" in params and from_files["method"] != params["method"]:
        raise ConfigError(f"the params file is for method {from_files['method']!r} but method={params['method']!r} "
                          f"was given. Fix: -p method {from_files['method']} (or use that method's params file).")
    user = {**from_files, **params}
    method = user.get("method")
    if not isinstance(method, str):
        raise ConfigError(f"no method given for {table}. Fix: -p method <name> ({', '.join(METHODS)}).")
    if method not in METHODS:
        METHODS[method]  # raises ConfigError naming the methods
    if row is not None:
        _check_paper_row_use(row, table, method, user)
    settings: dict = {}
    layers: list = []  # (shown name, flat values) of the stand-in layers, in order
    if user.get("data_root") is None:  # stand-in scale first; the user's files and overrides win
        settings, table_file = table_method_settings(table, method)
        if settings:
            layers.append((f"{table_file} (method settings only: {', '.join(sorted(settings))})", settings))
        for f in (STANDIN_PARAMS, STANDIN_PARAMS.parent / "standin" / f"{method}.yaml"):
            if f.is_file():
                layers.append((shown_path(f), read_params_file(f)))
        size = user.get("standin_size", user.get("data.standin_size",
                                                 _read_flat([STANDIN_PARAMS]).get("standin_size")))
        if size == "tiny":
            layers.append((f"{TINY_PARAMS.relative_to(REPO_ROOT)} (standin_size tiny)", tiny_layer(method)))
    merged: dict = {}
    for _, values in layers:
        merged.update(values)
    merged.update({**from_files, **params})
    merged.pop(PAPER_ROW, None)
    rest, method_params, train_params = _split_params(method, merged)
    _refuse_other_methods(table, method, rest, from_files, files)
    markers = standin_data(_row_datasets(table), user.get("data_root"))
    if markers is not None and markers["size"] is not None:  # the data's own size: labels and pre-training
        rest = {k: v for k, v in rest.items() if k not in ("standin_size", "data.standin_size")}
        rest["standin_size"] = markers["size"]
    cfgs = load_configs({"run": RunConfig, "model": ModelConfig}, None, rest,
                        also_valid=_other_valid_keys(method))
    run: RunConfig = cfgs["run"]
    if run.table != table:
        raise ConfigError(f"this is {table}, but the parameters say table={run.table!r}. Fix: drop `table`.")
    shared = {"seed": run.seed, "device": run.device, "deterministic": run.deterministic,
              "num_workers": run.data.num_workers}
    shown = [name for name, _ in layers] + [str(f) for f in files]
    return {"run": run, "model": cfgs["model"], "method": method_config(method, method_params),
            "train": train_config(method, {**train_params, **shared}), "files": shown,
            "standin": run.data.data_root is None or markers is not None, "standin_data": markers}


# A paper-scale file (params/<table>/<method>.yaml) names its row with this key, so that it is refused in another
# table's notebook, for another method and without data_root, whether given as params_file or with papermill -f
# (which injects the file's keys as notebook variables: the file's path is then unknown).
PAPER_ROW = "paper_row"
TINY_PARAMS = STANDIN_PARAMS.parent / "standin" / "tiny.yaml"


def _row_datasets(table: str) -> tuple[str, ...]:
    spec = get_table(table)
    return tuple(dict.fromkeys((spec.train_dataset, *spec.eval_datasets)))


def tiny_layer(method: str) -> dict:
    """``params/standin/tiny.yaml`` for ``method``: its plain keys, and its ``<method>.<name>`` keys as
    ``<name>`` (other methods' scoped keys are left out)."""
    from ..methods import METHODS

    out: dict = {}
    for key, value in read_params_file(TINY_PARAMS).items():
        head, _, name = str(key).partition(".")
        if name and head in METHODS:
            if head == method:
                out[name] = value
        else:
            out[key] = value
    return out


def _paper_row(files: Sequence, params: Mapping[str, Any]) -> Optional[tuple[str, str, str]]:
    """(table, method, where it came from) of the paper-scale settings among the parameters, or None."""
    value = source = None
    for f in files:
        found = read_params_file(f).get(PAPER_ROW)
        if found is not None:
            value, source = found, f"from params file {f}"
    if params.get(PAPER_ROW) is not None:
        value, source = params[PAPER_ROW], "from the notebook's parameters, as papermill -f injects a params file"
    if value is None:
        return None
    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{PAPER_ROW} ({source}) must be '<table>/<method>', got {value!r}. Fix: it names the "
                          "row a paper-scale file is for, e.g. 'table7_gldv2/insclr'; drop it from your own files.")
    return parts[0], parts[1], source


def _check_paper_row_table(row: tuple[str, str, str], table: str) -> None:
    ptable, pmethod, source = row
    if ptable == table:
        return
    own = REPO_ROOT / "params" / table / f"{pmethod}.yaml"
    instead = (f"use this table's own file, params/{table}/{pmethod}.yaml" if own.is_file() else
               f"{table} has no {pmethod} row (no params/{table}/{pmethod}.yaml)")
    raise ConfigError(f"the paper-scale settings of {ptable} / {pmethod} ({PAPER_ROW}: {ptable}/{pmethod}, "
                      f"{source}) were given to {table}: another table's network, data and schedule would run "
                      f"here. Fix: {instead}, or run notebooks/{ptable}.ipynb with that file; for a stand-in "
                      "run give no params file.")


def _check_paper_row_use(row: tuple[str, str, str], table: str, method: str, user: Mapping[str, Any]) -> None:
    ptable, pmethod, source = row
    if pmethod != method:
        own = REPO_ROOT / "params" / table / f"{method}.yaml"
        instead = f"use params/{table}/{method}.yaml" if own.is_file() else f"give no params file for {method}"
        raise ConfigError(f"the paper-scale settings of {ptable} / {pmethod} ({source}) were given with "
                          f"method={method!r}. Fix: -p method {pmethod}, or {instead}.")
    if user.get("data_root") is None:
        scale = [f"{user[k]}" for k in ("backbone",) if k in user]
        scale += [f"at {user['image_size']} px" for k in ("image_size",) if k in user]
        length = [f"{user[k]} {k.replace('max_', '')}" for k in ("epochs", "max_steps") if k in user]
        what = " ".join(scale + (["for " + " / ".join(length)] if length else []))
        raise ConfigError(f"the paper-scale settings of {table} / {method} ({source}) are for real data only, "
                          f"but no data_root was given: on the stand-in they would run "
                          f"{what or 'the paper-scale recipe'} on small synthetic images. Fix: pass -p data_root "
                          f"<the folder holding the datasets> for a real run; for a stand-in run give no params "
                          f"file (the stand-in applies this row's method settings from params/{table}/{method}.yaml "
                          "by itself).")


def _other_valid_keys(method: str) -> list[str]:
    """Names that are valid for this row besides RunConfig's and ModelConfig's: TrainConfig's and the method's."""
    from ..engine import TrainConfig
    from ..methods.schedule import method_config_class

    return [f.name for f in fields(TrainConfig)] + [f.name for f in fields(method_config_class(method))]


def _refuse_other_methods(table: str, method: str, rest: Mapping[str, Any], from_files: Mapping[str, Any],
                          files: Sequence) -> None:
    """A name that is not this row's but another method's setting: say so (the file is another method's)."""
    from ..config import _routes
    from ..methods import METHODS
    from ..methods.schedule import method_config_class

    known = set(_routes(RunConfig)) | set(_routes(ModelConfig)) | {"run", "model"}
    owners: dict[str, list[str]] = {}
    for key in rest:
        head = str(key).partition(".")[0]
        if head in known:
            continue
        found = [m for m in METHODS if m != method and head in {f.name for f in fields(method_config_class(m))}]
        if found:
            owners[str(key)] = found
    if not owners:
        return
    common = set.intersection(*(set(v) for v in owners.values()))
    likely = [m for m in METHODS if m in common] or sorted({m for v in owners.values() for m in v})
    names = ", ".join(map(repr, owners))
    in_files = [k for k in owners if k in from_files]
    where = "; ".join(f"{', '.join(map(repr, keys))} {label}" for keys, label in (
        (in_files, f"in {files[-1] if len(files) == 1 else 'the params files'}"),
        ([k for k in owners if k not in in_files], "in the notebook's parameters, e.g. from papermill -f")) if keys)
    own = REPO_ROOT / "params" / table / f"{method}.yaml"
    instead = f"params/{table}/{method}.yaml is {method}'s own file" if own.is_file() else \
        f"params/standin/{method}.yaml shows {method}'s settings"
    raise ConfigError(f"{names} {'is a setting' if len(owners) == 1 else 'are settings'} of method "
                      f"{' or '.join(map(repr, likely))}, not of {method!r}, the method this row runs ({where}): "
                      f"the parameters are another method's (a params file is for one method). Fix: -p method "
                      f"{likely[0]} to run that method, or leave {'it' if len(owners) == 1 else 'them'} out "
                      f"({instead}).")


# What the table's paper-scale file says about the method itself (the recipe the thesis names: the CUB-only 1-NN
# partners of Spreading, STML's (q, k), delta and momentum per dataset, InsCLR's thresholds...) also holds on the
# stand-in; its scale (backbone, image size, epochs, lr, batch, workers) does not and comes from params/standin*.
_MODEL_SETTINGS = ("pooling", "augmentation")
# method fields that are schedule or scale, not the method: the stand-in layer sizes them
_SCALE_FIELDS = {"pool_size", "memory_draw", "memory_start_step", "memory_use_step", "memory_exclude",
                 "impr_max_steps", "impr_milestones", "impr_batch_size", "impr_pool_columns"}


def table_method_settings(table: str, method: str) -> tuple[dict, Path]:
    """The method-level settings of ``params/<table>/<method>.yaml`` (its method Config fields, pooling and
    augmentation), for the stand-in; ({}, path) when the table has no file for the method."""
    from ..methods.schedule import method_config_class

    path = REPO_ROOT / "params" / table / f"{method}.yaml"
    if not path.is_file():
        return {}, path
    keys = ({f.name for f in fields(method_config_class(method))} | set(_MODEL_SETTINGS)) - _SCALE_FIELDS
    chosen = {k: v for k, v in read_params_file(path).items() if k in keys}
    return chosen, path.relative_to(REPO_ROOT)


def run_dir_for(table: str, method: str, standin: bool, resolved: dict) -> Path:
    import hashlib
    import json

    from ..paths import runs_dir

    key = {k: to_dict(resolved[k]) for k in ("run", "model", "method", "train")}
    for part in ("output_dir",):
        key["run"].pop(part, None)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return runs_dir() / ("standin" if standin else "real") / table / f"{method}-{digest}"


def train_row(spec: TableSpec, resolved: dict, model, roots: Mapping[str, Path], *, standin: bool,
              device: torch.device, progress: bool = True, data=None):
    """Train the row's method (all its stages) and return the fit_method run (its ``.method`` embeds).
    ``data``: the row's checked data (:func:`~.preflight.check_row_data`); None checks it here."""
    from ..data import build_transform
    from ..methods.schedule import fit_method

    run, mcfg = resolved["run"], resolved["model"]
    size, resize = run.data.image_size, run.data.resize_size
    train_tf = build_transform(mcfg.augmentation, train=True, size=size, resize=resize, normalize=NORMALIZATION)
    test_tf = build_transform(mcfg.augmentation, train=False, size=size, resize=resize, normalize=NORMALIZATION)
    if data is None:
        data = check_row_data(spec, resolved, roots, standin=standin)
    train_set = data.train
    head_record = init_head_by_pca(model, train_set, test_tf, run, device, progress=progress) \
        if mcfg.head_init == "pca" else {"head_init": mcfg.head_init}
    eval_fn = None
    if spec.per_stage:  # Table 8: the protocol after every stage (cycle)
        def eval_fn(method, ctx):
            rows, _ = evaluate(spec, method, roots, run, mcfg, ctx.device, progress=False, standin=standin,
                               data=data)
            return {f"eval/{r['dataset']}/{r['metric']}": r["value"] for r in rows}
    tcfg = resolved["train"]
    if eval_fn is not None:
        tcfg = replace(tcfg, eval_every=max(tcfg.epochs, 1))
    method_run = fit_method(run.method, model=model, train_set=train_set, method_cfg=resolved["method"],
                            train_cfg=tcfg, out_dir=run_dir_for(spec.name, run.method, standin, resolved),
                            train_transform=train_tf, test_transform=test_tf, eval_fn=eval_fn, progress=progress,
                            standin=standin)
    method_run.info["head"] = head_record
    return method_run


def init_head_by_pca(model, train_set, test_tf, run: RunConfig, device: torch.device, *, progress: bool = True) -> dict:
    """``head_init='pca'``: the head starts as the principal directions of the training set's pooled features
    under the initial network (test transform; labels are not read)."""
    from ..eval import extract_embeddings
    from ..methods.views import Transformed
    from ..models.head_init import pca_init_

    class _Pooled(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.features(x).flatten(1)

    feats, _ = extract_embeddings(_Pooled(model), Transformed(train_set, test_tf), device=device,
                                  batch_size=run.eval.batch_size, normalize=False, progress=progress)
    return pca_init_(model.head, feats)


def _stage_rows(method_run) -> list[dict]:
    """Rows of the evaluation at the end of every stage, read back from the stages' logs (also for stages that
    a re-run skipped because they were complete)."""
    from ..engine import read_log

    rows = []
    for i, stage in enumerate(method_run.stages):
        history = read_log(stage.log_path) if Path(stage.log_path).is_file() else stage.history
        evals = [r for r in history if any(k.startswith("eval/") for k in r)]
        if not evals:
            continue
        for key, value in evals[-1].items():
            if key.startswith("eval/"):
                _, dataset, metric = key.split("/")
                rows.append({"dataset": dataset, "metric": metric, "value": value, "setting": f"cycle{i + 1}"})
    return rows


def run_table_row(table: str, params_file: str | Path | Sequence[str | Path] | None = None,
                  overrides: Optional[Mapping[str, Any]] = None, *, progress: bool = True) -> RowResult:
    """Run ``overrides['method']`` (or the params file's) on ``table`` and write its results."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("run_table_row runs in one process; under torchrun every rank would evaluate and write. "
                          "Fix: python -m ssml_lib.experiments.run_table <table> --gpus N (trains with torchrun, "
                          "then evaluates once), or torchrun ... -m ssml_lib.experiments.train_row.")
    spec = get_table(table)
    resolved = resolve_params(table, params_file, overrides)
    run: RunConfig = resolved["run"]
    mcfg: ModelConfig = resolved["model"]
    if run.eval.ks == EvalConfig().ks and spec.ks != run.eval.ks:
        run = replace(run, eval=replace(run.eval, ks=spec.ks))  # the table's K set unless given explicitly
        resolved["run"] = run
    start = time.time()
    device = resolve_device(run.device)
    standin = resolved["standin"]
    needed = dict.fromkeys((spec.train_dataset, *spec.eval_datasets))
    roots = {name: dataset_root(name, run.data.data_root, standin_size=run.data.standin_size,
                                standin_seed=run.data.standin_seed) for name in needed}
    data = check_row_data(spec, resolved, roots, standin=standin)  # everything the row reads, before any work
    model, model_info = initial_model(spec, mcfg, standin=standin, size=run.data.standin_size, seed=run.seed,
                                      image_size=run.data.image_size, device=device, method=run.method,
                                      progress=progress)
    info: dict = {}
    rows: list = []
    embedder = model
    if run.method != "pretrained":
        method_run = train_row(spec, resolved, model, roots, standin=standin, device=device, progress=progress,
                               data=data)
        embedder = method_run.method
        info["training"] = {"out_dir": shown_path(method_run.out_dir), "wall_time_s": method_run.wall_time_s,
                            "stages": [s.name for s in method_run.stages], "head": method_run.info.get("head"),
                            "final": {k: v for k, v in (method_run.history[-1] if method_run.history else {}).items()
                                      if isinstance(v, (int, float, str)) or v is None}}
        if spec.per_stage:
            rows += _stage_rows(method_run)
    final_rows, info["evaluation"] = evaluate(spec, embedder, roots, run, mcfg, device, progress, standin=standin,
                                              data=data)
    info["data_checks"] = data.record
    if resolved["standin_data"] is not None:  # stand-in folders given as data_root: results are stand-in
        info["standin_data"] = {**resolved["standin_data"], "note": "stand-in data (the generator's marker) passed "
                                "as data_root; labelled stand-in"}
    if not spec.per_stage or run.method == "pretrained":
        rows += final_rows
    fingerprint = ";".join(f"{name}={fingerprint_files(root, sample=2000)}" for name, root in roots.items())
    provenance = collect_provenance({k: to_dict(resolved[k]) for k in ("run", "model", "method", "train")},
                                    standin=standin, data_fingerprint=fingerprint, wall_time_s=time.time() - start,
                                    extra={"model": model_info, **info, "params_files": resolved["files"],
                                           "data_roots": {k: shown_path(v) for k, v in roots.items()}})
    paths = write_results(table, run.method, rows, provenance, results_dir=run.output_dir)
    ours = pd.DataFrame(rows).assign(method=run.method)
    return RowResult(table, run.method, standin, pd.DataFrame(rows), side_by_side(table, ours),
                     render_table(table, run.output_dir, standin=standin, size=run.data.standin_size if standin
                                  else None), paths, provenance, info)


def run_notebook_row(table: str, namespace: Mapping[str, Any], *, progress: bool = True) -> RowResult:
    """The table notebooks' one call: every parameter in the notebook's namespace (its parameters cell and
    whatever papermill injected with -p or -f) is checked by the typed configs; unknown names are refused."""
    from ..config import notebook_parameters

    # None means "not given": the params file's value, else the default (a notebook's literal defaults would
    # otherwise always beat the params file)
    params = {k: v for k, v in notebook_parameters(namespace).items() if v is not None}
    params_file = params.pop("params_file", None)
    return run_table_row(table, params_file, params, progress=progress)


def show(row: RowResult) -> None:
    """Display a row's table (paper beside ours, stand-in label, provenance) in a notebook."""
    from IPython.display import Markdown, display

    label = "STAND-IN DATA (synthetic; not comparable with the paper)" if row.standin else "real data"
    display(Markdown(f"**{row.table} / {row.method}: {label}**"))
    display(row.side_by_side[row.side_by_side["method"] == row.method])
    display(Markdown(row.markdown))
