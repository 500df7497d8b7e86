"""GLDv2 retrieval: test vectors G1-G3 of reference/protocols.md §2.4, and the CSV parsing rules."""
import numpy as np
import pytest

from ssml_lib.errors import GroundTruthError
from ssml_lib.eval import (gldv2_first_correct_positions, gldv2_map_at_100, gldv2_mean_precision_at_k,
                           read_predictions, read_retrieval_solution)

G1_SOLUTION = {"A": ["s10", "s20"], "B": ["s10"], "C": ["s30", "s40", "s50"], "D": ["s30"]}
G1_PREDICTIONS = {"B": ["s00", "s10"], "C": ["s40"], "D": ["s30", "s40"]}


def test_g1_delf_unit_test_values():
    assert gldv2_map_at_100(G1_PREDICTIONS, G1_SOLUTION) == pytest.approx((0 + 0.5 + 1 / 3 + 1) / 4, abs=1e-15)
    assert round(gldv2_map_at_100(G1_PREDICTIONS, G1_SOLUTION), 6) == 0.458333
    assert gldv2_map_at_100(G1_PREDICTIONS, G1_SOLUTION, max_predictions=1) == pytest.approx(0.5, abs=1e-15)
    mp = gldv2_mean_precision_at_k(G1_PREDICTIONS, G1_SOLUTION, ks=(1, 2))
    assert mp == {1: pytest.approx(0.5, abs=1e-15), 2: pytest.approx(0.375, abs=1e-15)}
    first = gldv2_first_correct_positions(G1_PREDICTIONS, G1_SOLUTION)
    assert first.tolist() == [101, 2, 1, 1]
    assert first.mean() == 26.25 and np.median(first) == 1.5


def test_g2_duplicates_skipped_but_keep_their_position():
    solution = {"q1": ["a", "b", "c"], "q2": ["d"], "q3": ["e", "f"]}
    predictions = {"q1": ["x", "a", "a", "b"], "q2": ["y", "z", "d"]}
    assert gldv2_map_at_100(predictions, solution) == pytest.approx(2 / 9, abs=1e-15)


def test_g3_denominator_capped_at_100():
    solution = {"q": [f"i{j}" for j in range(150)]}
    assert gldv2_map_at_100({"q": [f"i{j}" for j in range(120)]}, solution) == 1.0


def test_unknown_query_is_an_error():
    with pytest.raises(GroundTruthError, match="not in the solution"):
        gldv2_map_at_100({"Z": ["s1"]}, G1_SOLUTION)


def test_csv_parsers(tmp_path):
    sol = tmp_path / "retrieval_solution_v2.1.csv"
    sol.write_text("id,images,Usage\n"
                   "q1,a b c,Public\n"
                   "q2,d,Private\n"
                   "q3,None,Ignored\n"
                   "q4,e f,Private\n")
    public, private, ignored = read_retrieval_solution(sol)
    assert public == {"q1": ["a", "b", "c"]}
    assert private == {"q2": ["d"], "q4": ["e", "f"]}
    assert ignored == ["q3"]
    pred = tmp_path / "pred.csv"
    pred.write_text("id,images\n"
                    "q1,x a a b \n"  # trailing space: empty last token removed
                    "\n"             # empty row skipped
                    "q3,zzz\n"       # ignored query skipped
                    "q2,\n")         # empty prediction: no entry, AP 0
    pub_pred, priv_pred = read_predictions(pred, public, private, ignored)
    assert pub_pred == {"q1": ["x", "a", "a", "b"]} and priv_pred == {}
    assert gldv2_map_at_100(pub_pred, public) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert gldv2_map_at_100(priv_pred, private) == 0.0


@pytest.mark.parametrize("text, match", [
    ("id,images\nq1,a\nq1,b\n", "twice"),
    ("id,images\nq9,a\n", "neither"),
])
def test_bad_prediction_files(tmp_path, text, match):
    p = tmp_path / "pred.csv"
    p.write_text(text)
    with pytest.raises(GroundTruthError, match=match):
        read_predictions(p, {"q1": ["a"]}, {})


def test_bad_solution_usage(tmp_path):
    p = tmp_path / "sol.csv"
    p.write_text("id,images,Usage\nq1,a,Secret\n")
    with pytest.raises(GroundTruthError, match="Usage"):
        read_retrieval_solution(p)
