"""Find a dataset's top folder and its files, with errors that say what is missing and how to fix it.

Users often pass the parent folder (``data/`` instead of ``data/CUB_200_2011``) or a sub-folder
(``CUB_200_2011/images``). We look one or two levels around the given path for a folder that holds the
dataset's marker files and name it in the error ("did you mean ...?"); we never silently switch folders,
so the path a run records is the path the user gave.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import ConfigError, DatasetError

# Image folders can hold 10^5 entries; looking around for a mis-laid root must stay cheap.
_MAX_ENTRIES_PER_DIR = 500


def _subdirs(path: Path) -> list[Path]:
    out = []
    try:
        with os.scandir(path) as it:
            for n, entry in enumerate(it):
                if n >= _MAX_ENTRIES_PER_DIR:
                    break
                if entry.name.startswith(".") or not entry.is_dir():
                    continue
                out.append(Path(entry.path))
    except OSError:
        return []
    return sorted(out)


def _looks_right(path: Path, markers: Sequence[str]) -> bool:
    return any((path / m).exists() for m in markers)


def _nearby_roots(root: Path, markers: Sequence[str]) -> list[Path]:
    """Folders near ``root`` (children, grandchildren, parent, grandparent) that hold a marker file."""
    found = []
    children = _subdirs(root)
    for child in children:
        if _looks_right(child, markers):
            found.append(child)
    if not found:
        for child in children:
            found.extend(g for g in _subdirs(child) if _looks_right(g, markers))
    for up in list(root.resolve().parents)[:2]:
        if _looks_right(up, markers):
            found.append(up)
    return found


def resolve_root(name: str, root, markers: Sequence[str], expected: str) -> Path:
    """Return ``root`` as a Path if it holds any of ``markers``, else raise a DatasetError.

    ``expected`` describes the folder in words for the message, e.g. "CUB_200_2011/ with images.txt".
    """
    if root is None or str(root) == "":
        raise DatasetError(f"{name}: no data root given. Pass root=<path to {expected}>.")
    root = Path(root).expanduser()
    if not root.exists():
        hint = ""
        near = [p for p in _nearby_roots(root.parent, markers)] if root.parent.is_dir() else []
        if near:
            hint = f" Did you mean {near[0]}?"
        raise DatasetError(
            f"{name}: the data root {root} does not exist.{hint} Pass the dataset's own top folder "
            f"({expected}); datasets cannot be downloaded here, copy or mount them first."
        )
    if not root.is_dir():
        raise DatasetError(f"{name}: the data root {root} is a file, not a folder. Pass the folder {expected}.")
    if _looks_right(root, markers):
        return root
    near = _nearby_roots(root, markers)
    if len(near) == 1:
        raise DatasetError(
            f"{name}: {root} does not look like {expected} (none of {', '.join(markers)} is there). "
            f"Did you mean {near[0]}? Pass that folder as root."
        )
    if near:
        listed = ", ".join(str(p) for p in near[:5])
        raise DatasetError(
            f"{name}: {root} does not look like {expected}; several folders nearby do: {listed}. "
            "Pass the one you mean as root."
        )
    raise DatasetError(
        f"{name}: {root} does not look like {expected}: none of {', '.join(markers)} was found there or in "
        "the folders around it. Pass the dataset's own top folder as root (datasets cannot be downloaded here)."
    )


def require_file(name: str, root: Path, relative: str, fix: str) -> Path:
    """``root / relative`` if it is a file, else a DatasetError naming it and ``fix``."""
    path = root / relative
    if not path.is_file():
        raise DatasetError(f"{name}: missing {relative} under {root}. {fix}")
    return path


def require_dir(name: str, root: Path, relative: str, fix: str) -> Path:
    path = root / relative
    if not path.is_dir():
        raise DatasetError(f"{name}: missing the image folder {relative}/ under {root}. {fix}")
    return path


def check_choice(what: str, value, choices: Iterable, context: str = "") -> None:
    """Raise ConfigError for a value outside ``choices``, suggesting the closest one."""
    choices = list(choices)
    if value in choices:
        return
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    where = f" for {context}" if context else ""
    raise ConfigError(f"unknown {what} {value!r}{where}; choose one of {choices}.{hint}")
