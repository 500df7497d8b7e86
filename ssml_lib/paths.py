"""Where things live. Every path the package writes derives from here, so papermill and nbval (which run with
different working directories) agree."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Root for generated stand-in data, cached stand-in pre-training and checkpoints.

    ``SSML_CACHE`` overrides the default ``<repo>/.ssml``.
    """
    return Path(os.environ.get("SSML_CACHE", REPO_ROOT / ".ssml"))


def standin_root() -> Path:
    return cache_dir() / "standin"


def results_dir() -> Path:
    """``SSML_RESULTS`` overrides the default ``<repo>/results``."""
    return Path(os.environ.get("SSML_RESULTS", REPO_ROOT / "results"))


def runs_dir() -> Path:
    return Path(os.environ.get("SSML_RUNS", REPO_ROOT / "runs"))


def recording() -> bool:
    """True inside ``python -m ssml_lib.experiments.record`` (it sets ``SSML_RECORD=1`` for its notebooks)."""
    return os.environ.get("SSML_RECORD") == "1"


def standin_results_base(size: str | None = None) -> Path:
    """The folder of stand-in results (``<table>/``, ``<table>.md``, ``figures/``, ``executed/``).

    The committed ``results/standin/`` is written only by the record command (or where ``SSML_RESULTS`` says,
    as tests do); every other stand-in run -- a notebook, the demo, nbval, ``run_table`` -- writes to
    ``runs/results/standin-<size>/`` (git-ignored), so no run overwrites a recorded result and sizes never mix.
    """
    if recording() or "SSML_RESULTS" in os.environ:
        return results_dir() / "standin"
    return runs_dir() / "results" / f"standin-{size or 'default'}"


def shown_path(path: str | os.PathLike) -> str:
    """``path`` relative to the repository when it lies inside it (records stay valid in any clone)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
