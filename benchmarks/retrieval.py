"""Retrieval at scale, per kNN back end, scaling with the number of items: the InsCLR candidate pool (exact
top-500, full order, over N x 2048; 240,000 at full scale) and Recall@{1,10,100,1000} + NMI (faiss k-means)
on N x 128 (60,502 = SOP; always run to full size). Time and peak memory per call. Data: seeded synthetic
SOP-like sets (class centre + noise, L2-normalised, as ``bench_eval.py``). Where --quick caps the pool sizes
on a CPU, the full size is extrapolated from the largest measured one (kNN cost ~ N^2) and marked so."""
from __future__ import annotations

import numpy as np
import torch

from ssml_lib.eval import faiss_available, nmi_with_info, recall_at_k
from ssml_lib.mining import candidate_pool

from ._measure import measure

POOL_FULL, POOL_DIM, POOL_K = 240_000, 2048, 500
EVAL_FULL, EVAL_DIM, KS = 60_502, 128, (1, 10, 100, 1000)


def synthetic(n: int, dim: int, seed: int = 0, per_class: int = 5, noise: float = 1.2):
    g = torch.Generator().manual_seed(seed)
    n_classes = max(1, n // per_class)
    labels = torch.arange(n_classes).repeat(n // n_classes + 1)[:n]
    labels = labels[torch.randperm(n, generator=g)]
    centres = torch.nn.functional.normalize(torch.randn(n_classes, dim, generator=g), dim=1)
    emb = centres[labels] + noise * torch.randn(n, dim, generator=g) / dim**0.5
    return torch.nn.functional.normalize(emb, dim=1), labels


def sizes(full: int, quick: bool, cpu: bool, tiny: list[int] | None) -> tuple[list[int], bool]:
    """Four sizes ending at ``full``; on a CPU with --quick they stop at full/64 for the 240k pool (capped: True)."""
    if tiny:
        return tiny, True
    top = full // (16 if full < 100_000 else 64) if (quick and cpu) else full
    return [top // 8, top // 4, top // 2, top], top != full


FAISS_CPU_POOL_MAX = 8_000  # on a GPU run: faiss-cpu took 138 s for 30,000 (16 cores); 240k would take hours


def _backends(device: torch.device, task: str = "recall_at_k", n: int = 0) -> list[str]:
    """faiss (CPU index: the data go to host memory) when installed, and torch on ``device``. On a CUDA run the
    CPU faiss pool is measured only up to FAISS_CPU_POOL_MAX items: at 240k it is a CPU benchmark, not a GPU one."""
    use_faiss = faiss_available() and not (device.type == "cuda" and task == "candidate_pool"
                                           and n > FAISS_CPU_POOL_MAX)
    return (["faiss"] if use_faiss else []) + ["torch"]


def run_retrieval(device: torch.device, *, quick: bool, tiny: bool = False, log=print) -> list[dict]:
    rows = []
    cpu = device.type == "cpu"
    ks = KS if not tiny else (1, 10, 100)
    # R@K/NMI at SOP size finishes in about a minute even on a CPU: --quick caps only the candidate pool
    eval_sizes, eval_capped = sizes(EVAL_FULL, False, cpu, [200, 400, 600, 800] if tiny else None)
    pool_sizes, pool_capped = sizes(POOL_FULL, quick, cpu, [100, 200, 300, 400] if tiny else None)
    pool_k, pool_dim = (POOL_K, POOL_DIM) if not tiny else (20, 256)
    for n in eval_sizes:
        emb, labels = synthetic(n, EVAL_DIM)
        emb = emb.to(device)
        for backend in _backends(device):
            with measure(device) as m:
                rec = recall_at_k(emb, labels.to(device), ks, backend=backend)
            rows.append({"task": "recall_at_k", "n": n, "dim": EVAL_DIM, "k": max(ks), "backend": backend,
                         "seconds": m["seconds"], "peak_mib": m["peak_mib"], "memory_kind": m["memory_kind"],
                         "value": {str(k): v for k, v in rec.items()}})
            log(f"  R@K     n={n:7d} {backend:6s} {m['seconds']:8.2f} s {m['peak_mib']:8.1f} MiB")
        if faiss_available():
            with measure(device) as m:
                value, info = nmi_with_info(emb.cpu(), labels, seed=0, kmeans="faiss")
            rows.append({"task": "nmi", "n": n, "dim": EVAL_DIM, "backend": "faiss k-means", "seconds": m["seconds"],
                         "peak_mib": m["peak_mib"], "memory_kind": m["memory_kind"], "value": value,
                         "clusters": info.get("n_clusters")})
            log(f"  NMI     n={n:7d} faiss  {m['seconds']:8.2f} s")
    if not cpu and not tiny and faiss_available():  # faiss-cpu's scaling beside a GPU: small sizes, extrapolated
        pool_sizes = sorted(set(pool_sizes) | {FAISS_CPU_POOL_MAX // 8, FAISS_CPU_POOL_MAX // 4,
                                                FAISS_CPU_POOL_MAX // 2, FAISS_CPU_POOL_MAX})
    for n in pool_sizes:
        feats, _ = synthetic(n, pool_dim, seed=1, per_class=10, noise=2.0)
        feats = feats.to(device)
        for backend in _backends(device, "candidate_pool", n):
            with measure(device) as m:
                candidate_pool(feats, min(pool_k, n - 1), backend=backend)
            rows.append({"task": "candidate_pool", "n": n, "dim": pool_dim, "k": min(pool_k, n - 1),
                         "backend": backend, "seconds": m["seconds"], "peak_mib": m["peak_mib"],
                         "memory_kind": m["memory_kind"]})
            log(f"  pool    n={n:7d} {backend:6s} {m['seconds']:8.2f} s {m['peak_mib']:8.1f} MiB")
    for task, full, capped in (("recall_at_k", EVAL_FULL, eval_capped), ("candidate_pool", POOL_FULL, pool_capped)):
        if capped and not tiny:
            rows += extrapolate(rows, task, full)
        elif task == "candidate_pool" and not cpu and not tiny:  # faiss-cpu stopped short of full size
            rows += extrapolate([r for r in rows if r["task"] == task and r["backend"] == "faiss"], task, full)
    return rows


def extrapolate(rows: list[dict], task: str, full: int) -> list[dict]:
    """Full-size time per back end from a least-squares fit t = a N + b N^2 (a, b >= 0) over the measured
    sizes: the O(N^2) search and the O(N k d) exact re-scoring of near ties both show at small N."""
    out = []
    for backend in sorted({r["backend"] for r in rows if r["task"] == task and "extrapolated_from_n" not in r}):
        pts = [(r["n"], r["seconds"]) for r in rows if r["task"] == task and r["backend"] == backend
               and "extrapolated_from_n" not in r]
        n = np.array([p[0] for p in pts], dtype=float)
        t = np.array([p[1] for p in pts], dtype=float)
        coef = np.linalg.lstsq(np.stack([n, n**2], 1), t, rcond=None)[0].clip(min=0)
        if not coef.any():
            continue
        out.append({"task": task, "n": full, "dim": rows[0]["dim"] if task == "recall_at_k" else POOL_DIM,
                    "backend": backend, "seconds": float(coef[0] * full + coef[1] * full**2), "peak_mib": None,
                    "extrapolated_from_n": int(n.max()),
                    "note": f"extrapolated: t = {coef[0]:.3g} N + {coef[1]:.3g} N^2 fitted to the sizes this back end ran "
                            "(capped: --quick on a CPU, or faiss-cpu beside a GPU)"})
    return out


__all__ = ["run_retrieval", "synthetic"]
