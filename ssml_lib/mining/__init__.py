"""Miners, samplers, neighbour graphs and memory banks (no losses: those live in ``ssml_lib.losses``).

Per-epoch / per-stage mining is a step the training loop calls; per-step functions stay on the device
and avoid host synchronisation.
"""
from .affinity import AffinitySets
from .candidate_pool import candidate_pool, load_candidate_pool, save_candidate_pool
from .cross_batch_memory import CrossBatchMemory
from .ema import ema_update_
from .isl_proxy import (Enlargement, ProxyDiscriminator, ProxyGenerator, Triplets, discriminator_objective,
                        enlarge_positive_sets, gan_should_stop, generator_objective, mining_should_stop,
                        sample_triplets)
from .isl_proxy import Queries, mining_queries
from .manifold import (MomPools, euclidean_neighbours, manifold_graph, manifold_neighbours,
                       manifold_similarity, mom_pools, select_anchors, stationary_distribution)
from .memory_bank import FeatureMemory, MemoryDraw, draw_negatives
from .nn_sampler import NeighbourBatchSampler, neighbour_table, spreading_partners
from .query_expansion import QueryExpansionMemory
from .query_set import expand_query_set, parse_selection_mode
from .selection import Selection, select_in_batch
from .tuples import TupleBatchSampler, tuple_batch, tuple_labels

__all__ = [
    "AffinitySets", "CrossBatchMemory", "Enlargement", "FeatureMemory", "MemoryDraw", "MomPools",
    "NeighbourBatchSampler", "ProxyDiscriminator", "ProxyGenerator", "QueryExpansionMemory", "Selection", "Triplets",
    "TupleBatchSampler", "candidate_pool", "discriminator_objective", "draw_negatives", "ema_update_",
    "enlarge_positive_sets", "euclidean_neighbours", "expand_query_set", "gan_should_stop",
    "generator_objective", "load_candidate_pool", "manifold_graph", "manifold_neighbours",
    "manifold_similarity", "mining_should_stop", "mom_pools", "neighbour_table", "parse_selection_mode",
    "sample_triplets", "save_candidate_pool", "select_anchors", "select_in_batch", "spreading_partners",
    "stationary_distribution", "tuple_batch", "tuple_labels",
]
__all__ += ["Queries", "mining_queries"]
