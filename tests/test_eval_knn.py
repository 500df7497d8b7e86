"""Exact kNN: brute-force float64 reference with (key, index) order; faiss == torch; chunking; self exclusion."""
import numpy as np
import pytest
import torch

from ssml_lib.eval import EvalInputError, faiss_available, knn

BACKENDS = ["torch"] + (["faiss"] if faiss_available() else [])


def reference_knn(query, ref, k, metric, exclude_self):
    """float64 brute force; lexsort puts ties at the lower reference index."""
    q, r = query.double(), ref.double()
    key = -(q @ r.T) if metric == "ip" else ((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)
    if exclude_self:
        key[torch.arange(len(q)), torch.arange(len(q))] = float("inf")
    idx = np.broadcast_to(np.arange(key.shape[1]), key.shape)
    order = np.lexsort((idx, key.numpy()), axis=1)[:, :k]
    return torch.from_numpy(order)


def datasets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 8, generator=g)
    ints = torch.randint(-2, 3, (90, 3), generator=g).float()
    dup = torch.cat([ints, ints[:30]])  # exact duplicates and integer scores: many exact ties
    return {"random": (x, None), "random_ref": (x[:40], torch.cat([x[:40], torch.randn(60, 8, generator=g)])),
            "ties": (dup, None), "ties_ref": (dup[:25], dup)}


@pytest.mark.parametrize("name", list(datasets()))
@pytest.mark.parametrize("metric", ["ip", "l2sq"])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_matches_reference_on_every_backend(name, metric, exclude_self):
    q, ref = datasets()[name]
    r = q if ref is None else ref
    for k in (1, 5, 30):
        expect = reference_knn(q, r, k, metric, exclude_self)
        for backend in BACKENDS:
            vals, idx = knn(q, ref, k, metric=metric, exclude_self=exclude_self, backend=backend)
            assert torch.equal(idx, expect), (backend, k)
            rk = -(q.double() @ r.double().T) if metric == "ip" else torch.cdist(q.double(), r.double()) ** 2
            want = rk.gather(1, expect)
            torch.testing.assert_close(vals.double(), -want if metric == "ip" else want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not faiss_available(), reason="faiss not installed")
def test_faiss_and_torch_identical_on_larger_random_data():
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(2000, 32, generator=g), dim=1)
    x = torch.cat([x, x[:100]])  # plus exact duplicates
    for metric in ("ip", "l2sq"):
        a = knn(x, k=50, metric=metric, exclude_self=True, backend="faiss")[1]
        b = knn(x, k=50, metric=metric, exclude_self=True, backend="torch")[1]
        assert torch.equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunked_equals_one_block(backend):
    g = torch.Generator().manual_seed(2)
    x = torch.randint(-3, 4, (300, 4), generator=g).float()
    one = knn(x, k=20, exclude_self=True, backend=backend, max_bytes=2**30)
    tiny = knn(x, k=20, exclude_self=True, backend=backend, max_bytes=1)  # one query row per chunk
    assert torch.equal(one[1], tiny[1]) and torch.equal(one[0], tiny[0])


def test_exclude_self_removes_by_index_not_first_column():
    # rows 0 and 1 are identical: with the ties-by-index order, query 1's first neighbour is 0, not itself
    x = torch.tensor([[0.0], [0.0], [1.0], [1.1]])
    idx = knn(x, k=1, metric="l2sq", exclude_self=True, backend="torch")[1]
    assert idx[:, 0].tolist() == [1, 0, 3, 2]


def test_self_absent_from_list_drops_last():
    # unnormalised inner product: row 0 is not its own best match, so self is absent from the k+1 list
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    idx = knn(x, k=2, metric="ip", exclude_self=True, backend="torch")[1]
    assert idx[0].tolist() == [3, 2]
    assert idx[3].tolist() == [2, 1]


def test_numpy_input_and_dtypes():
    x = np.random.default_rng(0).normal(size=(50, 6))
    v, i = knn(x, k=3)
    assert v.dtype == torch.float32 and i.dtype == torch.int64 and i.shape == (50, 3)


def test_bad_input_is_refused_before_work():
    x = torch.randn(5, 3)
    with pytest.raises(EvalInputError, match="exceeds"):
        knn(x, k=5, exclude_self=True)
    with pytest.raises(EvalInputError, match="metric"):
        knn(x, k=1, metric="cos")
    with pytest.raises(EvalInputError, match="dims"):
        knn(x, torch.randn(5, 4), k=1)
    with pytest.raises(EvalInputError, match="NaN"):
        knn(torch.tensor([[float("nan")], [1.0]]), k=1)
    with pytest.raises(EvalInputError, match="first rows"):
        knn(x, x[:2], k=1, exclude_self=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_keeps_device_and_matches_cpu():
    g = torch.Generator().manual_seed(3)
    x = torch.randint(-2, 3, (400, 5), generator=g).float()
    cpu = knn(x, k=10, exclude_self=True, backend="torch")[1]
    gpu = knn(x.cuda(), k=10, exclude_self=True, backend="torch")
    assert gpu[1].device.type == "cuda" and torch.equal(gpu[1].cpu(), cpu)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_exact_cuts_give_exact_sets_at_each_cut(exclude_self):
    g = torch.Generator().manual_seed(4)
    x = torch.randint(-2, 3, (200, 3), generator=g).float()  # heavy ties
    full = reference_knn(x, x, 40, "ip", exclude_self)
    for backend in BACKENDS:
        idx = knn(x, k=40, exclude_self=exclude_self, backend=backend, exact_cuts=(1, 7, 25))[1]
        for c in (1, 7, 25, 40):
            assert torch.equal(idx[:, :c].sort(dim=1).values, full[:, :c].sort(dim=1).values), (backend, c)
