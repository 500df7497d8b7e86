"""Benchmark harness smoke test (tiny sizes) and the equivalence checks of the kNN speed changes: the packed
(float32 key, index) sort code, the gather-based self exclusion, and the re-sort of near-tie chains only, each
against float64 brute force with ties by index."""
import json

import numpy as np
import pytest
import torch

from ssml_lib.eval import faiss_available, knn

BACKENDS = ["torch"] + (["faiss"] if faiss_available() else [])


def reference_knn(x, k, metric, exclude_self):
    q = x.double()  # elementwise products, one reduction order for every pair: duplicates tie exactly
    parts = [(q[s:s + 64, None, :] * q[None]).sum(-1) if metric == "ip" else
             ((q[s:s + 64, None, :] - q[None]) ** 2).sum(-1) for s in range(0, len(q), 64)]
    key = torch.cat(parts)
    key = -key if metric == "ip" else key
    if exclude_self:
        key.fill_diagonal_(float("inf"))
    idx = np.broadcast_to(np.arange(key.shape[1]), key.shape)
    return torch.from_numpy(np.lexsort((idx, key.numpy()), axis=1)[:, :k])


def test_harness_smoke_writes_every_suite_with_provenance_and_readme(tmp_path):
    from benchmarks.run import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only contend on a shared CPU
    try:
        written = main(["--suite", "all", "--tiny", "--quick", "--device", "cpu", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    assert set(written) == {"methods", "input", "retrieval"}
    for suite, path in written.items():
        rec = json.loads(path.read_text())
        prov = rec["provenance"]
        assert rec["suite"] == suite and rec["rows"]
        assert prov["extra"]["torch"] == torch.__version__ and "summary" in prov["device"]
        assert prov["params"]["device"] == "cpu"
    methods = json.loads(written["methods"].read_text())["rows"]
    assert {r["case"] for r in methods} == {"spreading", "isl_round0"}
    for r in methods:
        assert r["step_s"] > 0 and r["backbone_step_s"] > 0
        assert r["overhead"] == pytest.approx(r["step_s"] / r["backbone_step_s"])
        assert r["dtype"] == "float32" and r["resolution"] == 32
    inputs = json.loads(written["input"].read_text())["rows"]
    assert [r["workers"] for r in inputs[:3]] == [0, 1, 2] and all(r["images_per_s"] > 0 for r in inputs[:3])
    assert inputs[-1]["gpu_idle_fraction"] == "n/a"  # CPU: no GPU to be idle
    retrieval = json.loads(written["retrieval"].read_text())["rows"]
    for task in ("recall_at_k", "candidate_pool"):
        for backend in BACKENDS:
            ns = {r["n"] for r in retrieval if r["task"] == task and r["backend"] == backend}
            assert len(ns) >= 4, (task, backend)
    assert all(r["seconds"] >= 0 and r["peak_mib"] >= 0 for r in retrieval)
    readme = (tmp_path / "README.md").read_text()
    assert "| spreading |" in readme and "candidate_pool" in readme and "n/a" in readme


def test_sortable_codes_follow_float_order_and_equate_signed_zeros():
    from ssml_lib.eval.knn import _sortable

    v = torch.tensor([3.5, -0.0, 0.0, -1e-30, 1e-30, -2.0, float("inf"), float("-inf"), -3.5, 2.0])
    codes = _sortable(v)
    assert codes[1] == codes[2]  # -0.0 == +0.0, so ties between them go by index
    order = codes.argsort(stable=True)
    assert torch.equal(order, v.argsort(stable=True))


@pytest.mark.parametrize("metric", ["ip", "l2sq"])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_full_order_with_long_tie_chains_matches_reference(metric, exclude_self):
    # integer coordinates: scores are exact and massively tied, so nearly every candidate is in a chain
    g = torch.Generator().manual_seed(5)
    x = torch.randint(-2, 3, (400, 3), generator=g).float()
    want = reference_knn(x, 60, metric, exclude_self)
    for backend in BACKENDS:
        got = knn(x, k=60, metric=metric, exclude_self=exclude_self, backend=backend)[1]
        assert torch.equal(got, want), backend


def test_dense_float_data_faiss_equals_torch_and_reference_at_cuts():
    g = torch.Generator().manual_seed(6)
    x = torch.nn.functional.normalize(torch.randn(900, 32, generator=g), dim=1)
    x = torch.cat([x, x[:30]])  # exact duplicates
    want = reference_knn(x, 150, "ip", True)
    outs = [knn(x, k=150, exclude_self=True, backend=b)[1] for b in BACKENDS]
    for got in outs:
        assert torch.equal(got, want)
    cut = [knn(x, k=150, exclude_self=True, backend=b, exact_cuts=(1, 10, 100))[1] for b in BACKENDS]
    for got in cut:
        for c in (1, 10, 100, 150):
            assert torch.equal(got[:, :c].sort(dim=1).values, want[:, :c].sort(dim=1).values), c


@pytest.mark.parametrize("name", ["spreading", "stml", "insclr_base", "insclr_impr", "isl_round0", "isl_round1"])
def test_bf16_autocast_keeps_each_methods_losses_on_cpu(name):
    # the CUDA fast path runs under bf16 autocast; CPU bf16 autocast rounds matmuls/convs the same way
    from benchmarks.methods import bf16_vs_float32

    full, half = bf16_vs_float32(name, torch.device("cpu"))
    assert full and set(full) == set(half)
    for key, value in full.items():
        assert abs(half[key] - value) <= 2e-2 * max(1.0, abs(value)), (name, key, half[key], value)


def test_readme_renders_the_recorded_gpu_figures(tmp_path):
    import shutil
    from pathlib import Path

    from benchmarks.report import render_readme

    src = Path(__file__).resolve().parent.parent / "results" / "benchmarks"
    for f in src.glob("*.json"):
        shutil.copy(f, tmp_path / f.name)
    readme = render_readme(tmp_path).read_text()
    assert (tmp_path / "overhead.png").stat().st_size > 1000
    assert "NOTES.md" not in readme  # only linked where a NOTES.md exists
    if (src / "methods_cuda.json").exists():
        assert "| insclr_base_official | resnet101 |" in readme and "host syncs/step" in readme
        assert "PARTIAL" in readme and "(torch.compile)" in readme
        assert "training-step fraction" in readme
        rows = json.loads((src / "methods_cuda.json").read_text())["rows"]
        assert all(r["host_syncs_per_step"] == 0 for r in rows)
