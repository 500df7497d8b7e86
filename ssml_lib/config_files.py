"""Params files: find a YAML file the way users name it, and read it into a flat mapping (part of
:mod:`ssml_lib.config`, which re-exports these names)."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import ConfigError
from .paths import REPO_ROOT


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
