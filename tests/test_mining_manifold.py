"""MOM: manifold (diffusion) vs Euclidean neighbours on a hand-built two-moons set."""
import math

import torch

from ssml_lib.mining import (euclidean_neighbours, manifold_graph, manifold_neighbours, manifold_similarity,
                             mom_pools, select_anchors, stationary_distribution)

N = 30  # points per moon; outer moon rows 0..29, inner moon rows 30..59


def _two_moons():
    t = torch.linspace(0, math.pi, N, dtype=torch.float64)
    outer = torch.stack([t.cos(), t.sin()], 1)
    inner = torch.stack([1 - t.cos(), 0.5 - t.sin()], 1)
    xy = torch.cat([outer, inner])
    # Lift to the unit sphere far from the origin: cosine similarity then falls with 2-D distance.
    return torch.nn.functional.normalize(torch.cat([xy, torch.full((2 * N, 1), 10.0, dtype=torch.float64)], 1),
                                         dim=1).float()


def _moon(i):
    return 0 if i < N else 1


def test_graph_is_symmetric_mutual_and_does_not_bridge_the_moons():
    g = manifold_graph(_two_moons(), 3).to_dense()
    assert torch.equal(g, g.T)
    assert g[:N, N:].abs().sum() == 0  # arcs spaced ~0.1 apart, moons >= 0.5 apart
    assert (g.sum(1) > 0).all() and (g.diagonal() == 0).all()
    x = _two_moons()
    s = (x @ x.T)[0, 1].clamp_min(0) ** 3
    assert torch.allclose(g[0, 1], s, atol=1e-6)


def test_diffusion_equals_dense_inverse():
    x = _two_moons()
    g = manifold_graph(x, 3)
    a = g.to_dense().double()
    d = a.sum(1).rsqrt()
    s = d[:, None] * a * d[None, :]
    inv = torch.linalg.inv(torch.eye(2 * N, dtype=torch.float64) - 0.9 * s)
    anchors = torch.tensor([0, 17, 45])
    got = manifold_similarity(g, anchors, alpha=0.9, iterations=60)
    assert torch.allclose(got.double(), inv[anchors], atol=1e-4)


def test_manifold_neighbours_follow_the_moon_where_euclidean_ones_jump():
    x = _two_moons()
    anchors = torch.tensor([0, N])  # outer tip at (1, 0); inner tip at (0, .5) below the outer crest
    pools = mom_pools(x, anchors, 8, graph_k=3)
    for r, a in enumerate(anchors.tolist()):
        assert all(_moon(j) == _moon(a) for j in pools.positives[r].tolist())
        euclid_moons = [_moon(j) for j in pools.negatives[r].tolist()]
        assert euclid_moons.count(1 - _moon(a)) == 4  # the Euclidean 8-NN reach into the other moon
        # P- is exactly the other-moon part of the Euclidean list; P+ only same-moon points
        assert [_moon(j) != _moon(a) for j in pools.negatives[r].tolist()] == pools.negative_mask[r].tolist()
        assert pools.positive_mask[r].sum() >= 4
    assert sorted(pools.negatives[1][pools.negative_mask[1]].tolist()) == [13, 14, 15, 16]
    assert euclidean_neighbours(x, anchors, 4)[0].tolist() == [1, 2, 3, 4]


def test_manifold_neighbours_exclude_self_and_break_ties_by_index():
    sim = torch.tensor([[5.0, 1.0, 2.0, 2.0], [1.0, 9.0, 1.0, 0.5]])
    assert manifold_neighbours(sim, torch.tensor([0, 1]), 2).tolist() == [[2, 3], [0, 2]]


def test_anchors_are_modes_of_the_stationary_distribution():
    # star 0-(1,2,3) plus a pair 4-5: node 0 is the dominant mode, the pair has tied modes
    rows = torch.tensor([0, 1, 0, 2, 0, 3, 4, 5])
    cols = torch.tensor([1, 0, 2, 0, 3, 0, 5, 4])
    g = torch.sparse_coo_tensor(torch.stack([rows, cols]), torch.ones(8), (6, 6), check_invariants=True).coalesce()
    assert torch.allclose(stationary_distribution(g), torch.tensor([3, 1, 1, 1, 1, 1]) / 8.0)
    idx, valid = select_anchors(g, 4)
    assert idx[0] == 0 and set(idx[1:3].tolist()) == {4, 5} and valid.tolist() == [True, True, True, False]
