"""Side-by-side timing: one thread each side, the same inputs, alternating repeats, medians.

Every callable is run in turn (ssml, official, ssml before the speed-up where given), repeatedly, until each
has run ``min_repeats`` times and the block has used ``budget_s`` seconds (or ``max_repeats`` is reached); the
first call of each is a warm-up and not counted when a call takes under a second. CUDA is synchronised around
every call.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import torch


@contextmanager
def single_thread() -> Iterator[dict]:
    """torch, the BLAS/OpenMP pools (threadpoolctl) and faiss limited to one thread; restored after."""
    info = {"torch_threads": 1}
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    limits = None
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(1)
        info["threadpoolctl"] = "1 thread for every BLAS/OpenMP pool"
    except ImportError:
        info["threadpoolctl"] = "not installed: NumPy's BLAS may use more than one thread"
    faiss_old = None
    try:
        import faiss

        faiss_old = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        info["faiss_threads"] = 1
    except ImportError:
        pass
    try:
        yield info
    finally:
        torch.set_num_threads(old)
        if limits is not None:
            limits.unregister()
        if faiss_old is not None:
            import faiss

            faiss.omp_set_num_threads(faiss_old)


def _timed(fn: Callable, device: torch.device) -> tuple[float, object]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, out


def side_by_side(fns: dict[str, Callable], device: torch.device, *, budget_s: float = 30.0, min_repeats: int = 3,
                 max_repeats: int = 15, slow_s: float = 60.0) -> tuple[dict, dict]:
    """Medians of alternating repeats. Returns ``({name: {median_s, repeats, times_s}}, {name: last output})``.

    A callable whose first run takes over ``slow_s`` runs once (its time then is that one run)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    outputs: dict[str, object] = {}
    warm = {}
    for name, fn in fns.items():  # warm-up round (kept when slow: repeating it would cost too much)
        warm[name], outputs[name] = _timed(fn, device)
    start = time.perf_counter()
    for name in fns:
        if warm[name] >= 1.0:
            times[name].append(warm[name])
    rounds = 0
    while rounds < max_repeats:
        todo = [n for n in fns if warm[n] < slow_s and len(times[n]) < max_repeats]
        enough = all(len(times[n]) >= min_repeats for n in todo) and time.perf_counter() - start >= budget_s
        if not todo or enough:
            break
        for name in todo:
            t, outputs[name] = _timed(fns[name], device)
            times[name].append(t)
        rounds += 1
    stats = {name: {"median_s": statistics.median(ts), "repeats": len(ts), "times_s": [round(t, 6) for t in ts]}
             for name, ts in times.items()}
    return stats, outputs


__all__ = ["side_by_side", "single_thread"]
