"""InsCLR candidate pool: each image's top-P neighbours by exact inner product, saved per stage.

The pool is computed once per training stage from the previous stage's features (official InsCLR:
``compute_candidate_pool.py``, faiss ``IndexFlatIP``, first column dropped as "self"). Here self is
excluded *by index*, so duplicate images keep each other as neighbours, and ties are broken by index.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SsmlError
from ..io import atomic_path
from ._common import as_features, check_positive_int

_KEYS = ("neighbor", "similarity")  # the official file's array names


def candidate_pool(features: Any, pool_size: int, *, exclude_self: bool = True, backend: str = "auto",
                   max_bytes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``pool_size`` neighbours of every row among all rows, by exact inner product.

    Returns ``(indices, sims)``: int64 (N, P) and float32 (N, P), each row sorted by decreasing
    similarity, ties by increasing index, on ``features``' device; every similarity is the float32 rounding of
    the exact (float64) inner product, whatever the back end or device. Features are used as given
    (L2-normalise them first for cosine similarity, as InsCLR does). The bulk is one blocked float64 matmul +
    top-k where that is cheaper (a GPU; few items on a CPU), else faiss/torch float32 proposals re-scored in
    float64 (``ssml_lib.eval.exact_search``).
    """
    from ..eval.knn import knn  # the one exact kNN of the package (faiss when importable)

    feats = as_features(features)
    n = feats.shape[0]
    pool_size = check_positive_int(pool_size, "pool_size")
    available = n - 1 if exclude_self else n
    if pool_size > available:
        raise SsmlError(f"pool_size={pool_size} but only {available} neighbours exist among {n} items "
                        f"(exclude_self={exclude_self}); use pool_size <= {available}.")
    kwargs = {} if max_bytes is None else {"max_bytes": max_bytes}
    sims, idx = knn(feats, None, k=pool_size, metric="ip", exclude_self=exclude_self, backend=backend,
                    exact_values=True, **kwargs)
    idx = torch.as_tensor(idx).to(device=feats.device, dtype=torch.int64)
    sims = torch.as_tensor(sims).to(device=feats.device, dtype=torch.float32)
    return idx, sims


def save_candidate_pool(path: str | os.PathLike, indices: Any, sims: Any) -> Path:
    """Write ``neighbor`` (int64 N x P) and ``similarity`` (float32 N x P) to ``path`` (.npz), atomically."""
    idx = np.asarray(torch.as_tensor(indices).cpu(), dtype=np.int64)
    sim = np.asarray(torch.as_tensor(sims).float().cpu(), dtype=np.float32)
    _check_pool_arrays(idx, sim, str(path))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object keeps savez from adding ".npz"
        np.savez(f, neighbor=idx, similarity=sim)
    return Path(path)


def load_candidate_pool(path: str | os.PathLike, *, num_items: int | None = None,
                        device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Read a pool written by :func:`save_candidate_pool` (or the official tool); checked before use."""
    path = Path(path)
    if not path.is_file():
        raise SsmlError(f"candidate pool file {path} does not exist; compute it with candidate_pool(...) "
                        f"and save_candidate_pool(...) for this stage first.")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in _KEYS if k not in data.files]
        if missing:
            raise SsmlError(f"{path} lacks array(s) {missing} (has {data.files}); it is not a candidate pool "
                            f"file. Recompute it with save_candidate_pool.")
        idx, sim = data["neighbor"], data["similarity"]
    _check_pool_arrays(idx, sim, str(path))
    if num_items is not None and idx.shape[0] != num_items:
        raise SsmlError(f"{path} has {idx.shape[0]} rows but the dataset has {num_items} items; the pool "
                        f"belongs to another dataset or subset. Recompute it for this dataset.")
    return (torch.from_numpy(idx.astype(np.int64)).to(device),
            torch.from_numpy(sim.astype(np.float32)).to(device))


def _check_pool_arrays(idx: np.ndarray, sim: np.ndarray, where: str) -> None:
    if idx.ndim != 2 or idx.shape != sim.shape:
        raise SsmlError(f"{where}: neighbour indices {idx.shape} and similarities {sim.shape} must be two "
                        f"N x P arrays of the same shape; recompute the pool.")
    if not np.issubdtype(idx.dtype, np.integer):
        raise SsmlError(f"{where}: neighbour indices must be integers, got {idx.dtype}; recompute the pool.")
    if idx.size and (idx.min() < 0 or idx.max() >= idx.shape[0]):
        raise SsmlError(f"{where}: neighbour indices must lie in [0, {idx.shape[0]}), found "
                        f"[{idx.min()}, {idx.max()}]; the file is corrupt or from another dataset.")
