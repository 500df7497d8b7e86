"""Weighted kNN (K1), the linear probe and embedding extraction."""
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from ssml_lib.eval import (EvalInputError, extract_embeddings, linear_probe_accuracy, weighted_knn_accuracy,
                           weighted_knn_scores)


def k1(sigma):
    sims = torch.tensor([[0.90, 0.85, 0.84]], dtype=torch.float64)
    return weighted_knn_scores(sims, torch.tensor([[0, 1, 1]]), 3, sigma)


def test_k1_temperature_changes_the_vote():
    for sigma, w0, w1, pred in [(0.07, 383_518.39, 350_503.02, 0), (0.1, 8_103.08, 9_361.84, 1)]:
        scores = k1(sigma)
        shift = math.exp(0.90 / sigma)  # scores are relative to the row maximum
        assert scores[0, 0].item() * shift == pytest.approx(w0, abs=0.01)
        assert scores[0, 1].item() * shift == pytest.approx(w1, abs=0.01)
        assert scores[0, 2].item() == 0.0
        assert int(scores.argmax()) == pred


def test_weighted_knn_accuracy_end_to_end_against_a_loop():
    g = torch.Generator().manual_seed(0)
    ytr = torch.randint(0, 4, (80,), generator=g)
    centers = torch.randn(4, 8, generator=g)
    tr = centers[ytr] + 0.9 * torch.randn(80, 8, generator=g)
    yte = torch.randint(0, 4, (30,), generator=g)
    te = centers[yte] + 0.9 * torch.randn(30, 8, generator=g)
    acc = weighted_knn_accuracy(tr, ytr, te, yte, k=7, temperature=0.1, max_bytes=1000)
    trn, ten = torch.nn.functional.normalize(tr.double(), dim=1), torch.nn.functional.normalize(te.double(), dim=1)
    correct = 0
    for i in range(30):  # float64 reference loop
        s = trn @ ten[i]
        top = torch.argsort(-s)[:7]
        w = torch.zeros(4, dtype=torch.float64)
        for j in top:
            w[ytr[j]] += torch.exp(s[j] / 0.1)
        correct += int(int(torch.argmax(w)) == int(yte[i]))
    assert acc == correct / 30
    assert weighted_knn_accuracy(tr, ytr, te, yte, k=7, topk=4) == 1.0


def test_weighted_knn_bad_input():
    with pytest.raises(EvalInputError, match="temperature"):
        weighted_knn_accuracy(np.ones((2, 2)), [0, 1], np.ones((1, 2)), [0], temperature=0)


def test_linear_probe_separable_and_seeded():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (150,), generator=g)
    x = torch.randn(150, 6, generator=g) * 0.3 + 3 * torch.eye(6)[y]
    acc = linear_probe_accuracy(x[:100], y[:100], x[100:], y[100:], epochs=20, batch_size=32)
    assert acc == 1.0
    noisy = torch.randn(150, 6, generator=g)
    a = linear_probe_accuracy(noisy[:100], y[:100], noisy[100:], y[100:], epochs=3, seed=5)
    b = linear_probe_accuracy(noisy[:100], y[:100], noisy[100:], y[100:], epochs=3, seed=5)
    assert a == b


class Images(Dataset):
    def __init__(self, n=10):
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 3, 8, 8, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], i % 3, i


class TwoHeads(torch.nn.Module):
    def forward(self, x):
        pooled = x.mean(dim=(2, 3))
        return pooled * 2, torch.cat([pooled, x.amax(dim=(2, 3))], dim=1)


def test_extract_single_scale_order_and_normalisation():
    ds = Images()
    model = TwoHeads().train()
    emb, labels = extract_embeddings(model, ds, batch_size=4, output=1, progress=False)
    want = torch.nn.functional.normalize(TwoHeads()(ds.x)[1], dim=1)
    torch.testing.assert_close(emb, want)
    assert labels.tolist() == [i % 3 for i in range(10)] and model.training  # mode restored
    # a shuffled loader still fills row = dataset index
    loader = DataLoader(ds, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(extract_embeddings(model, loader, output=1, progress=False)[0], want)


def test_extract_multiscale_power_mean():
    ds = Images(4)
    model = TwoHeads()
    scales, p = (1.0, 0.5), 3.0
    emb, _ = extract_embeddings(model, ds, scales=scales, power=p, output=0, progress=False)
    vs = [model(torch.nn.functional.interpolate(ds.x, scale_factor=s, mode="bilinear", align_corners=False)
                if s != 1 else ds.x)[0] for s in scales]
    want = ((vs[0] ** p + vs[1] ** p) / 2) ** (1 / p)
    torch.testing.assert_close(emb, torch.nn.functional.normalize(want, dim=1))
    arith = extract_embeddings(model, ds, scales=scales, output=0, progress=False)[0]
    torch.testing.assert_close(arith, torch.nn.functional.normalize((vs[0] + vs[1]) / 2, dim=1))


def test_extract_needs_output_for_tuple_models():
    with pytest.raises(EvalInputError, match="output"):
        extract_embeddings(TwoHeads(), Images(2), progress=False)
