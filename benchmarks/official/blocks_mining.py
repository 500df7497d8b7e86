"""Neighbour-mining blocks: the InsCLR candidate pool (the official ``compute_candidate_pool.py`` neighbour task
against ``ssml_lib.mining.candidate_pool``, and the pool before the speed-up) and ISL's set enlargement (the
official ``LinearAverage.add_affinity`` against ``enlarge_positive_sets``)."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ssml_lib.mining import AffinitySets, FeatureMemory, candidate_pool, enlarge_positive_sets, save_candidate_pool

from .checkouts import describe
from .common import Context, compare, row, unit_rows
from .loading import cuda_on_cpu, load_module, load_package_module, on_path, stub_unimportable
from .previous import old_candidate_pool
from .shims import faiss_gpus_on_cpu, quiet_module

PAPER_N = 240_000  # the InsCLR candidate pool at the size, extrapolated from the measured ones


@contextmanager
def _cwd(folder: Path):
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


_LOADED: dict = {}


def _official_pool_module(folder: Path, pool: int):
    """The official tool's module (imported once per checkout) and its shims; ``pool`` != 500 (tiny sizes)
    shrinks the literal top-500 of its neighbour search."""
    if folder not in _LOADED:
        with on_path(folder):
            shims = stub_unimportable(["benchmark.config", "benchmark.data", "benchmark.models",
                                       "benchmark.utils.extract_fn"], "used by the feature task only")
            module = load_module(folder / "tools/compute_candidate_pool.py", "_official_insclr_compute_candidate_pool")
        _LOADED[folder] = (module, shims + quiet_module(module), module.MemoryBank)
    module, shims, bank = _LOADED[folder]
    module.MemoryBank = bank if pool == 500 else _pool_size_bank(bank, pool)
    extra = [] if pool == 500 else [f"pool size {pool} instead of the literal 500 (tiny sizes only)"]
    return module, shims + extra


def candidate_pool_block(ctx: Context, n: int) -> dict:
    """From a feature file to a pool file: load, top-500 by exact inner product, similarities, save."""
    folder = ctx.checkouts["insclr"]
    d, p = (16, 20) if ctx.tiny else (2_048, 500)
    module, shims = _official_pool_module(folder, p)
    feats, labels = unit_rows(n, d, 20, noise=2.0)
    with tempfile.TemporaryDirectory() as tmp, faiss_gpus_on_cpu(ctx.device.type == "cuda") as faiss_shim:
        tmp = Path(tmp)
        (tmp / "training_dir/neighbor/bench").mkdir(parents=True)
        feature_file = tmp / "training_dir/neighbor/bench/pool_feature.npz"
        np.savez(feature_file, feature=feats.numpy(), target=labels.numpy())

        def official():
            with _cwd(tmp):
                module.run("neighbor", "bench", "pool")

        def ours(pool_fn=candidate_pool, out="ours_neighbor.npz"):
            data = np.load(feature_file)
            x = torch.from_numpy(data["feature"]).to(ctx.device)
            return save_candidate_pool(tmp / out, *pool_fn(x, p))

        stats, _ = compare({"ours": ours, "official": official,
                            "before": lambda: ours(old_candidate_pool, "before_neighbor.npz")}, ctx)
        official_file = tmp / "training_dir/neighbor/bench/pool_neighbor.npz"
        with np.load(official_file) as o, np.load(tmp / "ours_neighbor.npz") as s:
            agree, text = _pool_agreement(o["neighbor"], o["similarity"], s["neighbor"], s["similarity"])
    return row("candidate_pool", stats=stats, sizes={"N": n, "dim": d, "pool": p}, agree=agree, agreement=text,
               official="tools/compute_candidate_pool.py run('neighbor'): faiss IndexFlatIP in 12 chunks, then a "
                        "per-image loop of dot products", ours="ssml_lib.mining.candidate_pool + save_candidate_pool",
               loaded="imported module", shims=shims + faiss_shim, checkout=describe("insclr", folder),
               paper_size=False, note=f"from the feature file to the pool file; the paper's {PAPER_N:,} images "
                                      "are extrapolated (below)")


def _pool_size_bank(bank_cls, p: int):
    class SmallPoolBank(bank_cls):
        def mine_nearest_neighbors(self, topk, features=None):
            return super().mine_nearest_neighbors(p, features)
    return SmallPoolBank


def _pool_agreement(o_idx, o_sim, s_idx, s_sim, tol: float = 1e-5) -> tuple[bool, str]:
    """Per rank, the similarities agree to ``tol``: where the neighbour at a rank differs, the two candidates are
    then tied to within ``tol`` (faiss's float32 order against the exact one)."""
    sim_gap = float(np.abs(o_sim.astype(np.float64) - s_sim).max())
    differ = o_idx != s_idx
    rows_same = float((~differ.any(1)).mean())
    return sim_gap <= tol, (f"rows identical {rows_same:.2%}; {int(differ.sum())} of {differ.size} places differ "
                            f"(float32 near-ties); similarities per rank agree to {sim_gap:.1e}")


def extrapolate(rows: list[dict], n_target: int = PAPER_N) -> dict:
    """Each side's time at ``n_target`` from t(N) = a N^2 + b N through the two largest measured sizes."""
    rows = sorted(rows, key=lambda r: r["sizes"]["N"])[-2:]
    (n1, n2), out = [r["sizes"]["N"] for r in rows], {"N": n_target}
    for side in ("ours", "official", "before"):
        key = f"{side}_s"
        if len(rows) < 2 or any(key not in r for r in rows):
            continue
        t1, t2 = rows[0][key], rows[1][key]
        a = (t2 / n2 - t1 / n1) / (n2 - n1)
        b = t1 / n1 - a * n1
        out[key] = max(a, 0.0) * n_target**2 + b * n_target
    out["method"] = (f"t(N) = a N^2 + b N fitted through N = {n1:,} and {n2:,} per side; a projection, not a "
                     "measurement")
    return out


def isl_mining(ctx: Context) -> dict:
    """One mining batch at the CIFAR setting: bank 50,000 x 128, batch 128, top-10, gate 0.5, R 0.6."""
    folder = ctx.checkouts["isl"]
    n, d, b, k = (500, 16, 16, 5) if ctx.tiny else (50_000, 128, 128, 10)
    with cuda_on_cpu(ctx.device) as shims:
        module = load_package_module(folder / "lib", "_official_isl_lib", "LinearAverage")
        official = module.LinearAverage(d, n, T=0.1, momentum=0.5, topk=k).to(ctx.device)
    bank, _ = unit_rows(n, d, 30, classes=max(2, n // 10), noise=0.5)
    g = torch.Generator().manual_seed(31)
    idx = torch.randperm(n, generator=g)[:b]
    proxies = torch.nn.functional.normalize(bank[idx] + 0.3 * torch.randn(b, d, generator=g) / d**0.5, dim=1)
    conf = torch.rand(b, generator=g)
    bank, idx, proxies, conf = (t.to(ctx.device) for t in (bank, idx, proxies, conf))
    official.memory.copy_(bank)
    memory = FeatureMemory(n, d, device=ctx.device)
    memory.features.copy_(bank)
    memory.written.fill_(True)
    sets = AffinitySets(n, capacity=64, device=ctx.device)
    passed = conf > 0.5  # the caller's gate and radius (official small_main.py mine_affinity)
    radius = 0.6 + (1 - conf) * (1 - 0.6)
    fns = {"ours": lambda: enlarge_positive_sets(idx, proxies, conf, memory, sets, gate=0.5, radius=0.6, top_k=k),
           "official": lambda: official.add_affinity(idx[passed], proxies[passed], radius[passed])}
    fns["official"]()  # first call on the fresh sets of both sides: the agreement
    fns["ours"]()
    table, count = sets.table.cpu(), sets.count[:-1].cpu()
    ours_sets = [set(table[i, :count[i]].tolist()) for i in range(n)]
    official_sets = [s - {i} for i, s in enumerate(official.affinity_mat)]
    agree = ours_sets == official_sets
    links = sum(len(s) for s in official_sets)
    stats, _ = compare(fns, ctx)  # later calls add nothing new on either side (sets keep what they have)
    return row("isl_mining", stats=stats, sizes={"bank": n, "dim": d, "batch": b, "top_k": k}, agree=agree,
               agreement=f"affinity sets after one batch {'identical' if agree else 'DIFFER'} ({links} directed links)",
               official="lib/LinearAverage.py LinearAverage.add_affinity (the confident anchors, radius r)",
               ours="ssml_lib.mining.enlarge_positive_sets", loaded="imported module", shims=shims,
               checkout=describe("isl", folder))


__all__ = ["candidate_pool_block", "extrapolate", "isl_mining"]
