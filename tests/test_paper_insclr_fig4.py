"""The InsCLR paper's Figure 4 and mining-precision curves: the sweep's points as InsCLR settings (each differs
from row B / C of Table 1 only in what the figure varies), the paper-scale params file, the printed numbers, and
the precision curves read back from hand-written cycle logs."""
from __future__ import annotations

import json
import re

import pytest

from ssml_lib.errors import ConfigError
from ssml_lib.experiments.paper_insclr_ablations import ROWS, TABLE1
from ssml_lib.experiments.paper_insclr_fig4 import (FIG4, point, point_name, point_parameters, resolve_point,
                                                    sweep_points)
from ssml_lib.experiments.paper_insclr_mining_precision import precision_curves
from ssml_lib.paths import REPO_ROOT
from ssml_lib.results import load_reference

SWEEP_FILE = REPO_ROOT / "params" / FIG4 / "sweep.yaml"


def test_points_are_rows_b_and_c_with_the_figure_s_variables():
    b, c = ROWS[TABLE1]["b"].settings, ROWS[TABLE1]["c"].settings
    shared = {k: v for k, v in b.items() if k not in ("insclr_stages", "base_selection_threshold")}
    nn = point("nn", None, 3).settings
    assert {k: nn[k] for k in shared} == shared and nn["base_selection_threshold"] is None
    noaug = point("noaug", 0.65, 3).settings
    assert noaug["base_selection_threshold"] == c["base_selection_threshold"] == 0.65
    assert set(noaug) - set(nn) == {"selection_rule"} and noaug["num_neighbors"] == 3
    assert point("relative", 0.9, 7).settings["num_neighbors"] == 7
    assert point_name("nn", None, 5) == "nn_nb5" and point_name("multiscale", 0.65, 3) == "multiscale_t065_nb3"
    assert sweep_points(["nn", "noaug"], [0.6, 0.8], [3]) == [("nn", None, 3), ("noaug", 0.6, 3), ("noaug", 0.8, 3)]
    with pytest.raises(ConfigError, match="unknown selection rule"):
        point("fixed", 0.6, 3)
    with pytest.raises(ConfigError, match="empty"):
        sweep_points(["noaug"], [], [3])


def test_standin_points_layer_and_refuse_what_contradicts_them():
    params = point_parameters("noaug", 0.95, 3, None, {"standin_size": "tiny"})
    assert params["insclr_stages"] == ["base"] and params["selection_rule"] == "noaug"
    with pytest.raises(ConfigError, match="Figure 4 point"):
        point_parameters("noaug", 0.95, 3, None, {"base_selection_threshold": 0.5})
    r1, r7 = (resolve_point("noaug", 0.95, nb, None, {"standin_size": "tiny"}) for nb in (1, 7))
    assert (r1["train"].batch_size, r7["train"].batch_size) == (12, 48)  # 6 tuples of 1 + N_b (tiny: 24 = 6 x 4)


def test_sweep_file_comments_every_value_resolves_with_data_root_only(tmp_path):
    for line in SWEEP_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#")):
            assert re.match(r"^\w+: \S.*?\s+# \S", line), line
    for nb, batch in ((1, 128), (3, 256), (7, 512)):  # 64 tuples a batch (official gldv2 base)
        r = resolve_point("multiscale", 0.65, nb, str(SWEEP_FILE), {"data_root": str(tmp_path)})
        m = r["method"]
        assert not r["standin"] and r["train"].batch_size == batch and r["model"].backbone == "resnet101"
        assert (m.num_neighbors, m.selection_rule, m.base_selection_threshold, m.pool_size) == \
            (nb, "multiscale", 0.65, 500)
        assert m.insclr_stages == ("base",) * 4 and m.base_memory
    with pytest.raises(ConfigError, match="needs real data"):
        resolve_point("noaug", 0.65, 3, str(SWEEP_FILE), {})
    with pytest.raises(ConfigError, match="not Figure 4"):
        resolve_point("noaug", 0.65, 3, str(REPO_ROOT / "params" / TABLE1 / "c.yaml"), {"data_root": "/data"})


def test_the_numbers_the_paper_prints():
    df = load_reference(FIG4)
    assert (df["method"] == "augmented").all() and (df["metric"] == "mAP_medium").all()
    # the caption: "35.7 mAP and 39.5 mAP for ROxf and RPar"
    assert dict(zip(df["dataset"], df["printed"].astype(str))) == {"roxford5k": "35.7", "rparis6k": "39.5"}
    assert (df["value"] == df["printed"].astype(float)).all()
    assert df["source"].str.contains("Figure 4: Ablation on the positive selection in mini-batches").all()


def _log(folder, records):
    folder.mkdir(parents=True)
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_precision_curves_read_every_cycle_in_order(tmp_path):
    _log(tmp_path / "cycle2_impr", [{"epoch": 0, "step": 2, "precision_trace": [[1, 3, 4, 1, 4], [2, 2, 4, 0, 0]]}])
    _log(tmp_path / "cycle1_base", [{"epoch": 0, "step": 2, "precision_trace": [[2, 1, 2, 0, 0]]},
                                    {"epoch": 1, "step": 3, "precision_trace": [[3, 0, 0, 0, 0]]}])
    (tmp_path / "cycle10_base").mkdir()  # no log: not a finished cycle
    df = precision_curves(tmp_path)
    assert df["step"].tolist() == [2, 3, 4, 5]  # the impr cycle starts after the base cycle's 3 steps
    assert df["kind"].tolist() == ["base", "base", "impr", "impr"]
    assert df["batch_precision"].tolist()[::2] == [0.5, 0.75] and df["batch_precision"].isna().tolist()[1]
    assert df["memory_precision"].tolist()[2] == 0.25 and df["memory_precision"].isna().sum() == 3
    with pytest.raises(ConfigError, match="no cycle logs"):
        precision_curves(tmp_path / "cycle10_base")
