"""Timing and peak-memory helpers shared by the suites: wall clock with CUDA synchronised only at the edges of a
timed block, and peak memory as CUDA's allocator peak or the process RSS sampled by a thread (tracemalloc does not
see torch's allocations)."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB, lifetime peak


@contextmanager
def measure(device: torch.device, interval_s: float = 0.01) -> Iterator[dict]:
    """``with measure(dev) as m: ...`` fills m['seconds'] and m['peak_mib'] (memory above the level at entry)
    and m['memory_kind'] ('cuda max_memory_allocated' or 'process RSS, sampled')."""
    out: dict = {}
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        yield out
        sync(device)
        out["seconds"] = time.perf_counter() - t0
        out["peak_mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        out["memory_kind"] = "cuda max_memory_allocated"
        return
    base, peak, stop = _rss_bytes(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            stop.wait(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - t0
        stop.set()
        thread.join()
        peak[0] = max(peak[0], _rss_bytes())
        out["peak_mib"] = max(0, peak[0] - base) / 2**20
        out["memory_kind"] = "process RSS, sampled every 10 ms"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from ssml_lib.errors import ConfigError

        raise ConfigError("--device cuda was asked for but CUDA is not available. Fix: --device auto or cpu.")
    return dev
