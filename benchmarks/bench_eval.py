"""Time Recall@{1,10,100,1000} and NMI on an SOP-sized synthetic set for each kNN back end (superseded by
``python -m benchmarks.run --suite retrieval``, which also scales N and times the candidate pool).

60,502 x 128 L2-normalised embeddings, 11,316 classes of about 5 items (seeded; each item is its class centre
plus noise). Writes results/benchmarks/eval_cpu.json with provenance. Usage:
    python benchmarks/bench_eval.py [--n 60502] [--classes 11316] [--dim 128] [--sklearn-nmi]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from ssml_lib.eval import faiss_available, nmi_with_info, recall_at_k
from ssml_lib.io import atomic_write_text
from ssml_lib.paths import results_dir


def synthetic_sop(n: int, n_classes: int, dim: int, seed: int = 0, noise: float = 1.2):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_classes).repeat(n // n_classes + 1)[:n]
    labels = labels[torch.randperm(n, generator=g)]
    centres = torch.nn.functional.normalize(torch.randn(n_classes, dim, generator=g), dim=1)
    emb = centres[labels] + noise * torch.randn(n, dim, generator=g) / dim**0.5
    return torch.nn.functional.normalize(emb, dim=1), labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60502)
    ap.add_argument("--classes", type=int, default=11316)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 10, 100, 1000])
    ap.add_argument("--sklearn-nmi", action="store_true", help="also time sklearn k-means (slow at 11k clusters)")
    ap.add_argument("--out", default=str(results_dir() / "benchmarks" / "eval_cpu.json"))
    args = ap.parse_args()

    emb, labels = synthetic_sop(args.n, args.classes, args.dim)
    rows = []
    backends = ["faiss", "torch"] if faiss_available() else ["torch"]
    for backend in backends:
        t0 = time.perf_counter()
        rec = recall_at_k(emb, labels, args.ks, backend=backend)
        rows.append({"task": f"recall_at_k{args.ks}", "backend": backend, "seconds": time.perf_counter() - t0,
                     "value": {str(k): v for k, v in rec.items()}})
        print(f"recall  {backend:6s} {rows[-1]['seconds']:8.2f} s  {rec}", flush=True)
    for impl in ["faiss"] * faiss_available() + ["sklearn"] * args.sklearn_nmi:
        t0 = time.perf_counter()
        value, info = nmi_with_info(emb, labels, seed=0, kmeans=impl)
        rows.append({"task": "nmi", "backend": impl, "seconds": time.perf_counter() - t0, "value": value,
                     "kmeans": info})
        print(f"nmi     {impl:6s} {rows[-1]['seconds']:8.2f} s  {value:.4f}", flush=True)

    print("\n| task | backend | seconds |\n|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['backend']} | {r['seconds']:.2f} |")
    faiss_version = None
    if faiss_available():
        import faiss

        faiss_version = faiss.__version__
    record = {
        "benchmark": "bench_eval", "data": {"n": args.n, "classes": args.classes, "dim": args.dim, "seed": 0,
                                            "kind": "synthetic, class centre + noise, L2-normalised"},
        "rows": rows,
        "provenance": {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       "torch": torch.__version__, "faiss": faiss_version, "numpy": np.__version__,
                       "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                       "platform": platform.platform(), "python": platform.python_version(),
                       "note": "timed on a machine shared with other jobs; wall-clock, single run"},
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
