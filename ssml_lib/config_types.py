"""Typed values: every value checked and coerced against its field's annotation, the :class:`Config` base,
and :func:`load_config` (params files, then overrides). Part of :mod:`ssml_lib.config`, which re-exports these
names; the rules are in its docstring."""
from __future__ import annotations

import ast
import dataclasses
import difflib
import math
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from .config_files import read_params_file
from .config_routing import _merge_into
from .errors import ConfigError


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


# ---------------------------------------------------------------- loading


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
