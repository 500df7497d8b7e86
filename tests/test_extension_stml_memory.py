"""The extension notebook's pipeline (STML and STML + memory on the pre-trained settings, a memory-size sweep,
precision per epoch) on the tiny stand-in, both protocols; its parameters are checked before any run."""
import json
from pathlib import Path

import pytest

from ssml_lib.errors import ConfigError
from ssml_lib.experiments.extension_stml_memory import NO_THESIS, SETTINGS, StmlMemoryConfig, plan, \
    run_stml_memory_notebook

TINY = dict(paper_scale=False, standin_epochs=3, data_root=None, standin_size="tiny", device="cpu", seed=None)


@pytest.fixture
def env(tmp_path, monkeypatch):
    for key, value in (("SSML_CACHE", tmp_path / "cache"), ("SSML_RESULTS", tmp_path / "results"),
                       ("SSML_RUNS", tmp_path / "runs"), ("TQDM_DISABLE", "1"), ("MPLBACKEND", "Agg")):
        monkeypatch.setenv(key, str(value))
    return tmp_path


def test_both_methods_on_both_protocols_with_a_sweep_and_precision_curves(env):
    ns = dict(settings=["table1_cub_pretrained", "table7_gldv2"], memory_sizes=[48, 96], **TINY)
    result = run_stml_memory_notebook(ns, progress=False)
    assert result.standin and set(result.figures) == {"table1_cub_pretrained", "table7_gldv2"}
    comp = result.tables["comparison"]
    assert set(comp["metric"]) == {"R@1", "R@1 (pooled)", "mAP_medium", "mAP_medium (pooled)"}
    thesis = comp.set_index(["setting", "dataset", "metric"])["thesis STML"]
    assert thesis[("table1_cub_pretrained", "cub200", "R@1")] == 58.0  # results/reference, Table 1
    assert comp[["STML (ours)", "STML + memory (ours)"]].notna().all().all()
    assert "STAND-IN DATA" in result.markdown and NO_THESIS in result.markdown
    diag = result.tables["diagnostics"].set_index(["setting", "run"]).loc[("table1_cub_pretrained", "stml_xbm")]
    assert diag["memory_rows"] == 96 and 0 <= diag["memory_negative_same_class"] <= 1
    sweep = result.tables["sweep"]
    assert sweep["memory_size"].tolist() == [48, 96] and sweep["R@1"].notna().all()
    curves = result.tables["precision"]
    assert set(curves["method"]) == {f"{t}/{m}" for t in ns["settings"] for m in ("stml", "stml_xbm")} | \
        {"table1_cub_pretrained/stml_xbm m48", "table1_cub_pretrained/stml_xbm m96"}
    assert curves.groupby("method").size().eq(3).all()  # one point per epoch
    standin = env / "results" / "standin"
    assert (standin / "table1_cub_pretrained" / "stml_xbm.csv").is_file()  # an extra row of the table
    assert (standin / "extension_stml_memory" / "memory_48" / "standin" / "table1_cub_pretrained" /
            "stml_xbm.csv").is_file()  # the sweep apart from it
    assert Path(result.paths["markdown"]).is_file() and Path(result.paths["table7_gldv2"]).is_file()
    prov = json.loads(Path(result.paths["provenance"]).read_text())
    assert prov["data"]["standin"] is True and len(prov["params"]["rows"]) == 6


def test_memory_settings_reach_the_memory_rows_only_and_stand_in_epochs_only_the_stand_in():
    jobs = plan(StmlMemoryConfig(settings=("table5_sop_pretrained",), memory_sizes=(240,)),
                {"memory_terms": "negatives+positives", "seed": 1})
    assert [(j["method"], j["memory_size"]) for j in jobs] == [("stml", None), ("stml_xbm", None), ("stml_xbm", 240)]
    assert "memory_terms" not in jobs[0]["overrides"] and jobs[1]["overrides"]["memory_terms"] == "negatives+positives"
    assert all(j["overrides"]["epochs"] == 2 and j["overrides"]["seed"] == 1 for j in jobs)
    assert jobs[2]["overrides"]["memory_size"] == 240
    real = plan(StmlMemoryConfig(paper_scale=True), {"data_root": "/data"})
    assert "epochs" not in real[0]["overrides"] and real[1]["params_file"].name == "stml_xbm.yaml"


@pytest.mark.parametrize("bad, match", [
    (dict(settings=["table2_cub_scratch"]), "settings must be"), (dict(settings=[]), "settings must be"),
    (dict(memory_sizes=[0]), "memory_sizes"), (dict(standin_epochs=0), "standin_epochs"),
    (dict(memory_terms="both"), "memory_terms"), (dict(memory_szie=4), "unknown parameter"),
    (dict(paper_scale=True), "real data only"),
])
def test_bad_parameters_are_refused_before_any_run(env, bad, match):
    with pytest.raises(ConfigError, match=match):
        run_stml_memory_notebook({**TINY, "settings": ["table1_cub_pretrained"], "memory_sizes": [], **bad},
                                 progress=False)
    assert not (env / "runs").exists()


def test_the_settings_are_the_pre_trained_tables_with_a_stml_row():
    from ssml_lib.experiments import TABLES

    assert all(TABLES[t].init == "imagenet" and "stml" in TABLES[t].methods for t in SETTINGS)
    assert {TABLES[t].train_dataset for t in SETTINGS} == {"cub200", "cars196", "sop", "gldv2"}
