"""Candidate pool: exact inner-product top-P, self excluded by index, ties by index, atomic .npz files."""
import numpy as np
import pytest
import torch

from ssml_lib.errors import SsmlError
from ssml_lib.mining import candidate_pool, load_candidate_pool, save_candidate_pool

BACKENDS = ["torch", "faiss"]


def _unit(rows):
    x = torch.tensor(rows, dtype=torch.float32)
    return x / x.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicate_rows_keep_each_other_and_drop_only_self(backend):
    # rows 0 and 2 are the same image twice: each must list the other first, never itself.
    x = _unit([[1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 0, 1]])
    idx, sims = candidate_pool(x, 3, backend=backend)
    assert idx[0, 0] == 2 and idx[2, 0] == 0
    assert not (idx == torch.arange(5)[:, None]).any()
    assert torch.allclose(sims[0, 0], torch.tensor(1.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_broken_by_index_and_values_are_exact_dots(backend):
    # rows 1..4 all have inner product 0.6 with row 0 (different vectors): order must be 1, 2, 3, 4.
    x = torch.tensor([[1, 0, 0], [0.6, 0.8, 0], [0.6, -0.8, 0], [0.6, 0, 0.8], [0.6, 0, -0.8]])
    idx, sims = candidate_pool(x, 4, backend=backend)
    assert idx[0].tolist() == [1, 2, 3, 4]
    ref = (x.double() @ x.double().T)
    assert torch.allclose(sims.double(), ref.gather(1, idx), atol=1e-6)
    assert (sims[:, :-1] >= sims[:, 1:]).all()


def test_backends_agree_and_include_self_when_asked():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(40, 8, generator=g), dim=1)
    a = candidate_pool(x, 6, backend="torch")
    b = candidate_pool(x, 6, backend="faiss")
    assert torch.equal(a[0], b[0])
    brute = (x.double() @ x.double().T).fill_diagonal_(-2).argsort(dim=1, descending=True, stable=True)[:, :6]
    assert torch.equal(a[0], brute)
    with_self, _ = candidate_pool(x, 2, exclude_self=False, backend="torch")
    assert torch.equal(with_self[:, 0], torch.arange(40))


def test_pool_size_checked_before_work():
    x = torch.eye(4)
    with pytest.raises(SsmlError, match="pool_size"):
        candidate_pool(x, 4)
    with pytest.raises(SsmlError, match="floating"):
        candidate_pool(torch.ones(4, 2, dtype=torch.int64), 1)


def test_save_load_roundtrip_official_names(tmp_path):
    x = _unit([[1, 0], [0, 1], [1, 1], [1, -1]])
    idx, sims = candidate_pool(x, 2)
    path = save_candidate_pool(tmp_path / "stage0_neighbor.npz", idx, sims)
    with np.load(path) as data:
        assert sorted(data.files) == ["neighbor", "similarity"]
        assert data["neighbor"].dtype == np.int64 and data["similarity"].dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == ["stage0_neighbor.npz"]  # no temporary left behind
    idx2, sims2 = load_candidate_pool(path, num_items=4)
    assert torch.equal(idx2, idx) and torch.equal(sims2, sims)


def test_load_refuses_bad_files(tmp_path):
    with pytest.raises(SsmlError, match="does not exist"):
        load_candidate_pool(tmp_path / "missing.npz")
    np.savez(tmp_path / "wrong.npz", foo=np.zeros(3))
    with pytest.raises(SsmlError, match="lacks"):
        load_candidate_pool(tmp_path / "wrong.npz")
    np.savez(tmp_path / "range.npz", neighbor=np.array([[5], [0]]), similarity=np.ones((2, 1), np.float32))
    with pytest.raises(SsmlError, match="must lie in"):
        load_candidate_pool(tmp_path / "range.npz")
    path = save_candidate_pool(tmp_path / "ok.npz", torch.tensor([[1], [0]]), torch.ones(2, 1))
    with pytest.raises(SsmlError, match="dataset has 3"):
        load_candidate_pool(path, num_items=3)
