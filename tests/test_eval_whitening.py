"""Learned PCA-whitening: it whitens the training descriptors, it matches a hand-written reference on a tiny input,
and the rank-deficient case (fewer descriptors than dimensions) keeps only the usable directions."""
import math

import pytest
import torch

from ssml_lib.eval import EvalInputError, apply_pca_whitening, learn_pca_whitening


def test_whitened_training_descriptors_have_identity_covariance_on_the_kept_dims():
    g = torch.Generator().manual_seed(0)
    mixing = torch.randn(16, 16, generator=g) * torch.logspace(0, -1, 16)  # strongly correlated, unequal scales
    x = torch.randn(500, 16, generator=g) @ mixing.T + 3.0
    for dims in (None, 5):
        w = learn_pca_whitening(x, dims)
        z = apply_pca_whitening(x, w, normalize=False).double()
        k = 16 if dims is None else 5
        assert z.shape == (500, k)
        assert z.mean(0).abs().max() < 1e-4  # centred on the training mean
        cov = (z - z.mean(0)).T @ (z - z.mean(0)) / z.shape[0]
        assert torch.allclose(cov, torch.eye(k, dtype=torch.float64), atol=1e-3)
    # the default output is L2-normalised after whitening
    assert torch.allclose(apply_pca_whitening(x, w).norm(dim=1), torch.ones(500), atol=1e-6)


def test_matches_a_hand_written_reference_on_a_tiny_input():
    # four 2-d descriptors; mean (1, 1); covariance [[1, 0], [0, 0.25]] (per descriptor, divided by n = 4):
    # eigenvalues 1 (direction e1) and 0.25 (e2), so x -> ((x1 - 1) / 1, (x2 - 1) / 0.5) up to each axis's sign.
    x = torch.tensor([[0.0, 1.0], [2.0, 1.0], [1.0, 0.5], [1.0, 1.5]])
    w = learn_pca_whitening(x)
    assert w.mean.tolist() == pytest.approx([1.0, 1.0])
    assert w.eigenvalues.tolist() == pytest.approx([0.5, 0.125])  # second moments: 2/4 and 0.5/4
    # recompute by hand: cov = diag(0.5, 0.125); whitening = diag(1/sqrt(0.5), 1/sqrt(0.125))
    q = torch.tensor([[3.0, 2.0]])
    raw = apply_pca_whitening(q, w, normalize=False)[0].abs()
    assert raw.tolist() == pytest.approx([2.0 / math.sqrt(0.5), 1.0 / math.sqrt(0.125)], rel=1e-6)
    unit = apply_pca_whitening(q, w)[0].abs()
    expected = torch.tensor([2.0 / math.sqrt(0.5), 1.0 / math.sqrt(0.125)])
    assert unit.tolist() == pytest.approx((expected / expected.norm()).tolist(), rel=1e-6)


def test_fewer_descriptors_than_dimensions_keep_only_usable_directions():
    x = torch.randn(6, 32, generator=torch.Generator().manual_seed(1))
    w = learn_pca_whitening(x)
    assert w.dims == 5  # centred rank n - 1
    z = apply_pca_whitening(x, w, normalize=False).double()
    assert torch.allclose(z.T @ z / 6, torch.eye(5, dtype=torch.float64), atol=1e-4)
    assert learn_pca_whitening(x, dims=100).dims == 5 and learn_pca_whitening(x, dims=2).dims == 2


def test_bad_inputs_are_refused():
    with pytest.raises(EvalInputError, match="n >= 2"):
        learn_pca_whitening(torch.ones(1, 4))
    with pytest.raises(EvalInputError, match="all equal"):
        learn_pca_whitening(torch.ones(5, 4))
    w = learn_pca_whitening(torch.randn(10, 4))
    with pytest.raises(EvalInputError, match="do not match"):
        apply_pca_whitening(torch.randn(3, 5), w)
