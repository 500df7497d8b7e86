"""Evaluation: exact kNN, retrieval and clustering metrics, embedding extraction (docs/protocols.md)."""
from ._inputs import EvalInputError
from .extract import extract_embeddings
from .gldv2 import (gldv2_first_correct_positions, gldv2_map_at_100, gldv2_mean_precision_at_k,
                    gldv2_retrieval_map, read_predictions, read_retrieval_solution)
from .knn import faiss_available, knn, set_default_backend
from .knn_classifier import weighted_knn_accuracy, weighted_knn_scores
from .linear_probe import linear_probe_accuracy
from .original_oxford import instre_map, original_aps, original_map
from .nmi import kmeans_assign, nmi, nmi_from_partition, nmi_with_info
from .recall import neighbour_labels, recall_at_k
from .revisited import (compute_map, format_revisited, rank_by_scores, revisited_map, trapezoid_ap,
                        validate_gnd)
from .whitening import PCAWhitening, apply_pca_whitening, learn_pca_whitening

__all__ = [
    "EvalInputError", "extract_embeddings",
    "gldv2_map_at_100", "gldv2_mean_precision_at_k", "gldv2_first_correct_positions", "read_retrieval_solution",
    "read_predictions", "gldv2_retrieval_map", "original_map", "original_aps",
    "knn", "set_default_backend", "faiss_available",
    "weighted_knn_accuracy", "weighted_knn_scores", "linear_probe_accuracy",
    "nmi", "nmi_with_info", "nmi_from_partition", "kmeans_assign",
    "recall_at_k", "neighbour_labels",
    "revisited_map", "compute_map", "validate_gnd", "rank_by_scores", "trapezoid_ap", "format_revisited",
    "PCAWhitening", "learn_pca_whitening", "apply_pca_whitening",
    "instre_map",
]
