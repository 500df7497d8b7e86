"""Results writer: atomic tidy CSV + provenance JSON + Markdown with the paper beside ours."""
import json

import pandas as pd
import pytest

import ssml_lib.io as ssml_io
from ssml_lib.errors import ConfigError
from ssml_lib.provenance import collect_provenance, fingerprint_files
from ssml_lib.results import (load_reference, load_results, render_table, rows_from_metrics, side_by_side,
                              write_results)

T1 = "table1_cub_pretrained"


def _prov(standin=True):
    return collect_provenance({"method": "spreading", "ks": (1, 2)}, standin=standin,
                              data_fingerprint="sha256:" + "0" * 64, wall_time_s=12.5)


def _rows():
    return rows_from_metrics("cub200", recall={1: 0.4, 2: 0.5, 4: 0.6, 8: 0.7}, nmi=0.55)


def test_csv_json_md_written_and_standin_separated(tmp_path):
    paths = write_results(T1, "spreading", _rows(), _prov(standin=True), results_dir=tmp_path)
    assert paths["csv"] == tmp_path / "standin" / T1 / "spreading.csv"
    assert paths["md"] == tmp_path / "standin" / f"{T1}.md"
    df = pd.read_csv(paths["csv"])
    assert list(df.columns[:7]) == ["table", "method", "dataset", "metric", "value", "setting", "standin"]
    assert df["standin"].all() and (df["method"] == "spreading").all()
    assert df.set_index("metric")["value"]["R@1"] == pytest.approx(40.0)  # fractions -> percent
    record = json.loads(paths["json"].read_text())
    assert record["data"]["standin"] is True and record["params"]["ks"] == [1, 2]
    md = paths["md"].read_text()
    assert "STAND-IN DATA" in md.splitlines()[0] and "not comparable" in md
    assert "46.54 / 40.00" in md  # Spreading R@1: paper / ours
    assert "spreading.json" in md and "12 s" in md
    assert not (tmp_path / T1).exists()  # nothing in the real-data tree


def test_real_results_labelled_real(tmp_path):
    paths = write_results(T1, "stml", _rows(), _prov(standin=False), results_dir=tmp_path)
    assert paths["csv"] == tmp_path / T1 / "stml.csv"
    md = paths["md"].read_text()
    assert "STAND-IN" not in md and "Real data" in md
    assert "58.00 / 40.00" in md


def test_md_lists_every_method_written(tmp_path):
    write_results(T1, "spreading", _rows(), _prov(), results_dir=tmp_path)
    write_results(T1, "isl", _rows(), _prov(), results_dir=tmp_path)
    df = load_results(T1, standin=True, results_dir=tmp_path)
    assert sorted(df["method"].unique()) == ["isl", "spreading"]
    md = render_table(T1, tmp_path, standin=True)
    assert "| `isl` | — / 40.00" in md  # a method the paper lacks still gets its row


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    paths = write_results(T1, "spreading", _rows(), _prov(), results_dir=tmp_path)
    before = paths["csv"].read_text()

    def failing_write_bytes(path, data):  # the write dies after half the bytes reached the temp file
        with ssml_io.atomic_path(path) as tmp:
            tmp.write_bytes(data[: len(data) // 2])
            raise OSError("disk full")

    monkeypatch.setattr(ssml_io, "atomic_write_bytes", failing_write_bytes)
    new_rows = rows_from_metrics("cub200", recall={1: 0.9})
    with pytest.raises(OSError, match="disk full"):
        write_results(T1, "spreading", new_rows, _prov(), results_dir=tmp_path)
    assert paths["csv"].read_text() == before
    assert not [p for p in paths["csv"].parent.parent.rglob("*") if p.name.endswith(".tmp")]


def test_bad_input_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="non-finite"):
        write_results(T1, "spreading", [{"dataset": "cub200", "metric": "R@1", "value": float("nan")}],
                      _prov(), results_dir=tmp_path)
    with pytest.raises(ConfigError, match="duplicate"):
        write_results(T1, "spreading", _rows() + _rows()[:1], _prov(), results_dir=tmp_path)
    with pytest.raises(ConfigError, match="data.standin"):
        write_results(T1, "spreading", _rows(), {"git": {}}, results_dir=tmp_path)
    with pytest.raises(ConfigError, match="not valid"):
        write_results("../escape", "spreading", _rows(), _prov(), results_dir=tmp_path)
    with pytest.raises(ConfigError, match="reserved"):
        write_results("reference", "spreading", _rows(), _prov(), results_dir=tmp_path)
    with pytest.raises(ConfigError, match="columns dataset, metric, value"):
        write_results(T1, "spreading", [], _prov(), results_dir=tmp_path)
    assert not any(tmp_path.rglob("*"))


def test_side_by_side_has_paper_and_ours_in_paper_order():
    ours = pd.DataFrame([{"method": "insclr", "dataset": "cub200", "metric": "R@1", "value": 30.0, "setting": ""},
                         {"method": "mom", "dataset": "cub200", "metric": "R@1", "value": 5.0, "setting": ""}])
    sbs = side_by_side(T1, ours)
    assert {"paper", "ours", "diff", "paper_label"} <= set(sbs.columns)
    row = sbs[(sbs.method == "insclr") & (sbs.metric == "R@1")].iloc[0]
    assert row["paper"] == pytest.approx(29.63) and row["ours"] == 30.0 and row["diff"] == pytest.approx(0.37)
    assert sbs["method"].iloc[0] == "pretrained" and sbs["method"].iloc[-1] == "mom"
    assert pd.isna(sbs[sbs.method == "mom"]["paper"]).all()
    assert load_reference(T1).shape[0] == len(sbs) - 1


def test_multi_dataset_table_renders_one_section_each(tmp_path):
    rows = rows_from_metrics("roxford5k", revisited={"easy": 0.5, "medium": 0.4, "hard": 0.1}, setting="cycle1")
    write_results("table8_insclr_cycles", "insclr", rows, _prov(), results_dir=tmp_path)
    md = render_table("table8_insclr_cycles", tmp_path, standin=True)
    assert "## roxford5k" in md and "## rparis6k" in md
    assert "| 1st cycle (instance discrimination) (`insclr`) | 53.91 / 50.00 | 37.28 / 40.00 | 10.5 / 10.00 |" in md
    assert "2.5d = 60" in render_table("table10_cost", tmp_path)


def test_fingerprint_depends_on_lists_and_sizes_not_on_order(tmp_path):
    (tmp_path / "images").mkdir()
    for i in range(5):
        (tmp_path / "images" / f"{i}.jpg").write_bytes(b"x" * (i + 1))
    (tmp_path / "images.txt").write_text("1 images/0.jpg\n")
    fp = fingerprint_files(tmp_path)
    assert fp.startswith("sha256:") and fp == fingerprint_files(sorted(tmp_path.rglob("*.*"), reverse=True), root=tmp_path)
    (tmp_path / "images.txt").write_text("1 images/1.jpg\n")  # same size, other content
    fp2 = fingerprint_files(tmp_path)
    assert fp2 != fp
    (tmp_path / "images" / "3.jpg").write_bytes(b"y" * 9)
    assert fingerprint_files(tmp_path) != fp2
    assert fingerprint_files(tmp_path, sample=2) != fingerprint_files(tmp_path)


def test_provenance_record_fields():
    rec = _prov(standin=False)
    assert {"git", "params", "packages", "device", "data", "timestamp_utc", "wall_time_s"} <= set(rec)
    assert rec["data"] == {"standin": False, "label": "real data", "fingerprint": "sha256:" + "0" * 64}
    for pkg in ("python", "torch", "numpy", "faiss", "scikit-learn", "pytorch-metric-learning", "ssml_lib"):
        assert rec["packages"][pkg]
    assert rec["timestamp_utc"].endswith("+00:00")
    import socket

    host = socket.gethostname()
    assert len(host) < 4 or host not in json.dumps(rec)
    with pytest.raises(ConfigError, match="standin"):
        collect_provenance({}, standin="yes", data_fingerprint=None, wall_time_s=None)


def test_provenance_shows_training_time_and_the_commit_a_reused_run_was_trained_at(tmp_path):
    prov = collect_provenance({"method": "spreading"}, standin=True, data_fingerprint=None, wall_time_s=3.0,
                              extra={"training": {"final": {"train_time_s": 156.3},
                                                  "trained_at": {"train": {"commit": "ab" * 20, "dirty": False}}}})
    write_results(T1, "spreading", _rows(), prov, results_dir=tmp_path)
    [line] = [ln for ln in render_table(T1, tmp_path, standin=True).splitlines() if ln.startswith("| spreading |")]
    assert "(trained at `ababababab`)" in line and "| 156 s | 3 s |" in line
    prov["extra"]["training"]["trained_at"]["train"]["commit"] = prov["git"]["commit"]  # trained by this commit
    write_results(T1, "spreading", _rows(), prov, results_dir=tmp_path)
    assert "trained at" not in render_table(T1, tmp_path, standin=True)
