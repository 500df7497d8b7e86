"""Several configs from one flat set of parameters, and the parameters of a notebook's namespace (part of
:mod:`ssml_lib.config`, which re-exports these names)."""
from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config_files import read_params_file
from .config_routing import _routes
from .config_types import load_config
from .errors import ConfigError


def load_configs(classes: Mapping[str, type], params_file: str | Path | Sequence[str | Path] | None = None,
                 overrides: Mapping[str, Any] | None = None, *, coerce_strings: bool = True,
                 also_valid: Sequence[str] = ()) -> dict[str, Any]:
    """Several configs from one flat set of parameters, e.g. ``{'run': RunConfig, 'method': SpreadingConfig}``.

    Each key goes to the one class that knows it (or is written ``'<name>.<key>'``); a key no class knows, or
    that several know, is refused. Notebook parameters are identifiers, so method configs should not reuse
    :class:`RunConfig`'s names. ``also_valid``: names the caller routes elsewhere (training and method keys),
    listed among the valid keys and the close matches of a refused name.
    """
    files = [] if params_file is None else [params_file] if isinstance(params_file, (str, Path)) else list(params_file)
    merged: dict[str, Any] = {}
    for f in files:
        merged.update({str(k): (k, v, f"in {f}") for k, v in read_params_file(f).items()})
    merged.update({str(k): (k, v, "in overrides") for k, v in (overrides or {}).items()})
    parts: dict[str, dict] = {name: {} for name in classes}
    for key, (_, value, where) in merged.items():
        head, _, rest = key.partition(".")
        if head in classes and rest:
            parts[head][rest] = value
            continue
        owners = [n for n, c in classes.items() if head in _routes(c)]
        if len(owners) != 1:
            if owners:
                raise ConfigError(f"parameter {key!r} ({where}) is known to several configs: {owners}. Fix: write "
                                  f"'{owners[0]}.{key}' in YAML/overrides, or rename the field in one config.")
            valid = sorted({k for c in classes.values() for k in _routes(c)} | set(also_valid))
            close = difflib.get_close_matches(head, valid, n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"unknown parameter {key!r} ({where}).{hint} Valid keys: {', '.join(valid)}. Fix: "
                              "correct or remove the name (papermill only warns; ssml_lib refuses).")
        parts[owners[0]][key] = value
    return {name: load_config(cls, overrides=parts[name], coerce_strings=coerce_strings) for name, cls in classes.items()}


# Names IPython and Jupyter put in a notebook's namespace; never parameters.
_NOTEBOOK_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open", "display"}


def notebook_parameters(namespace: Mapping[str, Any], names: Sequence[str] | None = None) -> dict:
    """The parameters in a notebook namespace: ``names`` if given, else every public name that is not a
    module, function, class or IPython builtin (so a parameter injected by papermill under a mistyped name
    is caught, not silently ignored)."""
    if names is not None:
        absent = [n for n in names if n not in namespace]
        if absent:
            raise ConfigError(f"notebook parameters {absent} are not defined. Fix: define them in the "
                              "'parameters' cell, or drop them from names.")
        return {n: namespace[n] for n in names}
    out = {}
    for name, value in namespace.items():
        if name.startswith("_") or name in _NOTEBOOK_NAMES:
            continue
        if callable(value) or isinstance(value, type(typing)):
            continue  # modules, functions, classes
        out[name] = value
    return out


def config_from_notebook(cls: type | Mapping[str, type], namespace: Mapping[str, Any],
                         names: Sequence[str] | None = None, *,
                         params_file: str | Path | Sequence[str | Path] | None = None) -> Any:
    """``load_config(cls, params_file, notebook_parameters(namespace, names))``: call it in the cell after
    the parameters cell, as ``cfg = config_from_notebook(RunConfig, globals())``. With a mapping of classes
    (``{'run': RunConfig, 'method': SpreadingConfig}``) it returns a dict of configs, as :func:`load_configs`."""
    params = notebook_parameters(namespace, names)
    if isinstance(cls, Mapping):
        return load_configs(cls, params_file, params)
    return load_config(cls, params_file, params)
