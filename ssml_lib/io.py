"""Atomic writes, hashing and a restricted unpickler for untrusted ground-truth files."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import UnsafePickleError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    On an exception the temporary file is removed and ``path`` is left as it was, so readers never see a
    half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock named after ``path`` for the block: concurrent processes that would build
    the same cached thing at ``path`` (a stand-in folder, stand-in pre-trained weights) take turns, and the later
    ones find it built instead of building it again. The lock file lives in the temp folder (``ssml-locks/``,
    named by a hash of the absolute path), so nothing is written beside ``path``; the lock goes with its process,
    so a killed build leaves none held. Where ``fcntl`` is missing (Windows) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    key = hashlib.sha256(str(Path(path).absolute()).encode()).hexdigest()[:32]
    lock = Path(tempfile.gettempdir()) / "ssml-locks" / f"{key}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def torch_file_problem(path: str | os.PathLike) -> str | None:
    """None when ``path`` starts like a file ``torch.save`` writes (a zip archive, or a legacy pickle), else what
    it looks like instead (empty, text, something else), so a loader can name the file before torch.load fails
    with an unrelated error (a text file gives ``IndexError: pop from empty list`` or ``KeyError``)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return None
    if not head:
        return "it is empty (0 bytes)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"it starts with the bytes {head[:8]!r}, neither a zip archive nor a pickle"
    first = text.splitlines()[0][:40] if text.strip() else repr(text[:20])
    return f"it is a text file (it starts with {first!r})"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# Plain containers and scalars are built by pickle opcodes without find_class; only these globals may be
# named. NumPy arrays (as in some gnd files) need their reconstructors and dtypes.
_ALLOWED_GLOBALS = {
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "float"), ("builtins", "str"),
    ("builtins", "bytes"), ("builtins", "bool"), ("builtins", "complex"),
    ("collections", "OrderedDict"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # protocol-2 pickles of NumPy arrays rebuild their byte buffers with it
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to unpickle {module}.{name}: ground-truth pickles may hold only plain containers and "
            "NumPy arrays. Re-download the file from its official source, or convert it to plain lists/dicts."
        )


def safe_pickle_load(path: str | os.PathLike) -> Any:
    """Load a pickle that may only contain plain containers, scalars and NumPy arrays."""
    with open(path, "rb") as f:
        data = f.read()
    return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
