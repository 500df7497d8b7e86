"""Byte-stable file writers and the all-or-nothing folder build with its completion marker."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...errors import DatasetError
from ...io import atomic_write_text, file_lock, sha256_file

GENERATOR_VERSION = 2
MARKER = ".standin_complete.json"
JPEG_QUALITY = 90
_PARTIAL = ".partial-"


def save_jpeg(path: Path, img: np.ndarray, grayscale: bool = False) -> None:
    """Baseline JPEG at a fixed quality and subsampling, no EXIF: same pixels -> same bytes."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(img, "RGB")
    if grayscale:
        image = image.convert("L")
    image.save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=2, optimize=False)


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


def save_mat(path: Path, mdict: dict[str, Any]) -> None:
    """``scipy.io.savemat`` with the creation time in the header replaced by a fixed text."""
    import scipy.io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, mdict, format="5")
    data = bytearray(buffer.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, Platform: posix, written by the ssml stand-in generator".ljust(116)
    path.write_bytes(bytes(data))


def params_digest(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def content_digest(top: Path) -> tuple[int, str]:
    """(file count, SHA-256 over sorted relative paths and file hashes), the marker excluded."""
    h = hashlib.sha256()
    files = sorted(p for p in top.rglob("*") if p.is_file() and p.name != MARKER)
    for p in files:
        h.update(f"{p.relative_to(top).as_posix()}\0{sha256_file(p)}\n".encode())
    return len(files), h.hexdigest()


def read_marker(top: str | os.PathLike) -> dict[str, Any] | None:
    """The completion marker of a stand-in folder, or None if ``top`` is not a complete stand-in."""
    path = Path(top) / MARKER
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(top: Path) -> None:
    """Delete temp folders left by killed generations (their process is gone)."""
    for tmp in top.parent.glob(f".{top.name}{_PARTIAL}*"):
        pid = tmp.name[len(f".{top.name}{_PARTIAL}"):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def build_atomically(top: Path, params: dict[str, Any], write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` into a temp folder beside ``top``, add the marker last, then rename into place.

    A complete stand-in with the same parameters is returned untouched; one with other parameters is
    replaced. A folder without a marker is never touched (it may be a real dataset). Concurrent builds of the
    same folder take turns on a lock (:func:`ssml_lib.io.file_lock`), so the later ones find it built.
    """
    digest = params_digest(params)
    marker = read_marker(top)
    if marker is not None and marker.get("params_sha256") == digest:
        return top
    top.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(top):
        return _build_locked(top, params, digest, write)


def _build_locked(top: Path, params: dict[str, Any], digest: str, write: Callable[[Path], None]) -> Path:
    marker = read_marker(top)
    if marker is not None and marker.get("params_sha256") == digest:
        return top  # built by another process while this one waited
    if top.exists() and marker is None:
        raise DatasetError(
            f"{top} exists but is not a complete stand-in (no {MARKER}); it may be a real dataset or a copy "
            "made by hand. Pass another root to make_standin, or delete the folder if it is a stand-in leftover.")
    _remove_stale_partials(top)
    tmp = top.parent / f".{top.name}{_PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        write(tmp)
        count, content = content_digest(tmp)
        record = dict(params, standin=True, params_sha256=digest, files=count, content_sha256=content)
        atomic_write_text(tmp / MARKER, json.dumps(record, sort_keys=True, indent=1) + "\n")
        if top.exists():  # an older stand-in with other parameters: swap it out
            old = top.parent / f".{top.name}{_PARTIAL}{os.getpid()}-old-{uuid.uuid4().hex[:8]}"
            os.rename(top, old)
            os.rename(tmp, top)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, top)
            except OSError:
                # Another process finished the same folder first; keep its copy if it is the one we want.
                other = read_marker(top)
                if other is None or other.get("params_sha256") != digest:
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return top
