"""params/<table>/<method>.yaml: one file per table row, at the thesis's (paper) scale.

Every file is checked for shape (the row it names, a comment on every value, no data_root) and resolved through
the runner's typed configs as a real run (``-p data_root``: only the file, then overrides); without data_root, in
another table or for another method it is refused. The resolved paper-scale values are compared with the thesis's
settings (§3.2, §3.3, §4.2). A representative subset of files (every method, both protocols, pre-trained and
scratch, the CUB/Cars and SOP/GLDv2 STML settings) is smoke-run end to end with the tiny stand-in's folders as
``data_root`` (labelled stand-in); ``SSML_SMOKE_ALL_PARAMS=1`` smoke-runs every file (minutes on a 2-core CPU).
"""
import os
import re
from pathlib import Path

import pytest
import yaml

from ssml_lib.errors import ConfigError
from ssml_lib.experiments import TABLES, run_table_row
from ssml_lib.experiments.datasets import dataset_root, standin_folder
from ssml_lib.experiments.extension_stml_memory import SETTINGS as MEMORY_SETTINGS
from ssml_lib.experiments.runner import resolve_params

REPO = Path(__file__).resolve().parent.parent
PARAMS = REPO / "params"
THESIS_ROWS = [(table, method) for table, spec in TABLES.items() for method in spec.methods]
EXTENSION_ROWS = [(table, "stml_xbm") for table in MEMORY_SETTINGS]  # STML + memory: no thesis number
ROWS = THESIS_ROWS + EXTENSION_ROWS
TRAINED = {"supervised", "spreading", "insclr", "stml", "stml_xbm"}
IMAGE_SIZE = {"googlenet": 227, "resnet18": 224, "resnet101": 224}  # thesis §4.2 (ResNet101: ResNet's 224)
SMOKE_SUBSET = [
    ("table1_cub_pretrained", "pretrained"),   # recall protocol, stand-in "ImageNet" pre-training
    ("table7_gldv2", "pretrained"),            # revisited protocol with the file's scales and max_side
    ("table1_cub_pretrained", "supervised"),
    ("table1_cub_pretrained", "spreading"),    # the CUB-only 1-NN partner trick
    ("table9_gldv2_scratch", "spreading"),     # GLDv2 training set (class subset), scratch
    ("table2_cub_scratch", "insclr"),          # the four-cycle schedule, candidate pools, both memories
    ("table4_cars_scratch", "stml"),           # (q, k) = (5, 11): lists of 12
    ("table5_sop_pretrained", "stml"),         # (q, k) = (15, 3): lists of 4, SOP teacher/delta/embedding lr
    ("table1_cub_pretrained", "stml_xbm"),     # the extension: STML's CUB settings + the memory (in use)
]
SMOKE = ROWS if os.environ.get("SSML_SMOKE_ALL_PARAMS") == "1" else SMOKE_SUBSET


def params_file(table: str, method: str) -> Path:
    return PARAMS / table / f"{method}.yaml"


def paper(table: str, method: str) -> dict:
    """The configs of a real run: ``-p data_root`` given, so no stand-in layer."""
    return resolve_params(table, params_file(table, method), {"data_root": "/data"})


# ------------------------------------------------------------------ the set of files and their shape


def test_one_file_per_table_row_and_no_other():
    found = {(p.parent.name, p.stem) for p in PARAMS.glob("table*/*.yaml")}
    assert found == set(ROWS)


@pytest.mark.parametrize("table,method", ROWS)
def test_file_names_its_row_and_comments_every_value(table, method):
    path = params_file(table, method)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["method"] == method and data["paper_row"] == f"{table}/{method}"  # refused in other rows
    assert "data_root" not in data and "table" not in data  # the user passes data_root; the notebook is the table
    keys = re.findall(r"^([A-Za-z_][\w.]*):", path.read_text(encoding="utf-8"), flags=re.M)
    assert sorted(keys) == sorted(data)  # flat: every key is a top-level line
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"^[A-Za-z_]", line):
            value, sep, comment = line.partition("#")
            assert sep and comment.strip(), f"{path.name}: no source comment on {line!r}"
        assert len(line) <= 120, f"{path}: line longer than 120 characters"
    for key, value in data.items():  # PyYAML reads 1e-4 as a string; floats must be written 1.0e-4
        assert not (isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value)), key


# ------------------------------------------------------------------ resolution through the typed configs


@pytest.mark.parametrize("table,method", ROWS)
def test_resolves_with_data_root_and_is_refused_without(table, method):
    real = paper(table, method)
    assert real["run"].method == method and real["run"].data.data_root == "/data"
    assert real["files"] == [str(params_file(table, method))]  # no stand-in layer on real data
    # papermill -f injects the same keys as notebook variables (the overrides layer): the same configs
    injected = yaml.safe_load(params_file(table, method).read_text(encoding="utf-8"))
    via_f = resolve_params(table, None, {**injected, "data_root": "/data"})
    assert all(via_f[k] == real[k] for k in ("run", "model", "method", "train"))
    # without data_root the paper-scale file would run on the stand-in: refused, given either way
    for given, source in ((dict(params_file=params_file(table, method)), f"params file {params_file(table, method)}"),
                          (dict(overrides=injected), "papermill -f")):
        with pytest.raises(ConfigError, match="are for real data only, but no data_root was given") as info:
            resolve_params(table, given.get("params_file"), given.get("overrides"))
        assert source in str(info.value) and "Fix: pass -p data_root" in str(info.value)


@pytest.mark.parametrize("table,method", ROWS)
def test_paper_scale_settings(table, method):
    spec, cfg = TABLES[table], paper(table, method)
    run, model, train, mcfg = cfg["run"], cfg["model"], cfg["train"], cfg["method"]
    assert model.backbone == spec.backbone
    if spec.protocol == "revisited":
        assert model.max_side == 1024 and run.eval.scales == pytest.approx((1.0, 2 ** -0.5, 0.5))
    if method not in TRAINED:
        return
    assert (run.data.image_size, run.data.resize_size) == (IMAGE_SIZE[spec.backbone], 256)
    assert model.embedding_size == 128
    if spec.train_dataset == "gldv2":
        assert run.data.gldv2_fraction == 0.06
    if method in ("stml", "stml_xbm"):  # thesis §3.3: q anchors with k neighbours each, q(k + 1) = 60 images
        q, k = (5, 11) if spec.train_dataset in ("cub200", "cars196") else (15, 3)
        assert mcfg.num_neighbors == k + 1 and train.batch_size == q * (k + 1) == 60
        sop_like = spec.train_dataset in ("sop", "gldv2")
        assert (mcfg.teacher_momentum, mcfg.delta) == ((0.9, 0.9) if sop_like else (0.999, 1.0))
        assert train.optimizer == "adamp" and mcfg.g_embedding_size == 1024
    else:
        assert train.batch_size == 64
    if method == "insclr":
        assert mcfg.insclr_stages == ("base", "base", "base", "impr")
        assert (mcfg.pool_size, mcfg.num_neighbors) == (250, 3)
        assert mcfg.base_selection_threshold == mcfg.impr_selection_threshold == 0.95
        assert "_avg0.60_" in mcfg.impr_mode  # T_h2 = 0.6 in memory
        assert train.batch_size % (1 + mcfg.num_neighbors) == 0
    if method == "spreading":
        assert (train.optimizer, train.lr, train.milestones) == ("sgd", 1e-3, (20, 40))
        assert mcfg.nn_positive_prob == (0.5 if spec.train_dataset == "cub200" else 0.0)


@pytest.mark.parametrize("table,method", EXTENSION_ROWS)
def test_stml_memory_rows_are_the_stml_rows_plus_the_memory(table, method):
    from dataclasses import fields

    xbm, stml = paper(table, method), paper(table, "stml")
    assert xbm["train"] == stml["train"] and xbm["model"] == stml["model"]
    assert xbm["run"].data == stml["run"].data and xbm["run"].eval == stml["run"].eval
    shared = [f.name for f in fields(stml["method"])]
    assert [getattr(xbm["method"], k) for k in shared] == [getattr(stml["method"], k) for k in shared]
    mcfg, epoch = xbm["method"], {"table1_cub_pretrained": 5864, "table3_cars_pretrained": 8054,
                                  "table5_sop_pretrained": 59551, "table7_gldv2": 239979}[table] // 60
    assert (mcfg.memory_size, mcfg.memory_use_step, mcfg.memory_terms) == (8192, epoch, "negatives")
    assert mcfg.memory_size >= 2 * xbm["train"].batch_size  # at least one step's rows


def test_sop_stml_embedding_lr_follows_the_official_readme():
    assert paper("table5_sop_pretrained", "stml")["method"].embedding_lr == 1e-2  # README SOP: --emb-lr 1e-2
    scratch = paper("table6_sop_scratch", "stml")  # README SOP from scratch: lr 5e-4, fix_lr, 180 epochs
    assert (scratch["train"].lr, scratch["train"].schedule, scratch["train"].epochs) == (5e-4, "constant", 180)
    assert paper("table1_cub_pretrained", "stml")["method"].embedding_lr == 1e-4


def test_a_mistyped_key_in_a_params_file_is_refused(tmp_path):
    bad = tmp_path / "stml.yaml"
    bad.write_text(params_file("table1_cub_pretrained", "stml").read_text().replace("num_neighbors:", "num_neighbours:"))
    with pytest.raises(ConfigError, match="num_neighbours"):
        resolve_params("table1_cub_pretrained", bad, {"data_root": "/data"})


# ------------------------------------------------------------------ smoke runs on the tiny stand-in


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache for the module: the stand-in data and its "ImageNet" pre-training are made once."""
    return tmp_path_factory.mktemp("ssml_cache")


def smoke_overrides(table: str, method: str) -> dict:
    spec = TABLES[table]
    out = dict(standin_size="tiny", pretrain_epochs=1, backbone="convnet4", image_size=32, resize_size=36,
               num_workers=0, device="cpu")
    if spec.ks == (1, 10, 100):
        out["ks"] = [1, 10]  # the tiny SOP test split has 48 images
    if method not in TRAINED:
        return out
    out.update(epochs=1, max_steps=2, batch_size=8)
    if method in ("stml", "stml_xbm"):
        out["batch_size"] = 2 * paper(table, method)["method"].num_neighbors  # two whole NN lists
    if method == "stml_xbm":
        out["memory_use_step"] = 1  # the memory term runs in the two steps
    if method == "insclr":
        out.update(pool_size=8, memory_start_step=0, memory_use_step=1, memory_draw=16, memory_exclude=2)
    if spec.train_dataset == "gldv2":
        out.update(gldv2_fraction=1.0, scales=[1.0])  # the tiny GLDv2 stand-in is small already
    return out


@pytest.mark.parametrize("table,method", SMOKE)
def test_smoke_run(table, method, shared_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("SSML_CACHE", str(shared_cache))
    monkeypatch.setenv("SSML_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SSML_RUNS", str(tmp_path / "runs"))
    spec = TABLES[table]
    for name in (spec.train_dataset, *spec.eval_datasets):  # the tiny stand-in's folders, passed as data_root
        dataset_root(name, None, standin_size="tiny")
    overrides = {**smoke_overrides(table, method), "data_root": str(standin_folder("tiny", 0))}
    row = run_table_row(table, params_file(table, method), overrides, progress=False)
    assert row.standin and row.method == method  # stand-in data, though passed as data_root
    assert row.provenance["data"]["standin"] is True and row.provenance["extra"]["standin_data"]["size"] == "tiny"
    assert set(row.rows["dataset"]) == set(spec.eval_datasets)
    assert row.rows["value"].between(0, 100).all()
    assert str(params_file(table, method)) in row.provenance["extra"]["params_files"]
    # the file's method settings reached the run, except what the smoke run overrides
    file_values = yaml.safe_load(params_file(table, method).read_text(encoding="utf-8"))
    ran = row.provenance["params"]["method"]
    for key in set(file_values) & set(ran) - set(overrides):
        expected = file_values[key]
        assert ran[key] == (pytest.approx(expected) if isinstance(expected, float) else expected), key
    if method in TRAINED:
        assert row.info["training"]["stages"]
    assert (tmp_path / "results" / "standin" / table / f"{method}.csv").is_file()
