"""A hand-built InsCLR memory-v2 case shared by the miner's tests (tests/test_mining_memory.py) and the ablation
switches' (tests/test_insclr_ablation_switches.py): anchor 0 and its neighbour 1; 1's pool row holds 5 (a
candidate close to the query) and 7 (beyond the negative boundary)."""
import math

import torch

from ssml_lib.mining import QueryExpansionMemory


def unit_at(cos: float, axis: int) -> torch.Tensor:
    """A unit vector at cosine ``cos`` to axis 0, in the plane of axes 0 and ``axis`` (4-d)."""
    v = torch.zeros(4)
    v[0], v[axis] = cos, math.sqrt(1 - cos * cos)
    return v


def hand_built_v2_memory():
    """(n, pool indices, pool similarities, memory) of the 12-image case."""
    n = 12
    pool = torch.tensor([[1, 2, 3, 4], [0, 5, 6, 7]] + [[(i + s) % n for s in (1, 2, 3, 4)] for i in range(2, n)])
    sims = torch.tensor([[0.9, 0.8, 0.6, 0.3], [0.9, 0.7, 0.55, 0.2]] + [[0.1] * 4] * (n - 2))
    mem = QueryExpansionMemory(n, 4)
    noaug = torch.stack([unit_at(1.0, 1)] * n)
    noaug[3], noaug[5], noaug[6] = unit_at(0.7, 1), unit_at(0.65, 2), unit_at(0.3, 3)
    mem.noaug.write(torch.arange(n), noaug)
    mem.aug.write(torch.arange(n), torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 4))
    return n, pool, sims, mem
