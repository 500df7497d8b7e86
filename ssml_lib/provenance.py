"""Provenance records: where a number in ``results/`` came from.

Every record holds the git commit (and whether the tree was dirty), the resolved parameters, package versions,
the device, a UTC timestamp, the wall time, and whether the data were the synthetic stand-in or the real
dataset with its fingerprint. Hostnames and user names are deliberately not recorded.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

from .paths import REPO_ROOT

SCHEMA_VERSION = 1

# distribution names on PyPI, in the order they are reported
_PACKAGES = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "numpy": ("numpy",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss"),
    "scikit-learn": ("scikit-learn",),
    "pytorch-metric-learning": ("pytorch-metric-learning",),
    "pandas": ("pandas",),
    "adamp": ("adamp",),
    "ssml_lib": ("ssml_lib", "ssml-lib"),
}

# small text/metadata files whose *content* defines a split or a ground truth; images are fingerprinted by
# relative path and size only, which is what keeps this fast on a million-file tree
LIST_SUFFIXES = (".txt", ".csv", ".pkl", ".mat", ".json", ".tsv")
_MAX_CONTENT_BYTES = 64 << 20


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> dict:
    """``{'commit': sha or None, 'dirty': bool or None}``; None where git or a commit is unavailable.

    ``dirty`` says whether tracked files *outside* ``results/`` differ from the commit: the code and settings that
    made a result. Results themselves are written while a table is being recorded, and do not make it dirty.
    """
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "note": "no git executable, repository or commit"}
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _version(dists: Iterable[str]) -> str:
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "absent"


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    versions.update({name: _version(dists) for name, dists in _PACKAGES.items()})
    if versions["ssml_lib"] == "absent":  # run from a checkout without `pip install -e .`
        versions["ssml_lib"] = _pyproject_version()
    return versions


def _pyproject_version() -> str:
    try:
        import tomllib

        with open(REPO_ROOT / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"]) + " (source tree)"
    except (OSError, KeyError, ImportError, ValueError):
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info() -> dict:
    info: dict[str, Any] = {"cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
                            "platform": f"{platform.system()} {platform.machine()}"}
    try:
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        info["cuda_count"] = n
        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(n)]
        info["cuda_version"] = torch.version.cuda
    except ImportError:
        info["cuda_count"] = 0
        info["cuda_devices"] = []
    info["summary"] = (f"{info['cuda_count']}x {info['cuda_devices'][0]}" if info["cuda_count"]
                       else f"CPU ({info['cpu_model']}, {info['cpu_count']} cores)")
    return info


def _plain(obj: Any) -> Any:
    """JSON-safe copy of resolved parameters (dataclass configs, tuples, paths, numpy scalars)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        from .config import to_dict

        return to_dict(obj)
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


def collect_provenance(params: Any, *, standin: bool, data_fingerprint: str | None,
                       wall_time_s: float | None, extra: Mapping[str, Any] | None = None) -> dict:
    """The provenance record written next to every result (``results/<table>/<method>.json``)."""
    if not isinstance(standin, bool):
        from .errors import ConfigError

        raise ConfigError(f"standin must be True or False, got {standin!r}. Fix: say whether the data were the "
                          "synthetic stand-in (True) or the real dataset (False).")
    return {
        "schema": SCHEMA_VERSION,
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
        "params": _plain(params),
        "packages": package_versions(),
        "device": device_info(),
        "data": {"standin": standin, "label": "STAND-IN DATA" if standin else "real data",
                 "fingerprint": data_fingerprint},
        "wall_time_s": None if wall_time_s is None else float(wall_time_s),
        "extra": _plain(dict(extra)) if extra else {},
    }


def fingerprint_files(paths: str | os.PathLike | Iterable[str | os.PathLike], *, root: str | os.PathLike | None = None,
                      sample: int | None = None) -> str:
    """sha256 over sorted relative paths and sizes, plus the content of list/ground-truth files.

    ``paths`` is a folder (walked) or an iterable of files; relative paths are taken against ``root`` (default:
    the folder, or the files' common parent). ``sample=N`` stats only N evenly spaced non-list files (the
    total file count is always hashed), which keeps a million-image tree to seconds.
    """
    if isinstance(paths, (str, os.PathLike)) and Path(paths).is_dir():
        base = Path(root) if root is not None else Path(paths)
        files = sorted(Path(d) / f for d, _, names in os.walk(paths) for f in names)
    else:
        files = sorted(Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths))
        base = Path(root) if root is not None else (Path(os.path.commonpath(files)) if files else Path("."))
        if base in files or base.is_file():
            base = base.parent
    lists = [f for f in files if f.suffix.lower() in LIST_SUFFIXES]
    others = [f for f in files if f.suffix.lower() not in LIST_SUFFIXES]
    if sample is not None and 0 < sample < len(others):
        step = len(others) / sample
        others = [others[int(i * step)] for i in range(sample)]
    h = hashlib.sha256(f"files={len(files)}\n".encode())
    for f in sorted(lists + others):
        rel = f.relative_to(base).as_posix() if f.is_relative_to(base) else f.as_posix()
        size = f.stat().st_size
        h.update(f"{rel}\t{size}\n".encode())
        if f.suffix.lower() in LIST_SUFFIXES:
            with open(f, "rb") as fh:
                h.update(fh.read(_MAX_CONTENT_BYTES))  # a huge train.csv: its head plus its size suffice
    return "sha256:" + h.hexdigest()
