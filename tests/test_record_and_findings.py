"""The record command (the only writer of results/standin/) and the findings checklist built from records."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from ssml_lib.errors import ConfigError
from ssml_lib.experiments import findings, record


def test_record_refuses_a_dirty_tree_before_anything_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(record, "_git_dirty", lambda: True)
    ran = []
    monkeypatch.setattr("ssml_lib.experiments.run_table.run_table", lambda *a, **k: ran.append(a))
    with pytest.raises(ConfigError, match="uncommitted changes"):
        record.record(["table1_cub_pretrained"])
    assert ran == []
    with pytest.raises(ConfigError, match="unknown tables"):
        record.record(["table99"], dry_run=True)


def test_record_rows_add_the_reference_rows():
    assert record.rows_of("table2_cub_scratch") == ["spreading", "insclr", "stml", "pretrained"]
    assert record.rows_of("table1_cub_pretrained")[-3:] == ["isl", "mom", "stml_xbm"]
    assert all("stml_xbm" in record.rows_of(t) for t in ("table3_cars_pretrained", "table5_sop_pretrained",
                                                            "table7_gldv2"))


def _write(root, table, method, values, final=None):
    folder = root / "standin" / table
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"table": table, "method": method, "dataset": d, "metric": m, "value": v, "setting": s, "standin": True}
            for (d, m, s), v in values.items()]
    pd.DataFrame(rows).to_csv(folder / f"{method}.csv", index=False)
    prov = {"wall_time_s": 10.0, "params": {"run": {"data": {"standin_size": "default"}}}, "data": {"standin": True},
            "extra": {"training": {"final": final or {}}}}
    (folder / f"{method}.json").write_text(json.dumps(prov))


def test_checklist_follows_the_records(tmp_path, monkeypatch):
    monkeypatch.setattr(findings, "ROOT", tmp_path)
    r1 = lambda ds, v: {(ds, "R@1", ""): v, (ds, "R@1 (pooled)", ""): v, (ds, "NMI", ""): 50.0}  # noqa: E731
    for pre, scratch, ds in findings.DML.values():
        _write(tmp_path, pre, "pretrained", r1(ds, 50.0))
        _write(tmp_path, pre, "spreading", r1(ds, 53.0))  # improves by 3 points
        _write(tmp_path, pre, "stml", r1(ds, 50.5))  # within the margin: no improvement
        _write(tmp_path, pre, "insclr", r1(ds, 45.0), final={"pool_precision": 0.3})
        _write(tmp_path, scratch, "pretrained", r1(ds, 10.0))
        for m in ("spreading", "stml", "insclr"):
            _write(tmp_path, scratch, m, r1(ds, 30.0 if ds == "sop" else 15.0))
    lines = {line.split(" | ")[0][2:]: line for line in findings.checklist()[2:]}
    assert "**shown**" in lines["Spreading improves the pre-trained start on CUB and Cars"]
    assert "not shown" in lines["STML improves the pre-trained start on CUB and Cars"]
    assert "**shown**" in lines["InsCLR falls below the start on CUB and Cars (weak mining)"]
    assert "pool precision 0.30" in lines["InsCLR falls below the start on CUB and Cars (weak mining)"]
    assert "**shown**" in lines[next(k for k in lines if k.startswith("Pre-trained rows far above"))]
    assert "not recorded" in lines["Table 8: InsCLR rises with the fourth (memory) cycle"]  # no Table 8 records
    # GLDv2 is missing, so the scratch rule cannot be decided
    assert "not recorded" in lines[next(k for k in lines if k.startswith("Scratch training fails"))]
    assert len(findings.extension()) == 2  # no stml_xbm records: no extension rows
    _write(tmp_path, "table1_cub_pretrained", "stml_xbm", r1("cub200", 52.0),
           final={"pos_precision": 0.5, "memory_negative_same_class": 0.02})
    assert findings.extension()[2:] == ["| CUB | 50.5 | 52.0 | 50.5 | 52.0 | — / 0.50 | 0.02 |"]
    page = findings.render()
    assert "| CUB | stand-in ImageNet start | 50.0 | 50.0 | 50.0 |" in page and "## Extension" in page
    path = findings.write_findings(tmp_path / "README.md")
    assert path.read_text().startswith("# Stand-in results (STAND-IN DATA)")


def test_a_new_record_clears_the_previous_one_of_what_it_records(tmp_path, monkeypatch):
    monkeypatch.setenv("SSML_RESULTS", str(tmp_path))
    base = tmp_path / "standin"
    for name in ("table1_cub_pretrained", "table2_cub_scratch"):
        (base / name).mkdir(parents=True)
        (base / name / "old.csv").write_text("x")
        (base / f"{name}.md").write_text("x")
    (base / "figures").mkdir()
    (base / "table10_cost.md").write_text("x")
    record.clear_previous(["table1_cub_pretrained"], figures=False)
    assert not (base / "table1_cub_pretrained").exists() and not (base / "table1_cub_pretrained.md").exists()
    assert (base / "table2_cub_scratch" / "old.csv").exists() and (base / "figures").exists()
    record.clear_previous(["table2_cub_scratch"], figures=True)
    assert not (base / "figures").exists() and not (base / "table10_cost.md").exists()


def test_results_do_not_make_the_code_dirty(tmp_path, monkeypatch):
    import subprocess

    from ssml_lib import provenance

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "row.csv").write_text("1\n")
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=tmp_path, check=True)
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)
    assert provenance.git_state()["dirty"] is False
    (tmp_path / "results" / "row.csv").write_text("2\n")  # a result rewritten while recording
    assert provenance.git_state()["dirty"] is False
    (tmp_path / "code.py").write_text("a = 2\n")  # the code changed: dirty
    assert provenance.git_state()["dirty"] is True


def test_recording_some_rows_keeps_the_tables_other_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("SSML_RESULTS", str(tmp_path))
    monkeypatch.setattr(record, "_git_dirty", lambda: False)
    ran = []
    monkeypatch.setattr("ssml_lib.experiments.run_table.run_table",
                        lambda table, methods, **k: ran.append((table, methods)) or type("R", (), {"failed": []})())
    monkeypatch.setattr(record, "_run_figure", lambda name, *a, **k: ran.append(name) or True)
    monkeypatch.setattr("ssml_lib.experiments.findings.write_findings", lambda: tmp_path / "standin" / "README.md")
    base = tmp_path / "standin"
    (base / "table1_cub_pretrained").mkdir(parents=True)
    (base / "executed").mkdir()
    for name in ("stml", "stml_xbm"):
        (base / "table1_cub_pretrained" / f"{name}.csv").write_text("x")
        (base / "executed" / f"table1_cub_pretrained__{name}.ipynb").write_text("x")
    assert record.record(["table1_cub_pretrained", "table2_cub_scratch"], methods=["stml_xbm"], figures=False,
                         say=lambda *a: None) == 0
    assert ran == [("table1_cub_pretrained", ["stml_xbm"]), "table10_cost"]  # table2 records no stml_xbm
    assert (base / "table1_cub_pretrained" / "stml.csv").exists()
    assert not (base / "table1_cub_pretrained" / "stml_xbm.csv").exists()
    assert not (base / "executed" / "table1_cub_pretrained__stml_xbm.ipynb").exists()
    with pytest.raises(ConfigError, match="no recorded row"):
        record.record(["table2_cub_scratch"], methods=["isl"], say=lambda *a: None)
