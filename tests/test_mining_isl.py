"""ISL: affinity sets, confidence-gated enlargement (hand-built logits), triplets, GAN objectives."""
import torch
import torch.nn.functional as F

from ssml_lib.mining import (AffinitySets, FeatureMemory, ProxyDiscriminator, ProxyGenerator,
                             discriminator_objective, enlarge_positive_sets, generator_objective,
                             mining_should_stop, sample_triplets)


def _sets(a):
    return {i: set(a.table[i, : a.count[i]].tolist()) for i in range(a.num_items) if a.count[i] > 0}


def test_affinity_sets_symmetric_dedup_and_capacity():
    a = AffinitySets(6, capacity=2)
    added = a.add_pairs(torch.tensor([0, 0, 1, 2, 3]), torch.tensor([1, 1, 0, 2, 4]))
    assert int(added) == 4  # 0<->1 once (duplicates and reverse merged), 2<->2 ignored, 3<->4
    assert _sets(a) == {0: {1}, 1: {0}, 3: {4}, 4: {3}}
    a.add_pairs(torch.tensor([0, 0, 5]), torch.tensor([2, 3, 0]), torch.tensor([True, True, False]))
    # 0 had room for one more: 0->2 fits, 0->3 overflows (counted); reverse links 2->0, 3->0 fit
    assert _sets(a) == {0: {1, 2}, 1: {0}, 2: {0}, 3: {4, 0}, 4: {3}}
    assert int(a.overflow) == 1 and int(a.num_links()) == 7
    assert a.contains(torch.tensor([0, 5]), torch.tensor([[0, 1, 3], [5, 0, 1]])).tolist() == [
        [True, True, False], [True, False, False]]
    fresh = AffinitySets(6, capacity=2)
    fresh.load_state_dict(a.state_dict())
    assert _sets(fresh) == _sets(a)


def _bank():
    # 6 unit vectors in 2-D at known angles; cos(anchor proxy, entry) is read off the angles.
    angles = torch.tensor([0.0, 10.0, 30.0, 60.0, 90.0, 180.0]) * torch.pi / 180
    m = FeatureMemory(6, 2)
    m.write(torch.arange(6), torch.stack([angles.cos(), angles.sin()], 1))
    return m


def test_enlargement_only_for_confident_proxies():
    m, a = _bank(), AffinitySets(6)
    proxies = m.read(torch.tensor([0, 0, 4]))  # proxies equal to entries 0, 0, 4
    logits = torch.tensor([2.0, -2.0, 0.0])    # confidences .881, .119, .5 ; gate .5 (strict)
    out = enlarge_positive_sets(torch.tensor([0, 5, 4]), proxies, torch.sigmoid(logits), m, a,
                                gate=0.5, radius=0.6, top_k=3)
    assert out.passed.tolist() == [True, False, False]
    # anchor 0: r = .6 + .119*.4 = .648 ; neighbours of proxy e0 (self 0 excluded): 1 (cos .985), 2 (.866),
    # 3 (.5) -> adds 1, 2. Anchor 5 would add 0 and 1 had it passed; anchor 4 sits exactly on the gate.
    assert out.neighbours[0].tolist() == [1, 2, 3]
    assert out.added.tolist() == [[True, True, False], [False] * 3, [False] * 3]
    assert _sets(a) == {0: {1, 2}, 1: {0}, 2: {0}}


def test_low_confidence_raises_the_radius():
    m, a = _bank(), AffinitySets(6)
    s = torch.tensor([0.51])  # r = .6 + .49*.4 = .796: entry 2 (cos .866) still in, entry 3 out
    out = enlarge_positive_sets(torch.tensor([0]), m.read(torch.tensor([0])), s, m, a, radius=0.6, top_k=3)
    assert out.added.tolist() == [[True, True, False]]
    s = torch.tensor([0.55])  # R = .95: r = .95 + .45 * .05 = .9725
    out = enlarge_positive_sets(torch.tensor([1]), m.read(torch.tensor([1])), s, m, AffinitySets(6),
                                radius=0.95, top_k=2)
    assert out.added.tolist() == [[True, False]]  # cos(10deg, 0deg) .985 > .9725 ; cos(10, 30) .94 < .9725


def test_triplet_negative_is_hardest_outside_the_affinity_set():
    m, a = _bank(), AffinitySets(6)
    a.add_pairs(torch.tensor([0, 4]), torch.tensor([1, 3]))
    feats = m.read(torch.tensor([0, 4]))
    t = sample_triplets(feats, torch.tensor([0, 4]), m, a, num_candidates=200,
                        generator=torch.Generator().manual_seed(0))
    # A(0) = {0, 1}: hardest other is 2 (cos 30 deg); A(4) = {4, 3}: hardest other is 2 (cos 60 deg)
    assert t.negative_index.tolist() == [2, 2]
    assert torch.equal(t.positive, m.read(torch.tensor([0, 4])))


def test_proxy_modules_and_objectives():
    torch.manual_seed(0)
    gen, disc = ProxyGenerator(8), ProxyDiscriminator(8)
    a, p, n = (F.normalize(torch.randn(5, 8), dim=1) for _ in range(3))
    fake = gen(a, p, n)
    assert fake.shape == (5, 8) and torch.allclose(fake.norm(dim=1), torch.ones(5), atol=1e-6)
    sig = lambda x: torch.sigmoid(disc(*x))  # noqa: E731
    real, f1, f2 = sig((a, p, n)), sig((a, p, fake)), sig((a, fake, n))
    want_d = 0.5 * (-real.log().mean() - 0.5 * (1 - f1).log().mean() - 0.5 * (1 - f2).log().mean())
    assert torch.allclose(discriminator_objective(disc, a, p, n, fake), want_d, atol=1e-6)
    want_g = -0.5 * f1.log().mean() - 0.5 * f2.log().mean()
    assert torch.allclose(generator_objective(disc, a, p, n, fake), want_g, atol=1e-6)
    discriminator_objective(disc, a, p, n, fake).backward()
    assert all(q.grad is None for q in gen.parameters())  # the D step never trains G


def test_mining_stop_rule():  # the GAN stop rule has its own tests (test_isl_stop_rule.py)
    assert mining_should_stop(51, 100, 0, 1) and not mining_should_stop(50, 100, 0, 1)
    assert mining_should_stop(0, 100, 2, 200)
