"""A row's parameters: the layers (the table's method settings and the stand-in scale, the user's params files,
the notebook's values), routed to the typed configs and checked before any work (``resolve_params``), and the
run folder they name (``run_dir_for``)."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..config import RunConfig, load_configs, read_params_file, to_dict
from ..errors import ConfigError
from ..paths import REPO_ROOT, shown_path
from .row_model import ModelConfig
from .row_refusals import (PAPER_ROW, _check_paper_row_table, _check_paper_row_use, _other_valid_keys, _paper_row,
                           _refuse_other_methods)
from .tables import get_table

STANDIN_PARAMS = REPO_ROOT / "params" / "standin.yaml"
TINY_PARAMS = STANDIN_PARAMS.parent / "standin" / "tiny.yaml"
_SHARED_WITH_RUN = {"seed", "device", "deterministic", "num_workers"}  # set once, from the run config


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


def _row_datasets(table: str) -> tuple[str, ...]:
    spec = get_table(table)
    return tuple(dict.fromkeys((spec.train_dataset, *spec.eval_datasets, *spec.extra_datasets)))


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


# What the table's paper-scale file says about the method itself (the recipe the thesis names: the CUB-only 1-NN
# partners of Spreading, STML's (q, k), delta and momentum per dataset, InsCLR's thresholds...) also holds on the
# stand-in; its scale (backbone, image size, epochs, lr, batch, workers) does not and comes from params/standin*.
_MODEL_SETTINGS = ("pooling", "augmentation")
# method fields that are schedule or scale, not the method: the stand-in layer sizes them
_SCALE_FIELDS = {"pool_size", "memory_draw", "memory_start_step", "memory_use_step", "memory_exclude",
                 "impr_max_steps", "impr_milestones", "impr_batch_size", "impr_pool_columns", "memory_size"}


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
