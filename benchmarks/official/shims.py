"""The shims that let official code written for older NumPy / scikit-learn / faiss-gpu run here.

Each returns (or yields) the sentence the row records, so every departure from "as released" is in the
provenance. None changes what a function computes: they restore a removed alias, drop an argument that only
chose a thread count, route a GPU-only call to the CPU index, or silence a logger.
"""
from __future__ import annotations

import logging
import types
from contextlib import contextmanager
from typing import Iterator

import numpy as np


def numpy_with_in1d() -> tuple[types.ModuleType, list[str]]:
    """A stand-in for ``numpy`` that also has ``in1d`` (removed in NumPy 2.4) as ``isin`` on flattened input."""
    if hasattr(np, "in1d"):
        return np, []
    proxy = types.ModuleType("numpy")
    proxy.__dict__.update(np.__dict__)
    proxy.in1d = lambda a, b, **kw: np.isin(np.ravel(a), b, **kw)
    return proxy, [f"numpy.in1d (removed in NumPy {np.__version__.rsplit('.', 1)[0]}) given as numpy.isin on "
                   "the flattened input (the same values)"]


def era_kmeans() -> tuple[type, list[str]]:
    """sklearn's KMeans as the 2019 code called it: ``n_jobs`` accepted and ignored (removed in sklearn 1.0; it
    only set threads, and the suite runs one), ``n_init`` 10 unless given (the default of that era; today's
    default is "auto", one run for k-means++)."""
    import sklearn
    from sklearn.cluster import KMeans

    class KMeansOfThatEra(KMeans):
        def __init__(self, n_clusters=8, *, n_init=10, n_jobs=None, **kwargs):
            super().__init__(n_clusters=n_clusters, n_init=n_init, **kwargs)
            self.n_jobs = n_jobs  # sklearn's get_params reads every __init__ argument back

    KMeansOfThatEra.__name__ = "KMeans"
    return KMeansOfThatEra, [f"sklearn {sklearn.__version__} KMeans: n_jobs dropped (removed in 1.0; threads only), "
                             "n_init defaults to 10 as in the sklearn the code was written for"]


@contextmanager
def faiss_gpus_on_cpu(on_gpu: bool) -> Iterator[list[str]]:
    """On a CPU run, ``faiss.index_cpu_to_all_gpus(index)`` returns the CPU index (faiss-cpu cannot copy it)."""
    import faiss

    if on_gpu:
        yield []
        return
    saved = getattr(faiss, "index_cpu_to_all_gpus", None)
    faiss.index_cpu_to_all_gpus = lambda index, *a, **k: index
    try:
        yield ["faiss.index_cpu_to_all_gpus returns the CPU index (a CPU run; the same exact IndexFlatIP search)"]
    finally:
        if saved is None:
            del faiss.index_cpu_to_all_gpus
        else:
            faiss.index_cpu_to_all_gpus = saved


def quiet_module(module: types.ModuleType) -> list[str]:
    """Replace a module's ``setup_logger`` (adds a stdout handler to the root logger on every call) with a
    silent logger and its ``tqdm`` progress bars with a pass-through."""
    shims = []
    if hasattr(module, "setup_logger"):
        silent = logging.getLogger(f"ssml.benchmarks.silenced.{module.__name__}")
        silent.addHandler(logging.NullHandler())
        silent.propagate = False
        module.setup_logger = lambda *a, **k: silent
        shims.append("setup_logger returns a silent logger (the released one adds a root stdout handler per call)")
    if hasattr(module, "tqdm"):
        module.tqdm = lambda iterable, *a, **k: iterable
        shims.append("tqdm progress bars off")
    return shims


__all__ = ["era_kmeans", "faiss_gpus_on_cpu", "numpy_with_in1d", "quiet_module"]
