"""The InsCLR paper's protocols on a row's model, on the tiny stand-in: the rOxford rows without distractors agree
with the thesis tables' revisited evaluation; a 105k database reuses the 5k database's descriptors; GLDv2 mAP@100
agrees with the Kaggle metric on id lists; whitening is fitted on the training set and labels the rows."""
import numpy as np
import pytest
import torch

from ssml_lib.data import open_dataset
from ssml_lib.eval import gldv2_map_at_100
from ssml_lib.experiments.datasets import dataset_root
from ssml_lib.experiments.evaluate import evaluate_revisited
from ssml_lib.experiments.evaluate_paper import (DescriptorCache, RetrievalEmbedder, evaluate_gldv2_retrieval,
                                                 evaluate_original, evaluate_revisited_r1m)
from ssml_lib.experiments.paper_tables import evaluate_paper_table
from ssml_lib.experiments.runner import initial_model, resolve_params
from ssml_lib.experiments.tables import get_table

NORM = "resnet"


def row(table, **overrides):
    cfg = resolve_params(table, None, {"method": "pretrained", "standin_size": "tiny", "device": "cpu", **overrides})
    spec = get_table(table)
    model, _ = initial_model(spec, cfg["model"], standin=True, size="tiny", seed=0,
                             image_size=cfg["run"].data.image_size, device=torch.device("cpu"), progress=False)
    return spec, cfg, model


def root(name):
    return dataset_root(name, None, standin_size="tiny")


def test_revisited_without_distractors_matches_the_thesis_path_and_distractors_only_add_columns():
    spec, cfg, model = row("paper_insclr_table3_revisited")
    run, mcfg = cfg["run"], cfg["model"]
    cache = DescriptorCache(RetrievalEmbedder(model), run.eval, torch.device("cpu"), False)
    rows, info = evaluate_revisited_r1m(cache, "roxford5k", root("roxford5k"), root("revisitop1m"),
                                        max_side=mcfg.max_side, normalize=NORM, standin=True)
    ours = {(r["dataset"], r["metric"]): r["value"] for r in rows}
    assert set(ours) == {(d, m) for d in ("roxford5k", "roxford5k+r1m") for m in ("mAP_medium", "mAP_hard")}
    thesis, _ = evaluate_revisited(model, "roxford5k", root("roxford5k"), run.eval, max_side=mcfg.max_side,
                                   normalize=NORM, device=torch.device("cpu"), progress=False, standin=True)
    for r in thesis:
        if (r["dataset"], r["metric"]) in ours:
            assert ours[(r["dataset"], r["metric"])] == pytest.approx(r["value"], abs=1e-6)
    assert info["n_distractors"] == 40 and len(cache.store) == info["n_db"] + info["n_query"] + 40
    for m in ("mAP_medium", "mAP_hard"):  # distractors are never positives: mAP can only fall
        assert ours[("roxford5k+r1m", m)] <= ours[("roxford5k", m)] + 1e-9


def test_a_105k_database_reuses_the_5k_descriptors():
    spec, cfg, model = row("paper_insclr_table4_oxford_paris")
    cache = DescriptorCache(RetrievalEmbedder(model), cfg["run"].eval, torch.device("cpu"), False)
    small, i5 = evaluate_original(cache, "oxford5k", root("oxford5k"), max_side=None, normalize=NORM, standin=True)
    stored = len(cache.store)
    big, i105 = evaluate_original(cache, "oxford105k", root("oxford105k"), max_side=None, normalize=NORM,
                                  standin=True)
    assert stored == i5["n_db"] + i5["n_query"] and len(cache.store) == stored + i105["n_distractors"] > stored
    assert [r["metric"] for r in small + big] == ["mAP", "mAP"] and 0 <= big[0]["value"] <= 100


def test_gldv2_map_at_100_agrees_with_the_kaggle_metric_on_id_lists():
    spec, cfg, model = row("paper_insclr_table5_gldv2_retrieval")
    cache = DescriptorCache(RetrievalEmbedder(model), cfg["run"].eval, torch.device("cpu"), False)
    rows, info = evaluate_gldv2_retrieval(cache, "gldv2_retrieval", root("gldv2_retrieval"), max_side=None,
                                          normalize=NORM, standin=True)
    index = open_dataset("gldv2_retrieval", root("gldv2_retrieval"), "index", expect_counts="off")
    test = open_dataset("gldv2_retrieval", root("gldv2_retrieval"), "test", expect_counts="off")
    scores = cache.embed(test) @ cache.embed(index).T  # already embedded: read from the cache
    order = torch.argsort(scores, dim=1, descending=True).numpy()[:, :100]
    for subset in ("Public", "Private"):
        chosen = [q for q in range(len(test)) if test.usage[q] == subset]
        predictions = {test.image_ids[q]: [index.image_ids[j] for j in order[q]] for q in chosen}
        solution = {test.image_ids[q]: list(test.relevant_ids[q]) for q in chosen}
        ours = next(r["value"] for r in rows if r["metric"] == f"mAP@100_{subset.lower()}")
        assert ours == pytest.approx(100 * gldv2_map_at_100(predictions, solution), abs=1e-9)
    assert info["n_public"] + info["n_private"] == len(test)


def test_whitening_is_fitted_on_the_training_set_and_labels_the_rows():
    spec, cfg, model = row("paper_insclr_table5_gldv2_retrieval", whitening="pca", whitening_images=40)
    roots = {"gldv2": root("gldv2"), "gldv2_retrieval": root("gldv2_retrieval")}
    rows, info = evaluate_paper_table(spec, model, roots, cfg["run"], cfg["model"], torch.device("cpu"),
                                      progress=False, standin=True)
    assert {r["setting"] for r in rows} == {"whitening"}
    record = info["whitening"]
    assert record["n_images"] == 40 and record["fitted_on"].startswith("gldv2 train")
    assert 2 <= record["kept_dims"] <= min(record["input_dims"], 39)  # at most n - 1 usable directions
    assert np.isfinite([r["value"] for r in rows]).all()
