"""What ``run_table`` runs for a table: one plan per row (its notebook, injected parameters, output, params files,
torchrun command), with every row's parameters checked as its notebook will check them; nothing is written."""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..errors import ConfigError, SsmlError
from ..paths import REPO_ROOT
from .tables import get_table
from .train_row import format_value

KERNEL = "python3"


@dataclass
class MethodPlan:
    table: str
    method: str
    notebook: Path
    output: Path                          # the executed copy
    parameters: dict                      # what papermill injects
    namespace: dict                       # the notebook's parameters after injection (defaults + injected)
    params_file: Optional[str]
    standin: bool
    results_dir: Optional[str]            # -p output_dir, else None (the default results folders)
    train_command: Optional[list] = None  # torchrun command (--gpus N > 1), else None
    files: list = field(default_factory=list)  # the params files the runner will read, in order
    error: Optional[str] = None           # why the parameters were refused (the notebook is not run)
    size: Optional[str] = None            # the stand-in size (None on real data)


def notebook_defaults(notebook: Path) -> dict:
    """The literal defaults of a notebook's ``parameters`` cell (what the kernel has before injection)."""
    import logging

    import papermill

    logger = logging.getLogger("papermill")
    level = logger.level
    logger.setLevel(logging.WARNING)  # inspect_notebook announces the notebook at INFO, as if it ran it
    try:
        found = papermill.inspect_notebook(str(notebook))
    finally:
        logger.setLevel(level)
    return {name: ast.literal_eval(p["default"]) for name, p in found.items()}


def _split_scoped(parameters: Mapping[str, Any]) -> tuple[dict, dict]:
    from ..methods import METHODS

    common, scoped = {}, {}
    for key, value in parameters.items():
        if "." in key:
            method, name = key.split(".", 1)
            if method not in METHODS:
                raise ConfigError(f"-p {key}: {method!r} is not a method ({', '.join(METHODS)}). Fix: write "
                                  "-p METHOD.NAME VALUE, e.g. -p spreading.temperature 0.2.")
            scoped.setdefault(method, {})[name] = value
        elif key == "method":
            raise ConfigError("-p method: the methods come from --methods. Fix: --methods a,b.")
        else:
            common[key] = value
    return common, scoped


def _shown(path: Path | str) -> str:
    from ..paths import shown_path

    return shown_path(path)


def _executed_dir(standin: bool, results_dir: Optional[str], size: Optional[str] = None) -> Path:
    from ..results import results_base

    return results_base(standin=standin, results_dir=results_dir, size=size) / "executed"


def plan_table(table: str, *, methods: Optional[Sequence[str]] = None, data_root: Optional[str] = None,
               params_dir: str | Path = "params", standin_size: Optional[str] = None, gpus: int = 1,
               device: Optional[str] = None, parameters: Optional[Mapping[str, Any]] = None) -> list[MethodPlan]:
    """What :func:`run_table` would run, with each method's parameters checked (``plan.error`` if refused)."""
    from ..methods import METHODS
    from .distributed_row import check_gpus, resolve_row, torchrun_command

    spec = get_table(table)
    chosen = list(methods) if methods else list(spec.methods)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or len(set(chosen)) != len(chosen):
        raise ConfigError(f"--methods {','.join(chosen)}: unknown or repeated {unknown or 'names'}. Fix: choose "
                          f"from the rows of {table}: {','.join(spec.methods)}.")
    if gpus < 1:
        raise ConfigError(f"--gpus {gpus}: need at least 1. Fix: --gpus 1 (one process) or N > 1 (torchrun).")
    notebook = REPO_ROOT / "notebooks" / f"{table}.ipynb"
    if not notebook.is_file():
        raise ConfigError(f"{notebook} is missing. Fix: python tools/make_notebooks.py.")
    defaults = notebook_defaults(notebook)
    common, scoped = _split_scoped(parameters or {})
    given = {k: v for k, v in (("data_root", data_root), ("standin_size", standin_size), ("device", device))
             if v is not None}
    clash = [k for k in given if k in common and common[k] != given[k]]
    if clash:
        raise ConfigError(f"{clash} given both as an option and with -p. Fix: give each once.")
    plans = []
    for method in chosen:
        injected = {"method": method, **given, **common, **scoped.get(method, {})}
        # None in a parameters cell means "not given" (run_notebook_row drops it too)
        namespace = {k: v for k, v in {**defaults, **injected}.items() if v is not None}
        params_file = namespace.get("params_file")
        if namespace.get("data_root") is not None and params_file is None:
            candidate = Path(params_dir) / table / f"{method}.yaml"
            candidate = candidate if candidate.is_absolute() else REPO_ROOT / candidate
            if candidate.is_file():
                params_file = injected["params_file"] = namespace["params_file"] = _shown(candidate)
        results_dir = namespace.get("output_dir")
        standin = namespace.get("data_root") is None
        size = namespace.get("standin_size") or "default"
        plan = MethodPlan(table, method, notebook,
                          _executed_dir(standin, results_dir, size) / f"{table}__{method}.ipynb",
                          injected, namespace, params_file, standin, results_dir, size=size if standin else None)
        try:  # the notebook's own check (run_notebook_row), before anything runs
            overrides = {k: v for k, v in namespace.items() if k != "params_file"}
            resolved = resolve_row(table, params_file, overrides)
            plan.files = resolved["files"]
            if resolved["standin"] and not standin:  # stand-in folders given as data_root: stand-in results
                plan.standin, plan.size = True, resolved["run"].data.standin_size
                plan.output = _executed_dir(True, results_dir, plan.size) / plan.output.name
            root = namespace.get("data_root")
            if root is not None and not Path(root).expanduser().is_dir():
                raise ConfigError(f"data_root {root!r} does not exist. Fix: --data-root <folder holding the "
                                  "datasets' own folders>, or leave it out for the stand-in.")
            check_gpus(namespace.get("device"), gpus)
            if gpus > 1 and method != "pretrained":
                plan.train_command = torchrun_command(table, method, namespace, gpus)
        except SsmlError as exc:
            plan.error = f"{type(exc).__name__}: {exc}"
        plans.append(plan)
    return plans


def papermill_command(plan: MethodPlan) -> list:
    """The papermill CLI equivalent of the Python call run_table makes (for --dry-run and logs)."""
    cmd = ["papermill", _shown(plan.notebook), _shown(plan.output), "-k", KERNEL, "--no-progress-bar",
           "--log-output", "--cwd", str(REPO_ROOT)]
    for name, value in plan.parameters.items():
        if isinstance(value, (list, tuple, dict)):  # papermill's -p has no lists: YAML instead
            cmd += ["-y", f"{name}: {json.dumps(value)}"]
        else:
            cmd += ["-p", name, format_value(value)]
    return cmd


__all__ = ["KERNEL", "MethodPlan", "notebook_defaults", "papermill_command", "plan_table"]
