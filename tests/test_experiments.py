"""The table runner and the notebooks, on the tiny stand-in."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ssml_lib.errors import ConfigError, SsmlError
from ssml_lib.experiments import TABLES, run_notebook_row, run_table_row

REPO = Path(__file__).resolve().parent.parent
TINY = dict(standin_size="tiny", pretrain_epochs=1)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SSML_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SSML_RESULTS", str(tmp_path / "results"))
    return tmp_path


def test_pretrained_row_writes_labelled_results(isolated):
    row = run_table_row("table1_cub_pretrained", overrides=dict(method="pretrained", **TINY), progress=False)
    assert row.standin
    metrics = set(row.rows["metric"])
    assert metrics == {"R@1", "R@2", "R@4", "R@8", "NMI", "R@1 (pooled)"}
    assert row.rows["value"].between(0, 100).all()
    # the pretrained row embeds with the pooled features themselves
    by = row.rows.set_index("metric")["value"]
    assert by["R@1"] == pytest.approx(by["R@1 (pooled)"])
    csv = isolated / "results" / "standin" / "table1_cub_pretrained" / "pretrained.csv"
    prov = json.loads(csv.with_suffix(".json").read_text())
    assert prov["data"]["standin"] is True and prov["params"]["run"]["method"] == "pretrained"
    assert prov["extra"]["model"]["init"] == "imagenet" and prov["extra"]["model"]["weights"].endswith(".pt")
    assert "STAND-IN DATA" in row.markdown and "39.2" in row.markdown  # paper beside ours
    # the side-by-side frame has the paper's R@1 for the pretrained row next to ours
    sbs = row.side_by_side.set_index(["method", "metric"])
    assert sbs.loc[("pretrained", "R@1"), "paper"] == pytest.approx(39.2)


def test_revisited_row_runs(isolated):
    row = run_table_row("table7_gldv2", overrides=dict(method="pretrained", **TINY), progress=False)
    assert set(row.rows["dataset"]) == {"roxford5k", "rparis6k"}
    assert set(row.rows["metric"]) == {"mAP_easy", "mAP_medium", "mAP_hard", "mAP_medium (pooled)"}


def test_scratch_table_pretrained_row_is_random_init(isolated):
    row = run_table_row("table2_cub_scratch", overrides=dict(method="pretrained", **TINY), progress=False)
    assert row.provenance["extra"]["model"]["weights"] == "random"


@pytest.mark.parametrize("params,match", [
    (dict(method="pretrained", standin_sise="tiny"), "standin_sise"),      # typo in a name
    (dict(method="pretrained", seed="zero"), "seed"),                       # wrong type
    (dict(method="no_such_method"), "unknown method"),
    (dict(method="pretrained", data_root="/nonexistent/data"), "data_root"),
])
def test_bad_parameters_refused_before_work(isolated, params, match):
    with pytest.raises(SsmlError, match=match):
        run_table_row("table1_cub_pretrained", overrides=params, progress=False)
    assert not (isolated / "results").exists()  # nothing written


def test_notebook_namespace_refuses_injected_typos(isolated):
    namespace = {"method": "pretrained", "data_root": None, "params_file": None, "standin_size": "tiny",
                 "device": "cpu", "seed": 0, "lerning_rate": 0.1}
    with pytest.raises(ConfigError, match="lerning_rate"):
        run_notebook_row("table1_cub_pretrained", namespace, progress=False)


def test_unknown_table_refused():
    with pytest.raises(ConfigError, match="unknown table"):
        run_table_row("table99", overrides=dict(method="pretrained"))


def test_notebooks_match_their_generator():
    out = subprocess.run([sys.executable, str(REPO / "tools" / "make_notebooks.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    for name in TABLES:
        nb = json.loads((REPO / "notebooks" / f"{name}.ipynb").read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def test_pca_head_starts_a_trained_row_at_its_pooled_features(isolated):
    # one epoch at a negligible lr: the row is scored with the head as initialised
    common = dict(method="spreading", epochs=1, lr=1e-12, milestones=[5], batch_size=16, **TINY)
    pca = run_table_row("table1_cub_pretrained", overrides=dict(head_init="pca", **common), progress=False)
    rand = run_table_row("table1_cub_pretrained", overrides=common, progress=False)
    head = pca.provenance["extra"]["training"]["head"]
    assert head["head_init"] == "pca" and 0 < head["explained_variance"] <= 1
    assert rand.provenance["extra"]["training"]["head"] == {"head_init": "default"}
    r = {name: row.rows.set_index("metric")["value"] for name, row in (("pca", pca), ("rand", rand))}
    assert r["pca"]["R@1 (pooled)"] == pytest.approx(r["rand"]["R@1 (pooled)"])  # same backbone, other head


def test_a_row_says_which_commit_trained_it_beside_the_one_that_evaluated_it(isolated):
    common = dict(method="spreading", epochs=1, lr=1e-12, milestones=[5], batch_size=16, **TINY)
    first = run_table_row("table1_cub_pretrained", overrides=common, progress=False)
    trained = first.provenance["extra"]["training"]["trained_at"]
    assert set(trained) == {"train"} and trained["train"] == first.provenance["git"]
    stage = Path(first.provenance["extra"]["training"]["out_dir"]) / "train" / "provenance.json"
    if not stage.is_absolute():
        stage = Path.cwd() / stage
    rec = json.loads(stage.read_text())
    rec["git"] = {"commit": "0" * 40, "dirty": False}  # as if trained at another commit
    stage.write_text(json.dumps(rec))
    again = run_table_row("table1_cub_pretrained", overrides=common, progress=False)  # reuses the finished run
    assert again.provenance["extra"]["training"]["trained_at"]["train"]["commit"] == "0" * 40
    assert again.provenance["git"] == first.provenance["git"]
