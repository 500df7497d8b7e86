"""Embedding networks: torchvision backbones (feature maps), global pooling, heads, and where weights come from."""
from ssml_lib.models.backbones import BACKBONES, ConvNet4, GoogLeNetTrunk, ResNetTrunk, build_backbone
from ssml_lib.models.embedder import Embedder, bn_freeze, build_model, count_parameters
from ssml_lib.models.heads import HEADS, IdentityHead, LinearHead, build_head, l2_normalize
from ssml_lib.models.pooling import (POOLINGS, GeM, GlobalAvgMaxPool, GlobalAvgPool, GlobalMaxPool, build_pooling,
                                     gem, global_avg_max_pool, global_avg_pool, global_max_pool)
from ssml_lib.models.weights import (WeightsMismatchError, imagenet_weights_file, load_weights, read_state_dict,
                                     register_weights_resolver, registered_weights, resolve_weights)

__all__ = [
    "BACKBONES", "ConvNet4", "GoogLeNetTrunk", "ResNetTrunk", "build_backbone",
    "Embedder", "bn_freeze", "build_model", "count_parameters",
    "HEADS", "IdentityHead", "LinearHead", "build_head", "l2_normalize",
    "POOLINGS", "GeM", "GlobalAvgMaxPool", "GlobalAvgPool", "GlobalMaxPool", "build_pooling",
    "gem", "global_avg_max_pool", "global_avg_pool", "global_max_pool",
    "WeightsMismatchError", "imagenet_weights_file", "load_weights", "read_state_dict",
    "register_weights_resolver", "registered_weights", "resolve_weights",
]
