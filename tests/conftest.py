"""Test-session settings: tiny tensors run far faster on one intra-op thread than on two contended ones."""
import torch

torch.set_num_threads(1)
