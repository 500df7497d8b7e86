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
