"""ISL's miner options (the ISL paper's Figures 3 and 4): ``isl_similarity`` (GAN proxies or the anchor itself)
and ``isl_sampling_times`` (triplets per anchor, the most confident proxy kept). Defaults unchanged: the default
queries are the official single-triplet proxies, drawn from the same random numbers; each option changes only
what it names."""
import dataclasses
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from ssml_lib.engine import derive_seed
from ssml_lib.errors import ConfigError
from ssml_lib.methods.isl import ISL, ISLConfig
from ssml_lib.mining import (AffinitySets, FeatureMemory, ProxyDiscriminator, ProxyGenerator, enlarge_positive_sets,
                             mining_queries, sample_triplets)

N, D = 40, 8


def _state(seed=0):
    torch.manual_seed(seed)
    memory = FeatureMemory(N, D)
    memory.write(torch.arange(N), F.normalize(torch.randn(N, D), dim=1))
    feats = F.normalize(memory.features + 0.1 * torch.randn(N, D), dim=1)
    return memory, AffinitySets(N, 16), ProxyGenerator(D), ProxyDiscriminator(D), feats


def _rng(seed=5):
    return torch.Generator().manual_seed(seed)


def test_defaults_are_the_official_single_proxy():
    cfg = ISLConfig()
    assert (cfg.isl_similarity, cfg.isl_sampling_times) == ("geodesic", 1)
    memory, aff, g, d, feats = _state()
    idx = torch.arange(N)
    q = mining_queries(g, d, feats, idx, memory, aff, num_candidates=16, rng=_rng())
    t = sample_triplets(feats, idx, memory, aff, num_candidates=16, generator=_rng())  # the code before the option
    proxy = g(t.anchor, t.positive, t.negative)
    assert torch.equal(q.vectors, proxy)
    assert torch.equal(q.confidence, torch.sigmoid(d(t.anchor, proxy, t.negative)))


def test_sampling_times_keeps_the_most_confident_of_the_draws():
    memory, aff, g, d, feats = _state()
    idx = torch.arange(N)
    q = mining_queries(g, d, feats, idx, memory, aff, sampling_times=3, num_candidates=16, rng=_rng())
    t = sample_triplets(feats.repeat(3, 1), idx.repeat(3), memory, aff, num_candidates=16, generator=_rng())
    proxies = g(t.anchor, t.positive, t.negative)
    conf = torch.sigmoid(d(t.anchor, proxies, t.negative)).reshape(3, N)
    assert torch.allclose(q.confidence, conf.max(0).values)
    best = conf.argmax(0)
    assert torch.allclose(q.vectors, proxies.reshape(3, N, D)[best, torch.arange(N)])
    assert (conf.argmax(0) > 0).any()  # the draws differ: a later one wins somewhere


def test_euclidean_searches_with_the_anchor_itself_and_passes_every_gate():
    memory, aff, g, d, feats = _state()
    idx = torch.arange(N)
    q = mining_queries(g, d, feats, idx, memory, aff, similarity="euclidean")
    assert torch.equal(q.vectors, feats) and torch.equal(q.confidence, torch.ones(N))
    out = enlarge_positive_sets(idx, q.vectors, q.confidence, memory, aff, gate=0.5, radius=0.2, top_k=3)
    sims = feats @ memory.features.T
    sims.fill_diagonal_(float("-inf"))
    top = sims.topk(3, dim=1)  # the anchors' 3 nearest bank entries (self excluded) ...
    assert torch.equal(out.neighbours, top.indices) and out.passed.all()
    assert torch.equal(out.added, top.values > 0.2)  # ... within the radius R itself
    with pytest.raises(Exception, match="similarity"):
        mining_queries(g, d, feats, idx, memory, aff, similarity="cosine")


def test_config_checks_the_options():
    with pytest.raises(ConfigError, match="isl_similarity"):
        ISLConfig(isl_similarity="manifold")
    with pytest.raises(ConfigError, match="isl_sampling_times"):
        ISLConfig(isl_sampling_times=0)


class _Model(torch.nn.Module):
    embedding_dim = D

    def forward(self, x):
        return x


@pytest.mark.parametrize("option", [{"isl_similarity": "euclidean"}, {"isl_sampling_times": 3}])
def test_the_method_mines_with_the_option_and_nothing_else_changes(option):
    """ISL's mining epoch with an option equals the miner called by hand with it; the default's does too."""
    memory, _, g, d, feats = _state()

    def mine(cfg):
        method = ISL(_Model(), cfg, train_transform=None, test_transform=None)
        method.generator.load_state_dict(g.state_dict()), method.discriminator.load_state_dict(d.state_dict())
        method.memory, method.affinity, method._data = memory, AffinitySets(N, 16), None
        ctx = SimpleNamespace(train_set=range(N), cfg=SimpleNamespace(batch_size=N), embed=lambda _: feats, seed=0,
                              device=torch.device("cpu"))
        method._mine(ctx, 0)
        return method.affinity.table.clone(), method

    base = ISLConfig(isl_mining_max_epochs=1, isl_num_candidates=16, isl_gate=0.0, isl_radius=0.0, isl_top_k=3)
    for cfg in (base, dataclasses.replace(base, **option)):
        table, method = mine(cfg)
        rng = torch.Generator().manual_seed(derive_seed(0, 0, 1))
        q = mining_queries(g, d, feats, torch.arange(N), memory, AffinitySets(N, 16),
                           similarity=cfg.isl_similarity, sampling_times=cfg.isl_sampling_times,
                           num_candidates=16, rng=rng)
        expected = AffinitySets(N, 16)
        enlarge_positive_sets(torch.arange(N), q.vectors, q.confidence, memory, expected, gate=0.0, radius=0.0,
                              top_k=3)
        assert torch.equal(table, expected.table)
    assert not torch.equal(mine(base)[0], mine(dataclasses.replace(base, **option))[0])
