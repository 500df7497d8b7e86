"""head_init='pca': the head starts as the principal directions of the pooled features (label-free)."""
from __future__ import annotations

import pytest
import torch

from ssml_lib.errors import ConfigError
from ssml_lib.models.head_init import pca_init_
from ssml_lib.models.heads import build_head


def _features(n=400, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.1, d)
    return torch.randn(n, d, generator=g) * scales + torch.randn(d, generator=g) * 5


def test_linear_head_projects_centred_features_on_the_top_directions():
    x = _features()
    head = build_head("linear", 16, 4)
    record = pca_init_(head, x)
    w = head.fc.weight.detach().double()
    assert torch.allclose(w @ w.T, torch.eye(4, dtype=torch.float64), atol=1e-5)  # orthonormal rows
    y = head(x).detach().double()
    assert y.mean(0).abs().max() < 1e-4  # centred by the bias
    var = y.var(0)
    assert (var[:-1] >= var[1:] - 1e-6).all()  # largest variance first
    # the top-4 directions of this data are (up to sign) the first 4 axes
    assert torch.allclose(w.abs().argmax(1), torch.arange(4))
    assert 0.5 < record["explained_variance"] < 1 and record["images"] == 400


def test_sign_is_deterministic_and_a_random_init_is_replaced():
    x = _features(seed=1)
    a, b = build_head("linear", 16, 4), build_head("linear", 16, 4)
    torch.nn.init.normal_(b.fc.weight)
    pca_init_(a, x), pca_init_(b, x)
    assert torch.equal(a.fc.weight, b.fc.weight) and torch.equal(a.fc.bias, b.fc.bias)
    assert (a.fc.weight.gather(1, a.fc.weight.abs().argmax(1, keepdim=True)) > 0).all()


def test_head_without_bias_uses_the_normalised_uncentred_features():
    x = _features(seed=2)
    head = build_head("norm_linear_norm", 16, 16)
    pca_init_(head, x)
    w = head.fc.weight.detach().double()
    assert torch.allclose(w @ w.T, torch.eye(16, dtype=torch.float64), atol=1e-5)  # a rotation: distances kept
    xn = torch.nn.functional.normalize(x.double(), dim=1)
    second = xn.T @ xn / (len(x) - 1)
    top = torch.linalg.eigh(second).eigenvectors[:, -1]
    assert torch.allclose(w[0].abs(), top.abs(), atol=1e-4)


@pytest.mark.parametrize("head,features", [(("linear", 4, 8), torch.randn(50, 4)),  # embedding > features
                                           (("linear", 4, 2), torch.randn(50, 5)),  # wrong width
                                           (("identity", 4, 4), torch.randn(50, 4))])
def test_impossible_cases_are_refused(head, features):
    with pytest.raises(ConfigError, match="head_init='pca'"):
        pca_init_(build_head(*head), features)
