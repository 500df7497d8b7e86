"""params/paper_spreading_table{3,4,5,6}_*/<row>.yaml: the Spreading paper's unseen-class settings (its §4.2).

The shape of every file (its row, a comment on every value) and its resolution (only with data_root, only in its
table) are checked with every PAPER_TABLES entry's in tests/test_params_paper_insclr.py; here: the paper's values.
"""
from pathlib import Path

import pytest

from ssml_lib.experiments.runner import resolve_params
from ssml_lib.experiments.tables import PAPER_TABLES

PARAMS = Path(__file__).resolve().parent.parent / "params"
TABLES = [t for t in PAPER_TABLES if t.startswith("paper_spreading_table")]
ROWS = [(table, method) for table in TABLES for method in PAPER_TABLES[table].methods]


def path_of(table, method):
    return PARAMS / table / f"{method}.yaml"


def test_four_tables_one_file_per_row_and_no_other():
    assert sorted(TABLES) == ["paper_spreading_table3_cub", "paper_spreading_table4_sop",
                              "paper_spreading_table5_cars", "paper_spreading_table6_sop_scratch"]
    found = {(p.parent.name, p.stem) for table in TABLES for p in (PARAMS / table).glob("*.yaml")}
    assert found == set(ROWS)


@pytest.mark.parametrize("table,method", ROWS)
def test_paper_settings(table, method):
    cfg = resolve_params(table, path_of(table, method), {"data_root": "/data"})
    run, model, train, m = cfg["run"], cfg["model"], cfg["train"], cfg["method"]
    scratch = table.endswith("scratch")
    assert model.backbone == ("resnet18" if scratch else "googlenet") and model.embedding_size == 128  # §4.2
    assert (run.data.image_size, run.data.resize_size) == ((224 if scratch else 227), 256)
    assert model.augmentation == "spreading" and model.pooling == "avg"
    if method == "pretrained":  # "Initial (FC)" / "Random": the new FC, untrained
        assert m.pretrained_output == "fc"
    elif method in ("spreading", "nce"):  # §4.2: SGD 0.001, momentum 0.9, no decay, batch 64 (T = 0.1)
        assert (train.optimizer, train.lr, train.momentum, train.schedule, train.batch_size) == (
            "sgd", 1e-3, 0.9, "constant", 64)
        assert m.temperature == 0.1
    if method == "spreading":  # the nearest instance as positive: CUB only, as the official code
        assert m.nn_positive_prob == (0.5 if table.endswith("cub") else 0.0)


def test_initial_fc_row_builds_the_untrained_head_and_others_do_not(monkeypatch):
    """``pretrained_output: fc`` keeps the 128-d head; the thesis tables' pretrained rows are unchanged."""
    from ssml_lib.experiments.row_model import ModelConfig, initial_model, wants_pretrained_fc
    from ssml_lib.experiments.tables import get_table

    fc = resolve_params("paper_spreading_table6_sop_scratch", None, {"method": "pretrained", "standin_size": "tiny"})
    thesis = resolve_params("table6_sop_scratch", None, {"method": "pretrained", "standin_size": "tiny"})
    assert wants_pretrained_fc(fc) and not wants_pretrained_fc(thesis)
    spec = get_table("paper_spreading_table6_sop_scratch")
    import torch

    args = dict(standin=True, size="tiny", seed=0, image_size=48, device=torch.device("cpu"))
    with_fc, info = initial_model(spec, ModelConfig(), method="pretrained", pretrained_fc=True, **args)
    plain, plain_info = initial_model(spec, ModelConfig(), method="pretrained", **args)
    trained, _ = initial_model(spec, ModelConfig(), method="spreading", **args)
    assert info["head"] == "linear" and plain_info["head"] == "identity"
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():  # the same seeded head the trained rows start from
        assert torch.equal(with_fc.eval()(x), trained.eval()(x))
        assert with_fc(x).shape[-1] == 128 != plain.eval()(x).shape[-1]
