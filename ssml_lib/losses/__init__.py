"""Loss functions, one file per method; each is a pure function on embeddings and index/label tensors."""
from ._common import LossInputError
from ._neighbours import ReciprocalNeighbours, reciprocal_neighbours
from .insclr import insclr_contrastive_loss, insclr_select_labels
from .isl import isl_affinity_loss, isl_discriminator_loss, isl_generator_loss
from .mom import mom_triplet_loss
from .nce import nce_loss, nce_normaliser
from .npsoftmax import npsoftmax_loss
from .spreading import spreading_loss
from .triplet import instance_triplet_loss
from .stml import (relaxed_contrastive_loss, stml_contextual_similarity, stml_kl_distillation, stml_loss,
                   stml_pairwise_similarity, stml_targets)

__all__ = [
    "LossInputError",
    "ReciprocalNeighbours",
    "instance_triplet_loss",
    "insclr_contrastive_loss",
    "insclr_select_labels",
    "isl_affinity_loss",
    "isl_discriminator_loss",
    "isl_generator_loss",
    "mom_triplet_loss",
    "nce_loss",
    "nce_normaliser",
    "npsoftmax_loss",
    "reciprocal_neighbours",
    "relaxed_contrastive_loss",
    "spreading_loss",
    "stml_contextual_similarity",
    "stml_kl_distillation",
    "stml_loss",
    "stml_pairwise_similarity",
    "stml_targets",
]
