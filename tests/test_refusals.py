"""Every run does what was asked or refuses before any work; nothing recorded is overwritten.

One test per case: a params file of another table, row or without data_root; a batch that does not fit the data;
a damaged ground-truth file, missing and truncated images (all named) and ``max_bad_images``; a text file where a
checkpoint belongs; parameter names of the training and method configs and of another method; stand-in data
passed as ``data_root``. Each refusal is checked to leave no run folder (under SSML_RUNS), no result (under
SSML_RESULTS) and no executed notebook behind.
"""
import contextlib
import io
import json
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import isolate
from ssml_lib.errors import ConfigError, DatasetError, GroundTruthError, SsmlError
from ssml_lib.engine import CheckpointError
from ssml_lib.experiments import run_notebook_row, run_table_row
from ssml_lib.experiments.datasets import FOLDERS, dataset_root, standin_folder
from ssml_lib.experiments.distributed_row import row_run_dir
from ssml_lib.experiments.run_table import main as run_table_main
from ssml_lib.io import safe_pickle_load

REPO = Path(__file__).resolve().parent.parent
COUNTS = "ignore::ssml_lib.data.DatasetCountWarning"  # copied stand-in data is smaller than the real datasets
T1 = "table1_cub_pretrained"
TINY = dict(standin_size="tiny", device="cpu")
# a row on a copied dataset (data_root given: no stand-in layer): small and short
SMALL = dict(backbone="convnet4", image_size=32, resize_size=36, epochs=1, batch_size=16, num_workers=0,
             device="cpu", pretrain_epochs=1)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # the tiny stand-in, generated once for the module


@pytest.fixture
def env(tmp_path, cache, monkeypatch):
    return isolate(tmp_path, cache, monkeypatch)


def nothing_written(env: Path) -> None:
    """No run folder, no result, no executed notebook."""
    runs = env / "runs"
    assert not [p for p in (runs / "standin", runs / "real") if p.exists()], list(runs.rglob("*"))
    assert not (env / "results").exists(), list((env / "results").rglob("*"))


def copy_dataset(name: str, data_root: Path, *, real: bool = True) -> Path:
    """The tiny stand-in of ``name`` copied under ``data_root``; ``real``: without the stand-in's marker."""
    source = dataset_root(name, None, standin_size="tiny")
    target = data_root / FOLDERS[name]
    shutil.copytree(source, target)
    if real:
        (target / ".standin_complete.json").unlink()
    return target


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_table_main(["--no-log-output", *argv])
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------- 1. a params file names its table and row


def test_another_tables_params_file_is_refused(env):
    with pytest.raises(ConfigError) as info:  # papermill ... -p method spreading -p params_file params/table7...
        run_notebook_row(T1, {"method": "spreading", "params_file": "params/table7_gldv2/spreading.yaml", **TINY},
                         progress=False)
    message = str(info.value)
    assert "the paper-scale settings of table7_gldv2 / spreading" in message and f"were given to {T1}" in message
    assert f"Fix: use this table's own file, params/{T1}/spreading.yaml" in message
    nothing_written(env)


def test_another_tables_params_file_given_with_f_is_refused(env):
    injected = yaml.safe_load((REPO / "params/table7_gldv2/insclr.yaml").read_text())  # papermill -f injects these
    with pytest.raises(ConfigError, match="paper-scale settings of table7_gldv2 / insclr .*from the notebook's "
                                          f"parameters, as papermill -f.* were given to {T1}"):
        run_notebook_row(T1, {**injected, **TINY}, progress=False)
    nothing_written(env)


def test_a_paper_scale_file_without_data_root_is_refused(env):
    with pytest.raises(ConfigError) as info:
        run_notebook_row(T1, {"method": "stml", "params_file": f"params/{T1}/stml.yaml"}, progress=False)
    message = str(info.value)
    assert "are for real data only, but no data_root was given" in message
    assert "googlenet at 227 px for 90 epochs" in message and "Fix: pass -p data_root" in message
    nothing_written(env)


def test_another_rows_params_file_is_refused_as_another_method(env):
    injected = yaml.safe_load((REPO / f"params/{T1}/stml.yaml").read_text())
    with pytest.raises(ConfigError, match=r"settings of table1_cub_pretrained / stml .* were given with "
                                          r"method='spreading'. Fix: -p method stml"):
        run_notebook_row(T1, {**injected, "method": "spreading", "data_root": "/data"}, progress=False)  # -f, -p
    nothing_written(env)


def test_run_table_refuses_another_tables_file_before_any_notebook(env):
    code, out, err = cli(T1, "--methods", "spreading", "-p", "standin_size", "tiny",
                         "-p", "params_file", "params/table7_gldv2/spreading.yaml")
    assert code == 2 and "parameters refused" in out and "table7_gldv2 / spreading" in out
    nothing_written(env)


# ---------------------------------------------------------------- 2. batch against data, before any write


@pytest.mark.parametrize("method,params,match", [
    ("spreading", {"batch_size": 64}, "spreading: batch_size=64 but the training set has 48 training images"),
    ("supervised", {"batch_size": 40}, "at most the 8 training classes in a batch"),
    ("stml", {"batch_size": 60}, "STML batch_size=60 must be a multiple of num_neighbors=12, and both at most the "
                                 "48 training images. Fix: use batch_size = queries x num_neighbors, e.g. -p "
                                 "batch_size 48"),
    ("insclr", {"pool_size": 60}, "InsCLR pool_size=60 but the training set has 48 images"),
])
def test_a_batch_that_does_not_fit_the_data_is_refused_before_anything_is_written(env, method, params, match):
    with pytest.raises(ConfigError, match=match):
        run_table_row(T1, overrides={"method": method, **TINY, **params}, progress=False)
    nothing_written(env)


def test_run_table_refuses_a_data_mismatch_without_an_executed_notebook(env):
    code, out, _ = cli(T1, "--methods", "spreading", "-p", "standin_size", "tiny", "-p", "batch_size", "64")
    assert code == 1 and "spreading: data or settings refused, not run" in out and "batch_size=64" in out
    nothing_written(env)  # no executed notebook, no rebuilt Markdown


# ---------------------------------------------------------------- 3. data faults found before training


@pytest.mark.filterwarnings(COUNTS)
def test_a_gnd_file_with_an_out_of_range_index_is_refused_before_training(env):
    data = env / "data"
    copy_dataset("gldv2", data)
    for name in ("roxford5k", "rparis6k"):
        top = copy_dataset(name, data)
        gnd_path = top / f"gnd_{name}.pkl"
        gnd = safe_pickle_load(gnd_path)
        if name == "rparis6k":
            gnd["gnd"][1]["hard"] = list(gnd["gnd"][1]["hard"]) + [10_000]
        gnd_path.write_bytes(pickle.dumps(gnd, protocol=2))
    with pytest.raises(GroundTruthError, match=r"gnd_rparis6k.pkl: gnd\[1\]\['hard'\] holds index 10000"):
        run_table_row("table9_gldv2_scratch", overrides={"method": "spreading", "data_root": str(data), **SMALL},
                      progress=False)
    nothing_written(env)


def damage_cub(data: Path) -> list:
    """Truncate two CUB images and delete one (two in the training half, one in the test half)."""
    top = copy_dataset("cub200", data)
    from ssml_lib.data import open_dataset

    train = open_dataset("cub200", top, "train", expect_counts="off")
    test = open_dataset("cub200", top, "test", expect_counts="off")
    bad = [train.paths[3], train.paths[10], test.paths[5]]
    for path in bad[:2]:
        Path(path).write_bytes(Path(path).read_bytes()[:300])  # truncated JPEG
    Path(bad[2]).unlink()  # missing
    return bad


@pytest.mark.filterwarnings(COUNTS)
def test_every_bad_image_is_named_before_training(env):
    bad = damage_cub(env / "data")
    overrides = {"method": "spreading", "data_root": str(env / "data"), **SMALL}
    with pytest.raises(DatasetError) as info:
        run_table_row("table2_cub_scratch", overrides=overrides, progress=False)
    message = str(info.value)
    assert "3 image file(s) that table2_cub_scratch / spreading reads are missing or unreadable, more than " \
           "max_bad_images=0" in message
    assert all(path in message for path in bad) and "(missing)" in message and "Truncated" in message
    assert "cub200 train: 2 of 48 images" in message and "cub200 test: 1 of 48 images" in message
    assert "Fix: restore intact copies" in message and "-p max_bad_images 3" in message
    nothing_written(env)


@pytest.mark.filterwarnings(COUNTS)
def test_max_bad_images_from_a_notebook_parameter_skips_and_counts_them(env):
    bad = damage_cub(env / "data")
    namespace = {"method": "spreading", "data_root": str(env / "data"), "params_file": None, "max_bad_images": 3,
                 **SMALL}  # papermill ... -p max_bad_images 3
    row = run_notebook_row("table2_cub_scratch", namespace, progress=False)
    checks = row.provenance["extra"]["data_checks"]
    assert checks["n_skipped"] == 3 and checks["max_bad_images"] == 3
    assert sorted(p for v in checks["skipped"].values() for p in v) == sorted(bad)
    assert row.info["evaluation"]["cub200"]["n_test"] == 47
    assert not row.standin and (env / "results" / "table2_cub_scratch" / "spreading.csv").is_file()
    with pytest.raises(DatasetError, match="more than max_bad_images=2"):
        run_notebook_row("table2_cub_scratch", {**namespace, "max_bad_images": 2}, progress=False)


# ---------------------------------------------------------------- 4. a text file where a checkpoint belongs


def test_a_text_file_as_the_runs_last_pt_is_named_with_the_fix(env):
    overrides = {"method": "spreading", **TINY}
    stage = row_run_dir(T1, None, overrides) / "train"
    stage.mkdir(parents=True)
    (stage / "last.pt").write_text("step 100 loss 0.5\n")  # torch.load: IndexError: pop from empty list
    with pytest.raises(CheckpointError) as info:
        run_table_row(T1, overrides=overrides, progress=False)
    assert f"{stage / 'last.pt'} is not a training checkpoint: it is a text file" in str(info.value)
    assert f"Fix: delete {stage / 'last.pt'}" in str(info.value)
    assert not (env / "results").exists()


# ---------------------------------------------------------------- 5. parameter names


def test_a_mistyped_training_key_gets_a_close_match_and_every_valid_key(env):
    with pytest.raises(ConfigError) as info:
        run_notebook_row(T1, {"method": "spreading", "epoch": 3, **TINY}, progress=False)  # -p epoch 3
    message = str(info.value)
    assert "unknown parameter 'epoch'" in message and "Did you mean 'epochs'?" in message
    valid = message.split("Valid keys: ")[1].split(". Fix")[0].split(", ")
    assert {"lr", "epochs", "optimizer", "batch_size", "temperature", "nn_positive_prob"} <= set(valid)
    assert "num_neighbors" not in valid  # another method's key
    nothing_written(env)


def test_another_methods_file_is_named_as_such(env, tmp_path):
    own = tmp_path / "my_stml.yaml"  # a hand-written STML file (no paper_row), given with -f to spreading
    own.write_text("method: stml\nnum_neighbors: 4\ndelta: 0.9\nepochs: 2\n")
    injected = {**yaml.safe_load(own.read_text()), "method": "spreading", **TINY}
    with pytest.raises(ConfigError) as info:
        run_notebook_row(T1, injected, progress=False)
    message = str(info.value)
    assert "'num_neighbors', 'delta' are settings of method 'stml' or 'stml_xbm', not of 'spreading'" in message
    assert "Fix: -p method stml" in message and "unknown parameter" not in message
    nothing_written(env)


# ---------------------------------------------------------------- 6. stand-in data passed as data_root


def test_standin_folders_passed_as_data_root_are_labelled_standin(env):
    dataset_root("cub200", None, standin_size="tiny")
    row = run_table_row(T1, overrides={"method": "pretrained", "data_root": str(standin_folder("tiny", 0)),
                                       "pretrain_epochs": 1, "device": "cpu"}, progress=False)
    assert row.standin and "STAND-IN DATA" in row.markdown
    folder = env / "results" / "standin" / T1
    csv = (folder / "pretrained.csv").read_text().splitlines()
    assert csv[0].split(",")[-1] == "standin" and all(line.endswith(",True") for line in csv[1:])
    prov = json.loads((folder / "pretrained.json").read_text())
    assert prov["data"]["standin"] is True and prov["data"]["label"] == "STAND-IN DATA"
    note = prov["extra"]["standin_data"]
    assert note["passed_as_data_root"] == str(standin_folder("tiny", 0)) and note["size"] == "tiny"
    assert "passed as data_root" in note["note"] and not (env / "results" / T1).exists()  # not in the real tree


def test_run_table_with_a_standin_data_root_plans_standin_outputs(env):
    from ssml_lib.experiments.run_table import plan_table

    dataset_root("cub200", None, standin_size="tiny")
    [plan] = plan_table(T1, methods=["pretrained"], data_root=str(standin_folder("tiny", 0)))
    assert plan.error is None and plan.standin and plan.size == "tiny"
    assert "standin" in plan.output.parts
