"""The ISL paper's Table 1 notebook: its params files (one per row, a source comment on every value, the official
settings, refused without data_root), the "w/o HPE" row as exactly hard_positive_weight 0, the stand-in layers, and
a tiny end-to-end run (kNN per epoch, linear probe on conv5) that writes only where it is told."""
from __future__ import annotations

import dataclasses
import pytest

from conftest import isolate
from paper_params_case import check_paper_params_file
from ssml_lib.errors import ConfigError
from ssml_lib.experiments.paper_cifar import resolve_row as _resolve
from ssml_lib.experiments.paper_isl import ARCHITECTURES, ISL_TABLE, ROWS, STANDIN_ISL, TABLE, run_paper_isl_notebook
from ssml_lib.results import load_reference


def resolve(row, **kw):
    return _resolve(row, table=ISL_TABLE, **kw)


def test_one_params_file_per_row_and_no_other():
    assert {p.stem for p in ISL_TABLE.params_dir.glob("*.yaml")} == set(ROWS)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_params_file_names_its_row_and_comments_every_value(row):
    data = check_paper_params_file(ISL_TABLE, row)
    assert "backbone" not in data  # the architecture comes from -p backbone


@pytest.mark.parametrize("row", sorted(ROWS))
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_params_file_resolves_to_the_official_settings_and_is_refused_without_data_root(row, arch):
    r = resolve(row, data_root="/data", paper_scale=True, overrides={"backbone": ARCHITECTURES[arch]})
    assert r.name == row and r.method == ROWS[row][0] and r.model["backbone"] == ARCHITECTURES[arch]
    assert (r.model["embedding_size"], r.model["knn_k"], r.model["knn_temperature"]) == (128, 200, 0.1)
    assert r.model["train_flip"] is False and r.model["conv5_pool"] == "avg"
    if row != "pretrained":
        t = r.train_cfg
        assert (t.optimizer, t.lr, t.momentum, t.weight_decay, t.batch_size, t.epochs) == \
            ("sgd", 0.03, 0.9, 5e-4, 128, 200)
    with pytest.raises(ConfigError, match="needs the real dataset"):
        resolve(row, paper_scale=True)


def test_without_hpe_differs_from_isl_only_in_the_hard_positive_weight():
    isl, no_hpe = (resolve(r, data_root="/d", paper_scale=True) for r in ("isl", "isl_no_hpe"))
    assert isl.method_cfg.hard_positive_weight == 0.5 and no_hpe.method_cfg.hard_positive_weight == 0.0
    assert dataclasses.replace(no_hpe.method_cfg, hard_positive_weight=0.5) == isl.method_cfg
    assert no_hpe.train_cfg == isl.train_cfg and no_hpe.model == isl.model
    assert (isl.method_cfg.isl_rounds, isl.method_cfg.isl_gate, isl.method_cfg.isl_radius) == (4, 0.5, 0.6)
    # the row is what it names, whatever a layer says
    assert resolve("isl_no_hpe", overrides={"hard_positive_weight": 0.5}).method_cfg.hard_positive_weight == 0.0


def test_rows_and_settings_match_the_reference_table():
    ref = load_reference(TABLE)
    settings = {s.partition("/")[2] for s in ref["setting"]}
    assert {ROWS["isl"][2], ROWS["isl_no_hpe"][2]} == settings and set(ref["method"]) == {"isl"}


def test_standin_layers_and_refusals():
    isl, nps = resolve("isl"), resolve("npsoftmax")
    assert isl.model["backbone"] == nps.model["backbone"] == "convnet4"
    assert all(getattr(isl.method_cfg, k) == v for k, v in STANDIN_ISL.items())
    assert resolve("isl", overrides={"backbone": "alexnet_cifar"}).model["backbone"] == "alexnet_cifar"
    assert resolve("isl", standin_size="tiny").train_cfg.epochs == 1
    with pytest.raises(ConfigError, match="unknown parameter 'isl_rounds'"):
        resolve("npsoftmax", overrides={"isl_rounds": 2})  # ISL's stand-in layer is ISL's only
    with pytest.raises(ConfigError, match="unknown row"):
        resolve("deepcluster")


def test_dataset_and_architecture_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="dataset 'stl10'"):
        run_paper_isl_notebook({"method": "isl", "dataset": "stl10"})
    with pytest.raises(ConfigError, match="backbone 'vgg'"):
        run_paper_isl_notebook({"method": "isl", "backbone": "vgg"})


def test_tiny_run_scores_both_protocols_and_writes_only_where_told(tmp_path, monkeypatch):
    isolate(tmp_path, tmp_path / "cache", monkeypatch)
    result = run_paper_isl_notebook({"method": ["pretrained", "isl_no_hpe"], "dataset": "svhn",
                                     "standin_size": "tiny", "device": "cpu", "seed": 0})
    assert result.standin and result.paths["knn_curve"].is_file()
    assert str(result.paths["knn_curve"]).startswith(str(tmp_path))
    table = result.tables["Table 1"].set_index("setting")
    knn, lc = "ours, STAND-IN (%) weighted kNN / FC", "ours, STAND-IN (%) linear classifier / conv5"
    assert table.loc["alexnet/no_hpe", "paper weighted kNN / FC"] == 91.0  # the paper's SVHN AlexNet cell
    isl, pre = table[table["method"] == "isl"], table[table["method"] == "pretrained"]
    ours = isl.loc["alexnet/no_hpe"]
    assert 0 <= ours[knn] <= 100 and 0 <= ours[lc] <= 100 and ours["our epochs"] == 2  # 2 stand-in rounds x 1
    assert isl.loc["alexnet", "paper row"] == "ISL" and isl[knn].isna()["alexnet"]  # the paper's, not run here
    assert pre.loc["alexnet", "paper row"] == "(no paper number)" and 0 <= pre.loc["alexnet", lc] <= 100
    curve = result.tables["kNN per epoch"]
    assert list(curve[curve["row"] == "isl_no_hpe"]["epoch"]) == [0, 1, 2]  # GAN stages are not epochs here
    written = sorted(p.name for p in (tmp_path / "results").rglob("*.csv"))
    assert written == ["isl.csv", "pretrained.csv"]


def test_conv5_probe_reads_the_last_conv_map_not_the_embedding():
    import torch
    from torch import nn

    from ssml_lib.experiments.paper_isl import conv5_probe

    class Trunk(nn.Module):
        def conv5(self, x):
            return x[:, :2]  # a (B, 2, H, W) "conv5" map whose channel 0 carries the class

        def forward(self, x):
            raise AssertionError("the probe must read conv5, not the FC features")

    class View(torch.utils.data.Dataset):
        def __init__(self, labels, seed):
            g = torch.Generator().manual_seed(seed)
            self.base = type("Base", (), {"labels": labels})()
            self.x = torch.randn(len(labels), 3, 4, 4, generator=g) * 0.3
            self.x[:, 0] += torch.tensor(labels, dtype=torch.float32)[:, None, None] * 2 - 1

        def __len__(self):
            return len(self.base.labels)

        def __getitem__(self, i):
            return self.x[i], self.base.labels[i], i

    model = nn.Module()
    model.backbone = Trunk()
    labels = [i % 2 for i in range(40)]
    out = conv5_probe(model, View(labels, 0), View(labels[:20], 1), torch.device("cpu"), pool="avg", epochs=100,
                      seed=0)
    assert out == {"lc_top1": 100.0}
