"""Where a parameter name goes in a nested config: flat, dotted and nested keys routed to their field, and the
errors for unknown or ambiguous names (part of :mod:`ssml_lib.config`; the rules are in its docstring)."""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Mapping

from .errors import ConfigError


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
