"""``--suite official``: without checkouts it says what to clone where and skips; with them (point
SSML_OFFICIAL_ROOT at a folder of ``<owner>+<name>/`` clones) every block's outputs agree with the official code
at smoke sizes. The report renders the side-by-side table; the pool projection is exact on a quadratic."""
import json
import os
from pathlib import Path

import pytest
import torch

from benchmarks.official.blocks_mining import extrapolate
from benchmarks.official.checkouts import REPOS, find_checkouts, missing_message
from benchmarks.report import render_readme

ROOT = os.environ.get("SSML_OFFICIAL_ROOT")
FOUND = find_checkouts(ROOT) if ROOT else {}


def test_without_checkouts_it_says_what_to_clone_where_and_skips(tmp_path, capsys):
    from benchmarks.run import main

    out = tmp_path / "out"
    written = main(["--suite", "official", "--official-root", str(tmp_path / "nothing"), "--tiny", "--device", "cpu",
                    "--out", str(out)])
    text = capsys.readouterr().out
    assert written == {}
    assert not out.exists() or not list(out.glob("official_*.json"))
    assert "skipped" in text
    for repo in REPOS.values():
        assert f"git clone {repo.url} {tmp_path / 'nothing' / repo.folder}" in text
    assert "--official-root" in text


def test_missing_message_without_a_root_names_a_placeholder():
    text = missing_message(None, {k: None for k in REPOS})
    assert text.startswith("no --official-root given")
    assert "<official-root>/mangye16+Unsupervised_Embedding_Learning" in text


def test_a_checkout_counts_only_with_every_file_the_suite_reads(tmp_path):
    repo = REPOS["revisitop"]
    folder = tmp_path / repo.folder
    assert find_checkouts(tmp_path)["revisitop"] is None
    for f in repo.files:
        (folder / f).parent.mkdir(parents=True, exist_ok=True)
        (folder / f).write_text("")
    found = find_checkouts(tmp_path)
    assert found["revisitop"] == folder
    assert all(found[k] is None for k in REPOS if k != "revisitop")


def test_pool_projection_is_exact_on_a_quadratic_cost():
    rows = [{"block": "candidate_pool", "sizes": {"N": n}, "ours_s": 2e-9 * n**2 + 1e-5 * n,
             "official_s": 3e-9 * n**2} for n in (1_000, 2_000, 4_000)]
    ex = extrapolate(rows, 240_000)
    assert ex["ours_s"] == pytest.approx(2e-9 * 240_000**2 + 1e-5 * 240_000)
    assert ex["official_s"] == pytest.approx(3e-9 * 240_000**2)
    assert "before_s" not in ex and "projection" in ex["method"]


def _row(block, **extra):
    stats = {"block": block, "sizes": {"N": 10, "dim": 4}, "paper_size": True, "official": "f()", "ours": "g()",
             "ours_s": 0.002, "official_s": 0.004, "ratio": 2.0, "agree": True, "agreement": "identical",
             "loaded": "imported module", "shims": ["x stubbed"], "checkout": {"folder": "a+b", "commit": "0123456789"},
             "note": ""}
    stats.update(extra)
    return stats


def test_report_renders_the_side_by_side_table(tmp_path):
    rows = [_row("spreading_loss", before_s=0.003, ratio_before=4 / 3),
            _row("candidate_pool", agree=False, extrapolated={"N": 240_000, "ours_s": 100.0, "official_s": 50.0,
                                                              "method": "a projection"}),
            {"block": "nmi", "error": "RuntimeError: boom"}]
    record = {"suite": "official", "rows": rows, "provenance": {
        "device": {"summary": "CPU"}, "timestamp_utc": "now", "extra": {}, "params": {"profile": "official"}}}
    (tmp_path / "official_cpu.json").write_text(json.dumps(record))
    text = render_readme(tmp_path).read_text()
    assert "| block | sizes | ssml | official | official / ssml | before → after (official / ssml) | agree |" in text
    assert "| spreading_loss | N 10, dim 4 | 2 ms | 4 ms | 2.00 | 1.33 → 2.00 | yes |" in text
    assert "| candidate_pool | N 10, dim 4 | 2 ms | 4 ms | 2.00 | – | **no** |" in text
    assert "**failed**: RuntimeError: boom" in text
    assert "Projected to N = 240,000" in text and "a projection" in text
    assert "Shims: x stubbed" in text


@pytest.mark.skipif(not FOUND or not all(FOUND.values()),
                    reason="set SSML_OFFICIAL_ROOT to a folder holding every official checkout (see "
                           "benchmarks/official/checkouts.py)")
def test_every_block_agrees_with_the_official_code_at_smoke_sizes(tmp_path):
    from benchmarks.official.suite import POOL_SIZES
    from benchmarks.run import main

    written = main(["--suite", "official", "--official-root", ROOT, "--tiny", "--device", "cpu",
                    "--out", str(tmp_path)])
    record = json.loads(Path(written["official"]).read_text())
    rows = record["rows"]
    assert [r for r in rows if "error" in r] == []
    blocks = {r["block"] for r in rows}
    assert blocks == {"spreading_loss", "stml_step", "insclr_memory_loss", "isl_mining", "revisited_map", "nmi",
                      "insclr_memory_v2_mining", "candidate_pool", "recall_at_k"}
    assert len([r for r in rows if r["block"] == "candidate_pool"]) == len(POOL_SIZES[True])
    for r in rows:
        assert r["agree"], (r["block"], r["agreement"])
        assert r["checkout"]["file_sha256_16"] and r["ours_s"] > 0 and r["official_s"] > 0
    assert all("before_s" in r for r in rows if r["block"] in ("spreading_loss", "insclr_memory_v2_mining",
                                                               "candidate_pool", "revisited_map"))
    assert record["provenance"]["params"]["missing"] == []
    assert "| insclr_memory_v2_mining |" in (tmp_path / "README.md").read_text()


def test_agreement_falls_back_to_a_float64_reference_only_within_float32_rounding():
    from benchmarks.official.blocks_losses import _agreement

    ref = (torch.tensor(1.0, dtype=torch.float64), [torch.ones(4, dtype=torch.float64)])
    near = (torch.tensor(1.0), [torch.ones(4) + torch.tensor([0, 0, 0, 5e-4])])  # 5e-4 from the reference
    exact = (torch.tensor(1.0), [torch.ones(4)])
    ok, text = _agreement({"ours": exact, "official": near})
    assert not ok and "gradients agree to 5.0e-04" in text  # directly: over the 1e-4 tolerance
    ok, text = _agreement({"ours": exact, "official": near}, reference=ref)
    assert ok and "official loss 0.0e+00, gradients 5.0e-04" in text
    far = (torch.tensor(1.0), [torch.ones(4) + torch.tensor([0, 0, 0, 5e-3])])
    assert not _agreement({"ours": exact, "official": far}, reference=ref)[0]


def test_a_rerun_of_some_blocks_replaces_only_their_rows():
    from benchmarks.official.suite import merge_rows, stamp

    old = stamp([{"block": "spreading_loss", "sizes": {"B": 64}, "ratio": 1.0},
                 {"block": "candidate_pool", "sizes": {"N": 10000}, "ratio": 0.9},
                 {"block": "candidate_pool", "sizes": {"N": 20000}, "ratio": 0.9},
                 {"block": "insclr_memory_v2_mining", "sizes": {"bank_rows": 240000}, "ratio": 0.3}],
                {"commit": "a" * 40, "timestamp_utc": "t0"})
    new = stamp([{"block": "insclr_memory_v2_mining", "sizes": {"bank_rows": 240000}, "ratio": 1.5}],
                {"commit": "b" * 40, "timestamp_utc": "t1"})
    merged = merge_rows(old, new)
    assert [(r["block"], r["ratio"], r["measured_at"]["commit"][0]) for r in merged] == [
        ("spreading_loss", 1.0, "a"), ("insclr_memory_v2_mining", 1.5, "b"), ("candidate_pool", 0.9, "a"),
        ("candidate_pool", 0.9, "a")]
