"""Notebook parameters on a command line: ``-p NAME VALUE`` typed as papermill types them, and back.

Shared by ``train_row`` (which reads them) and ``distributed_row`` / ``run_table`` (which write them for a
``torchrun ... train_row`` command), so neither of those modules imports the other for it.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from ..errors import ConfigError


def coerce_value(text: str) -> Any:
    """Type a command-line value as papermill's ``-p`` does; a bracketed value is a JSON list."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"{text!r} looks like a list but is not valid JSON. Fix: write it as e.g. "
                              "'[7, 9]' (quoted in the shell).") from None
    return text


def format_value(value: Any) -> str:
    """A value as ``-p`` text that :func:`coerce_value` reads back unchanged (else a ConfigError)."""
    text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    if coerce_value(text) != value and not (isinstance(value, tuple) and coerce_value(text) == list(value)):
        raise ConfigError(f"value {value!r} cannot be passed on a command line without changing its type. Fix: "
                          "put it in a params file.")
    return text


def parse_pairs(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """``[['epochs', '1'], ...]`` from argparse's ``-p NAME VALUE`` into ``{'epochs': 1, ...}`` (last one wins)."""
    return {name: coerce_value(value) for name, value in (pairs or [])}
