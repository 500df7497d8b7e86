"""InsCLR tuple batches and STML neighbour batches: composition, determinism, resume, DDP split."""
import pytest
import torch

from ssml_lib.errors import SsmlError
from ssml_lib.mining import (NeighbourBatchSampler, TupleBatchSampler, neighbour_table, spreading_partners,
                             tuple_batch, tuple_labels)

N = 12
POOL = torch.stack([(torch.arange(N) + s) % N for s in (1, 2, 3, 4)], dim=1)  # neighbours i+1..i+4


def test_tuple_batch_composition_and_pseudo_labels():
    idx, labels = tuple_batch(torch.tensor([5, 0]), POOL, num_neighbors=3)
    assert idx.tolist() == [5, 6, 7, 8, 0, 1, 2, 3]
    assert labels.tolist() == [6, 6, 6, 6, 1, 1, 1, 1]
    assert torch.equal(tuple_labels(idx, 3), labels)
    with pytest.raises(SsmlError, match="multiple"):
        tuple_labels(idx[:-1], 3)
    with pytest.raises(SsmlError, match="pool_size"):
        tuple_batch(torch.tensor([0]), POOL, num_neighbors=5)


def test_tuple_sampler_epoch_anchors_without_replacement():
    s = TupleBatchSampler(POOL, anchors_per_batch=4, num_neighbors=3, seed=7)
    batches = list(s)
    assert len(batches) == len(s) == N // 4
    anchors = []
    for b in batches:
        groups = torch.tensor(b).view(4, 4)
        assert torch.equal(groups[:, 1:], POOL[groups[:, 0], :3])  # each anchor followed by its top 3
        anchors += groups[:, 0].tolist()
    assert sorted(anchors) == list(range(N))
    assert batches == list(TupleBatchSampler(POOL, 4, 3, seed=7))  # deterministic per seed
    assert batches != list(TupleBatchSampler(POOL, 4, 3, seed=8))
    s.set_epoch(1)
    assert list(s) != batches


def _resume_check(make):
    full = list(make())
    s = make()
    it = iter(s)
    head = [next(it) for _ in range(2)]
    state = s.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    assert head + list(resumed) == full
    # An explicit consumed count overrides the prefetch-inflated position.
    s2 = make()
    s2.load_state_dict(s.state_dict(consumed_batches=1))
    assert list(s2) == full[1:]


def test_tuple_sampler_resume_mid_epoch():
    def make():
        s = TupleBatchSampler(POOL, 2, 3, seed=3)
        s.set_epoch(5)
        return s
    _resume_check(make)


def test_state_from_other_pool_refused():
    s = TupleBatchSampler(POOL, 2, 3)
    other = TupleBatchSampler(POOL.flip(1), 2, 3)
    with pytest.raises(SsmlError, match="checksum"):
        other.load_state_dict(s.state_dict())


@pytest.mark.parametrize("replicas", [2, 3])
def test_ddp_split_covers_each_batch_once(replicas):
    full = TupleBatchSampler(POOL, 1, 3, seed=1, num_replicas=1, rank=0).global_batches(0).tolist()
    per_rank = [list(TupleBatchSampler(POOL, 1, 3, seed=1, num_replicas=replicas, rank=r))
                for r in range(replicas)]
    assert len({len(p) for p in per_rank}) == 1  # equal step counts on every rank
    flat = [b for p in per_rank for b in p]
    assert sorted(flat) == sorted(full) and len(flat) == len(full)


def test_neighbour_table_puts_self_first_even_with_duplicates():
    x = torch.tensor([[0.0], [1.0], [0.0], [5.0], [5.5]])  # rows 0 and 2 coincide
    t = neighbour_table(x, 3)
    assert t[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert t[2].tolist() == [2, 0, 1] and t[0].tolist() == [0, 2, 1]
    assert t[3].tolist() == [3, 4, 1]


def _nn_table(n=24, k=3):
    x = torch.arange(n, dtype=torch.float32)[:, None] ** 1.5
    return neighbour_table(x, k)


def test_nn_sampler_batches_are_queries_followed_by_their_lists():
    table = _nn_table()
    s = NeighbourBatchSampler(table, batch_size=6, seed=0)
    assert s.queries_per_batch == 2 and len(s) == 24 // 6
    queries = []
    for b in s:
        groups = torch.tensor(b).view(2, 3)
        assert torch.equal(groups, table[groups[:, 0]])  # query, then its K-NN (self first)
        queries += groups[:, 0].tolist()
    assert len(set(queries)) == len(queries)  # without replacement across the epoch
    assert list(s) == list(NeighbourBatchSampler(table, 6, seed=0))
    assert list(s) != list(NeighbourBatchSampler(table, 6, seed=1))
    with pytest.raises(SsmlError, match="multiple"):
        NeighbourBatchSampler(table, 7)


def test_nn_sampler_resume_carries_the_epoch_table():
    table = _nn_table()

    def make():
        s = NeighbourBatchSampler(table, 6, seed=2)
        s.set_epoch(3)
        return s
    _resume_check(make)
    s = make()
    state = s.state_dict()
    fresh = NeighbourBatchSampler(table.roll(1, 0), 6, seed=2)  # next run recomputed a different table
    fresh.load_state_dict(state)
    assert torch.equal(fresh.table, table) and list(fresh) == list(make())


def test_nn_sampler_update_and_ddp():
    table = _nn_table()
    s = NeighbourBatchSampler(table, 3, seed=0)
    s.update_neighbours(table.flip(0))
    assert torch.equal(s.table, table.flip(0))
    with pytest.raises(SsmlError, match="differs"):
        s.update_neighbours(table[:, :2])
    full = NeighbourBatchSampler(table, 3, seed=4).global_batches(0).tolist()
    parts = [list(NeighbourBatchSampler(table, 3, seed=4, num_replicas=2, rank=r)) for r in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(full) and not set(map(tuple, parts[0])) & set(map(tuple, parts[1]))


def test_spreading_partners():
    x = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=1)
    assert spreading_partners(x, probability=1.0).tolist() == [1, 0, 3, 2]
    assert spreading_partners(x, probability=0.0).tolist() == [0, 1, 2, 3]
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    big = torch.nn.functional.normalize(torch.randn(200, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    a, b = spreading_partners(big, generator=g1), spreading_partners(big, generator=g2)
    assert torch.equal(a, b)
    moved = (a != torch.arange(200)).float().mean()
    assert 0.35 < moved < 0.65
