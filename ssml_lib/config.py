"""Typed, frozen configuration loaded from ``params/*.yaml`` and notebook parameters.

Papermill only *warns* about unknown parameters, and ``-p lr 1e-3`` (float) differs from ``lr: 1e-3`` in a
YAML file (the string ``'1e-3'`` under YAML 1.1), so every value is checked here before any work starts:

- unknown keys are refused, with close matches and the list of valid keys;
- ``int`` is accepted for a ``float`` field; a ``str`` is accepted for a number only if it parses cleanly and
  ``coerce_strings`` is on (the default: that is what rescues YAML's ``'1e-3'``); ``bool`` never comes from an
  ``int`` (nor an ``int`` from a ``bool``); NaN is refused for every number;
- ``Optional[...]``, ``Literal[...]`` (choices), ``tuple[X, ...]``, ``list[X]``, ``dict[str, X]`` and nested
  config dataclasses (from nested dicts) are supported.

``None`` is a value, not "keep the default": it is only valid for an ``Optional`` field. To keep a default,
leave the key out.

Keys may be nested dicts (``{'data': {'data_root': ...}}``), dotted (``'data.data_root'``) or flat
(``'data_root'``): a flat name that is not a top-level field is routed to the one nested config that has it;
a name found in several nested configs must be written dotted. A method's own config plugs in by being a
:class:`Config` subclass loaded with the same :func:`load_config`.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import math
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence

import yaml

from .errors import ConfigError
from .paths import REPO_ROOT


# ---------------------------------------------------------------- type checking and coercion

_NONE = type(None)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _fail(key: str, tp: Any, value: Any, fix: str) -> ConfigError:
    return ConfigError(f"{key} expects {_type_name(tp)}, got {value!r} ({type(value).__name__}). Fix: {fix}.")


def _parse_str_number(value: str, kind: type, key: str, tp: Any) -> Any:
    try:
        return kind(value.strip())
    except ValueError:
        raise _fail(key, tp, value, f"write a plain {kind.__name__} such as {'3' if kind is int else '0.001'}") from None


def coerce_value(value: Any, tp: Any, key: str, *, coerce_strings: bool = True) -> Any:
    """Return ``value`` as type ``tp`` under the rules in the module docstring, or raise ConfigError."""
    import numpy as np  # numpy scalars arrive from notebooks; checked by their abstract types

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Union or (origin is not None and getattr(origin, "__name__", "") == "UnionType"):
        if value is None and _NONE in args:
            return None
        errors = []
        for alt in (a for a in args if a is not _NONE):
            try:
                return coerce_value(value, alt, key, coerce_strings=coerce_strings)
            except ConfigError as exc:
                errors.append(str(exc))
        if value is None:
            raise _fail(key, tp, value, "None is not allowed here; leave the key out to keep the default")
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: no alternative of {_type_name(tp)} fits "
                          f"{value!r}: " + "; ".join(errors))
    if value is None:
        raise _fail(key, tp, value, "this field is not optional; leave the key out to keep the default")
    if origin is Literal:
        for choice in args:  # exact type too, so True never passes as 1
            if value == choice and type(value) is type(choice):
                return choice
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key} must be one of {list(args)}, got {value!r}{hint} Fix: pick one of the choices.")
    if tp is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise _fail(key, tp, value, "write true or false (YAML) / True or False (Python); 0 and 1 are not booleans")
    if tp is int:
        if isinstance(value, (bool, np.bool_)):
            raise _fail(key, tp, value, "write an integer, not a boolean")
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, str) and coerce_strings:
            return _parse_str_number(value, int, key, tp)
        raise _fail(key, tp, value, "write an integer without a decimal point, e.g. 10")
    if tp is float:
        if isinstance(value, (bool, np.bool_)):
            raise _fail(key, tp, value, "write a number, not a boolean")
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, str):
            out = float(value)
        elif isinstance(value, str) and coerce_strings:  # YAML 1.1 reads 1e-3 as the string '1e-3'
            out = _parse_str_number(value, float, key, tp)
        else:
            raise _fail(key, tp, value, "write a number, e.g. 0.001 (in YAML write 1.0e-3, not 1e-3)")
        if math.isnan(out):
            raise _fail(key, tp, value, "NaN is never a valid setting; give a number")
        return out if type(value) is not float else value
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, Path):
            return str(value)
        raise _fail(key, tp, value, "quote the value so it is a string (papermill: -r NAME VALUE keeps it raw)")
    if origin in (tuple, list):
        if isinstance(value, str) and coerce_strings and value.strip()[:1] in "[(":
            try:  # papermill -p cannot pass lists (papermill #363); accept a literal
                value = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                raise _fail(key, tp, value, "write a list literal such as [1, 2, 4, 8]") from None
        if not isinstance(value, (list, tuple)):
            raise _fail(key, tp, value, "write a list, e.g. [1, 2, 4, 8] (papermill: use -y or -f for lists)")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise _fail(key, tp, value, f"give exactly {len(args)} items")
            items = [coerce_value(v, a, f"{key}[{i}]", coerce_strings=coerce_strings)
                     for i, (v, a) in enumerate(zip(value, args))]
        else:
            elem = args[0] if args else Any
            items = [coerce_value(v, elem, f"{key}[{i}]", coerce_strings=coerce_strings) for i, v in enumerate(value)]
        if origin is list:
            return value if isinstance(value, list) and all(a is b for a, b in zip(items, value)) else items
        out = tuple(items)
        return value if isinstance(value, tuple) and all(a is b for a, b in zip(out, value)) else out
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _fail(key, tp, value, "write a mapping of names to values")
        ktp, vtp = args if args else (Any, Any)
        out = {coerce_value(k, ktp, f"{key} key", coerce_strings=coerce_strings):
               coerce_value(v, vtp, f"{key}[{k!r}]", coerce_strings=coerce_strings) for k, v in value.items()}
        return value if isinstance(value, dict) and all(out[k] is value[k] for k in value) else out
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return load_config(tp, overrides=value, coerce_strings=coerce_strings)
        raise _fail(key, tp, value, f"give a mapping of {tp.__name__} fields")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _fail(key, tp, value, f"give a {_type_name(tp)}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every config: after construction, each field is checked (and normalised: list -> tuple,
    int -> float) against its annotation, so a config built directly is as safe as a loaded one."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            fixed = coerce_value(value, hints[f.name], f"{type(self).__name__}.{f.name}", coerce_strings=False)
            if fixed is not value:
                object.__setattr__(self, f.name, fixed)


@dataclasses.dataclass(frozen=True)
class DataConfig(Config):
    dataset: Literal["cub200", "cars196", "sop", "gldv2", "roxford5k", "rparis6k"] = "cub200"
    data_root: Optional[str] = None  # None: generate and use the stand-in in the real layout
    standin_size: Literal["tiny", "default"] = "tiny"
    standin_seed: int = 0
    image_size: int = 224  # crop size (GoogLeNet 227 / ResNet 224 in the thesis)
    resize_size: int = 256
    num_workers: int = 0
    gldv2_fraction: float = 0.06  # the thesis's "6% GLDv2" class subset
    gldv2_subset_file: Optional[str] = None  # a user-supplied subset file replaces the seeded draw
    max_bad_images: int = 0  # unreadable images skipped (and counted) before refusing

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.image_size > 0 and self.resize_size >= self.image_size, "data.image_size",
                 f"image_size={self.image_size}, resize_size={self.resize_size}",
                 "use 0 < image_size <= resize_size")
        _require(0.0 < self.gldv2_fraction <= 1.0, "data.gldv2_fraction", self.gldv2_fraction,
                 "use a fraction in (0, 1], e.g. 0.06")
        _require(self.num_workers >= 0 and self.max_bad_images >= 0, "data.num_workers/max_bad_images",
                 (self.num_workers, self.max_bad_images), "use non-negative integers")


@dataclasses.dataclass(frozen=True)
class EvalConfig(Config):
    ks: tuple[int, ...] = (1, 2, 4, 8)  # Recall@K; SOP uses (1, 10, 100)
    nmi: bool = True
    nmi_average: Literal["arithmetic", "geometric"] = "arithmetic"
    kmeans_backend: Literal["auto", "sklearn", "faiss"] = "auto"
    kmeans_restarts: int = 1
    kmeans_seed: int = 0
    knn_backend: Literal["auto", "faiss", "torch"] = "auto"  # auto: faiss when installed
    batch_size: int = 128
    device: Literal["auto", "cpu", "cuda"] = "auto"
    scales: tuple[float, ...] = (1.0,)  # multi-scale descriptors for the revisited benchmarks
    normalize: bool = True  # L2-normalise embeddings before search

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(len(self.ks) > 0 and min(self.ks) >= 1, "eval.ks", self.ks, "give positive integers, e.g. [1, 2, 4, 8]")
        _require(len(self.scales) > 0 and min(self.scales) > 0, "eval.scales", self.scales, "give positive floats, e.g. [1.0]")
        _require(self.batch_size >= 1 and self.kmeans_restarts >= 1, "eval.batch_size/kmeans_restarts",
                 (self.batch_size, self.kmeans_restarts), "use positive integers")


@dataclasses.dataclass(frozen=True)
class RunConfig(Config):
    """One notebook run: which table, which method, on which data, evaluated how."""

    table: str
    method: str  # checked against ssml_lib.methods.METHODS by the methods registry, not here
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    output_dir: Optional[str] = None  # None: ssml_lib.paths.results_dir()
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    deterministic: bool = False


def _require(ok: bool, key: str, got: Any, fix: str) -> None:
    if not ok:
        raise ConfigError(f"invalid value for {key}: {got!r}. Fix: {fix}.")


# ---------------------------------------------------------------- loading


def _resolve_params_file(path: str | Path) -> Path:
    path = Path(path)
    tried = [path] if path.is_absolute() else [Path.cwd() / path, REPO_ROOT / path, REPO_ROOT / "params" / path]
    for p in tried:
        if p.is_file():
            return p
    raise ConfigError(f"params file {str(path)!r} not found (tried: {', '.join(map(str, tried))}). "
                      "Fix: give a path relative to the repository root, e.g. 'params/table7_gldv2/insclr.yaml'.")


def read_params_file(path: str | Path) -> dict:
    """Read one YAML params file into a dict (empty file -> ``{}``)."""
    p = _resolve_params_file(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}. Fix: correct the syntax at the position shown.") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of parameter names to values, got {type(data).__name__}. "
                          "Fix: write 'name: value' lines at the top level.")
    return data


def _routes(cls: type) -> dict[str, tuple[str, ...]]:
    """Flat name -> field path. Top-level fields win; nested names are added when unambiguous."""
    hints = typing.get_type_hints(cls)
    routes: dict[str, tuple[str, ...]] = {}
    nested: dict[str, list[tuple[str, ...]]] = {}
    for f in dataclasses.fields(cls):
        routes[f.name] = (f.name,)
        sub = hints[f.name]
        if isinstance(sub, type) and dataclasses.is_dataclass(sub):
            for name, path in _routes(sub).items():
                nested.setdefault(name, []).append((f.name, *path))
    for name, paths in nested.items():
        if name not in routes and len(paths) == 1:
            routes[name] = paths[0]
    return routes


def _ambiguous(cls: type, name: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        sub = hints[f.name]
        if isinstance(sub, type) and dataclasses.is_dataclass(sub) and name in _routes(sub):
            out.append(f"{f.name}.{'.'.join(_routes(sub)[name])}")
    return out


def _unknown_key_error(cls: type, key: str, where: str, prefix: str = "") -> ConfigError:
    valid = sorted(_routes(cls))
    amb = _ambiguous(cls, key)
    if len(amb) > 1:
        return ConfigError(f"parameter {key!r} ({where}) is ambiguous for {cls.__name__}: it exists as "
                           f"{', '.join(amb)}. Fix: write the dotted name, e.g. {amb[0]!r}.")
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(prefix + c) for c in close)}?" if close else ""
    return ConfigError(f"unknown parameter {prefix + key!r} ({where}) for {cls.__name__}.{hint} "
                       f"Valid keys: {', '.join(valid)}. Fix: correct or remove the name "
                       "(papermill only warns about unknown parameters; ssml_lib refuses them).")


def _subtree(tree: dict, key: str) -> dict:
    """The dict under ``key``, made from a config instance given earlier so later keys merge into it."""
    node = tree.get(key)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        node = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
    tree[key] = node if isinstance(node, dict) else {}
    return tree[key]


def _merge_into(cls: type, tree: dict, mapping: Mapping[str, Any], where: str, strict: bool,
                prefix: str = "") -> None:
    """Place each key of ``mapping`` into the nested ``tree`` along its route (later calls override)."""
    routes = _routes(cls)
    hints = typing.get_type_hints(cls)
    for key, value in mapping.items():
        head, _, rest = str(key).partition(".")
        if rest:  # dotted: descend into the named nested config
            sub = hints.get(head) if head in {f.name for f in dataclasses.fields(cls)} else None
            if not (isinstance(sub, type) and dataclasses.is_dataclass(sub)):
                if strict:
                    raise _unknown_key_error(cls, str(key), where, prefix)
                continue
            _merge_into(sub, _subtree(tree, head), {rest: value}, where, strict, f"{prefix}{head}.")
            continue
        if key not in routes:
            if strict:
                raise _unknown_key_error(cls, str(key), where, prefix)
            continue
        path = routes[key]
        sub = hints.get(path[0])
        if len(path) == 1 and isinstance(value, Mapping) and isinstance(sub, type) and dataclasses.is_dataclass(sub):
            _merge_into(sub, _subtree(tree, key), value, where, strict, f"{prefix}{key}.")
            continue
        node = tree
        for part in path[:-1]:
            node = _subtree(node, part)
        node[path[-1]] = value


def _build(cls: type, tree: dict, coerce_strings: bool) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    missing = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if f.name in tree:
            value = tree[f.name]
            if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
                kwargs[f.name] = _build(tp, value, coerce_strings)
            else:
                kwargs[f.name] = coerce_value(value, tp, f"{cls.__name__}.{f.name}", coerce_strings=coerce_strings)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            missing.append(f.name)
    if missing:
        raise ConfigError(f"{cls.__name__} needs {', '.join(map(repr, missing))}, which no params file or "
                          "override gives. Fix: pass them, e.g. as notebook parameters or '-p NAME VALUE'.")
    return cls(**kwargs)


def load_config(cls: type, params_file: str | Path | Sequence[str | Path] | None = None,
                overrides: Mapping[str, Any] | None = None, *, strict: bool = True,
                coerce_strings: bool = True) -> Any:
    """Build a ``cls`` instance from YAML params file(s) (later files win) and then ``overrides``.

    ``strict=False`` drops unknown keys instead of refusing them (for mappings that carry other things too).
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ConfigError(f"load_config needs a config dataclass, got {cls!r}. Fix: pass e.g. RunConfig.")
    files = [] if params_file is None else [params_file] if isinstance(params_file, (str, Path)) else list(params_file)
    tree: dict = {}
    for f in files:
        _merge_into(cls, tree, read_params_file(f), f"in {f}", strict)
    if overrides:
        _merge_into(cls, tree, overrides, "in overrides", strict)
    return _build(cls, tree, coerce_strings)


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


def to_dict(cfg: Any) -> dict:
    """Plain, JSON/YAML-safe dict (tuples become lists) for provenance and round trips."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v
    return plain(cfg)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write ``cfg`` as YAML (atomically); ``load_config(type(cfg), path)`` reads it back equal."""
    from .io import atomic_write_text

    return atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
