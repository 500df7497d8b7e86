"""InsCLR in-batch selection: the fixed threshold rule on no-aug features, with the official quirks."""
import math

import torch

from ssml_lib.mining import select_in_batch, tuple_labels


def _at(cos):
    return [cos, math.sqrt(1 - cos * cos)]


def test_threshold_rule_and_shared_negative_label_quirk():
    # group 1: anchor 10 with neighbours at cos 0.9, 0.3, 0.5 ; group 2: anchor 20, cos 0.7, 0.65, 0.61
    feats = torch.tensor([_at(1.0), _at(0.9), _at(0.3), _at(0.5), _at(1.0), _at(0.7), _at(0.65), _at(0.61)])
    labels = tuple_labels(torch.tensor([10, 11, 12, 13, 20, 21, 22, 23]), 3)
    sel = select_in_batch(feats, labels, 3, threshold=0.6)
    assert sel.labels.tolist() == [11, 11, -11, -11, 21, 21, 21, 21]
    assert sel.accepted.tolist() == [[True, False, False], [True, True, True]]
    assert torch.allclose(sel.similarity, torch.tensor([[0.9, 0.3, 0.5], [0.7, 0.65, 0.61]]), atol=1e-6)
    # Quirk kept: the two rejected neighbours of anchor 10 now share label -11, i.e. are mutual positives.
    assert sel.labels[2] == sel.labels[3] < 0


def test_similarity_equal_to_threshold_is_kept_and_scale_is_ignored():
    feats = torch.tensor([[1.0, 0.0], [0.5, 0.75], [0.25, 0.5]])  # dots 0.5 and 0.25, exact in float32
    sel = select_in_batch(feats, torch.tensor([4, 4, 4]), 2, threshold=0.5, normalize=False)
    assert sel.labels.tolist() == [4, 4, -4]
    scaled = select_in_batch(feats * 7.0, torch.tensor([4, 4, 4]), 2, threshold=0.5)  # cosine by default
    cos = torch.nn.functional.cosine_similarity(feats[:1], feats[1:])
    assert torch.allclose(scaled.similarity[0], cos, atol=1e-6)
