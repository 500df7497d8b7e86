"""Models: backbone shapes, pooling values and gradients, heads, two-head output, weights and their errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from ssml_lib.errors import ConfigError, SsmlError, WeightsNotFoundError
from ssml_lib.models import (WeightsMismatchError, bn_freeze, build_model, count_parameters, gem, global_avg_pool,
                             global_max_pool, imagenet_weights_file, load_weights, register_weights_resolver)
from ssml_lib.models import weights as weights_module
from ssml_lib.models.pooling import GeM, global_avg_max_pool


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


@pytest.mark.parametrize("name, dim, px, spatial", [
    ("convnet4", 256, 48, 3), ("googlenet", 1024, 32, 1), ("resnet18", 512, 64, 2),
    ("resnet18_cifar", 512, 32, 4), ("resnet50", 2048, 64, 2), ("resnet101", 2048, 64, 2),
    ("resnet50_cifar", 2048, 32, 4), ("alexnet_cifar", 1024, 32, 1)])
def test_backbone_map_and_embedding_shapes(name, dim, px, spatial):
    model = build_model(name, embedding_size=16).eval()
    x = torch.randn(2, 3, px, px)
    with torch.no_grad():
        fmap, feat, emb = model.backbone(x), model.features(x), model(x)
    assert fmap.shape == (2, dim, spatial, spatial)
    assert model.feature_dim == dim and feat.shape == (2, dim)
    assert emb.shape == (2, 16) and model.embedding_dim == 16
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))


@pytest.mark.parametrize("name, channels, spatial", [("alexnet_cifar", 256, 4), ("resnet18_cifar", 512, 4),
                                                     ("resnet50_cifar", 2048, 4)])
def test_conv5_features_of_the_cifar_backbones(name, channels, spatial):
    from ssml_lib.models.backbones import conv5_features

    model = build_model(name, pooling="avg", embedding_size=16).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        avg, flat = conv5_features(model.backbone, x), conv5_features(model.backbone, x, "flatten")
        fmap = model.backbone.conv5(x) if name == "alexnet_cifar" else model.backbone(x)
    assert fmap.shape == (3, channels, spatial, spatial)
    assert avg.shape == (3, channels) and flat.shape == (3, channels * spatial * spatial)
    torch.testing.assert_close(avg, fmap.mean(dim=(2, 3)))
    with pytest.raises(ConfigError, match="conv5 pooling"):
        conv5_features(model.backbone, x, "max")


def test_alexnet_cifar_has_the_official_layer_sizes():
    trunk = build_model("alexnet_cifar", embedding_size=128).backbone
    convs = [m for m in trunk.features if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 64, (3, 3), (1, 1)), (64, 192, (3, 3), (1, 1)), (192, 384, (3, 3), (1, 1)), (384, 256, (3, 3), (1, 1)),
        (256, 256, (3, 3), (1, 1))]
    assert sum(isinstance(m, nn.MaxPool2d) for m in trunk.features) == 3
    fcs = [m for m in trunk.fc if isinstance(m, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(4096, 1024), (1024, 1024)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in trunk.fc) == 2


@pytest.mark.parametrize("name, cls, kwargs", [("resnet18", tvm.resnet18, {}),
                                                ("googlenet", tvm.GoogLeNet, {"init_weights": True})])
def test_torchvision_classifier_state_dict_loads_and_matches_torchvision_features(name, cls, kwargs):
    # A torchvision checkpoint (fc and, for GoogLeNet, aux heads included) must load into our trunk, and
    # avg-pooled features must equal torchvision's own pre-fc features, transform_input included. Train mode
    # (batch statistics) because a random GoogLeNet in eval mode shrinks every activation to ~1e-10.
    reference = cls(**kwargs, **({"transform_input": True} if name == "googlenet" else {}))
    model = build_model(name, pooling="avg", head="identity", normalize=False,
                        transform_input=name == "googlenet")
    load_weights(model, reference.state_dict())
    reference.fc, reference.dropout, reference.aux_logits = nn.Identity(), nn.Identity(), False
    x = torch.randn(4, 3, 64, 64, dtype=torch.float64)
    ours, theirs = model.double().train()(x), reference.double().train()(x)
    assert theirs.abs().mean() > 1e-2
    # Our input transform keeps its constants in float32 buffers; train-mode BN amplifies that rounding to
    # ~1e-5 here, while a wrong transform is off by ~1.
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_gem_is_average_at_p1_and_tends_to_max():
    x = torch.rand(3, 5, 4, 4, dtype=torch.float64) + 0.1
    torch.testing.assert_close(gem(x, p=1.0), global_avg_pool(x))
    hand = (x.pow(3).sum(dim=(2, 3)) / 16).pow(1 / 3)
    torch.testing.assert_close(gem(x, p=3.0), hand)
    errors = [(gem(x, p=p) - global_max_pool(x)).abs().max().item() for p in (10.0, 100.0, 1000.0)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-2
    assert torch.isfinite(gem(x * 1e3, p=200.0)).all()   # no overflow for large values and large p
    torch.testing.assert_close(global_avg_max_pool(x), x.mean(dim=(2, 3)) + x.amax(dim=(2, 3)))


def test_gem_gradient_matches_reference_and_learnable_p_gets_one():
    x = (torch.rand(2, 3, 4, 4, dtype=torch.float64) + 0.1).requires_grad_()
    p = torch.tensor([2.5], dtype=torch.float64, requires_grad=True)
    gx, gp = torch.autograd.grad(gem(x, p).sum(), (x, p))
    x2, p2 = x.detach().clone().requires_grad_(), p.detach().clone().requires_grad_()
    rx, rp = torch.autograd.grad(x2.pow(p2).mean(dim=(2, 3)).pow(1 / p2).sum(), (x2, p2))
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gp, rp)
    pool = GeM(3.0, learnable=True)
    pool(torch.rand(2, 3, 4, 4) + 0.1).sum().backward()
    assert pool.p.grad is not None and pool.p.grad.abs().item() > 0
    assert isinstance(GeM(3.0).p, float) and not list(GeM(3.0).parameters())


def test_heads_norm_linear_norm_and_orthogonal_init():
    model = build_model("convnet4", head="norm_linear_norm", embedding_size=256, normalize=False)
    assert model.head.fc.bias is None
    out = model(torch.randn(3, 3, 48, 48))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    raw = build_model("convnet4", head="linear", embedding_size=64, normalize=False, head_init="orthogonal")
    w = raw.head.fc.weight   # (64, 256): rows orthonormal
    torch.testing.assert_close(w @ w.T, torch.eye(64), atol=1e-5, rtol=0)
    assert torch.all(raw.head.fc.bias == 0)
    assert raw(torch.randn(2, 3, 48, 48)).norm(dim=1).sub(1).abs().max() > 1e-3   # not normalised
    assert build_model("convnet4", head="identity").embedding_dim == 256


def test_two_heads_return_g_and_f():
    model = build_model("convnet4", pooling="avgmax", embedding_size=32, second_head_size=64, normalize=False,
                        head_init="orthogonal")
    g, f = model(torch.randn(2, 3, 48, 48))
    assert g.shape == (2, 64) and f.shape == (2, 32) and model.second_embedding_dim == 64
    w = model.second_head.weight   # (64, 256)
    torch.testing.assert_close(w @ w.T, torch.eye(64), atol=1e-5, rtol=0)
    g, f = build_model("convnet4", embedding_size=32, second_head_size=64, normalize=True)(torch.randn(2, 3, 48, 48))
    torch.testing.assert_close(f.norm(dim=1), torch.ones(2))
    assert (g.norm(dim=1) - 1).abs().max() > 1e-3   # g is never normalised


def test_offline_imagenet_names_file_and_folder(empty_hub):
    with pytest.raises(WeightsNotFoundError) as info:
        build_model("resnet50", pretrained="imagenet")
    message = str(info.value)
    assert "resnet50-0676ba61.pth" in message and str(empty_hub / "checkpoints") in message
    assert "pretrained='/path/to/resnet50-0676ba61.pth'" in message
    with pytest.raises(ConfigError, match="no ImageNet weights"):
        build_model("convnet4", pretrained=True)


def test_cached_imagenet_file_is_used_without_download(empty_hub):
    filename, folder, _ = imagenet_weights_file("resnet18")
    folder.mkdir(parents=True)
    reference = tvm.resnet18()
    torch.save(reference.state_dict(), folder / filename)
    model = build_model("resnet18", pretrained="imagenet")
    torch.testing.assert_close(model.backbone.conv1.weight, reference.conv1.weight)


def test_local_file_round_trip_and_resolver(tmp_path, monkeypatch):
    monkeypatch.setattr(weights_module, "_RESOLVERS", {})
    source = build_model("convnet4", embedding_size=8, pooling="gem", gem_learnable=True).eval()
    path = tmp_path / "full.pth"
    torch.save(source.state_dict(), path)
    x = torch.randn(2, 3, 48, 48)
    loaded = build_model("convnet4", embedding_size=8, gem_learnable=True, pretrained=str(path)).eval()
    torch.testing.assert_close(loaded(x), source(x))
    backbone_only = tmp_path / "trunk.pth"
    torch.save({"state_dict": source.backbone.state_dict()}, backbone_only)
    register_weights_resolver("test_standin", lambda backbone: backbone_only)
    other = build_model("convnet4", embedding_size=8, pretrained="test_standin").eval()
    torch.testing.assert_close(other.backbone(x), source.backbone(x))
    with pytest.raises(WeightsNotFoundError, match="no weights file"):
        build_model("convnet4", pretrained=str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("content", [b"step 100 loss 0.5\n", b"hello", b"", b"\x00\x01binary"])
def test_a_file_that_is_not_a_torch_file_is_named_with_the_fix(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)  # torch.load fails with IndexError: pop from empty list on the first one
    with pytest.raises(WeightsNotFoundError) as info:
        build_model("convnet4", pretrained=str(path))
    message = str(info.value)
    assert f"'{path}' is not a torch weights file" in message and "Fix: pass the .pth file" in message


def test_mismatched_file_lists_keys(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(tvm.resnet18().state_dict(), path)
    with pytest.raises(WeightsMismatchError) as info:
        build_model("convnet4", pretrained=path)
    message = str(info.value)
    assert "missing" in message and "blocks.0.0.weight" in message and "unexpected" in message
    assert "layer1.0.conv1.weight" in message and isinstance(info.value, SsmlError)
    full = tmp_path / "full.pth"
    torch.save(build_model("convnet4", embedding_size=8).state_dict(), full)
    with pytest.raises(WeightsMismatchError, match=r"wrong shape.*head\.fc\.weight.*part='backbone'"):
        build_model("convnet4", embedding_size=16, pretrained=full)


def test_bad_arguments_are_refused():
    for kwargs in ({"pooling": "sum"}, {"head": "mlp"}, {"embedding_size": 0}, {"gem_p": 0.0},
                   {"head_init": "xavier"}, {"pretrained": 3}):
        with pytest.raises(ConfigError):
            build_model("convnet4", **kwargs)
    with pytest.raises(ConfigError, match="unknown backbone"):
        build_model("vgg16")


def test_channels_last_forward_equals_contiguous():
    model = build_model("resnet18", embedding_size=16).eval()
    fast = build_model("resnet18", embedding_size=16, channels_last=True).eval()
    fast.load_state_dict(model.state_dict())
    assert fast.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)), model(x),
                                   atol=1e-5, rtol=1e-4)


def test_bn_freeze_keeps_running_stats_and_affine_fixed():
    model = build_model("convnet4").train()
    assert bn_freeze(model) == 4
    bn = model.backbone.blocks[0][1]
    before = (bn.running_mean.clone(), bn.running_var.clone())
    trainable = count_parameters(model, trainable_only=True)
    model(torch.randn(4, 3, 48, 48) * 3 + 1).sum().backward()
    torch.testing.assert_close((bn.running_mean, bn.running_var), before)
    assert bn.weight.grad is None and not bn.training
    assert count_parameters(model) - trainable == sum(2 * w for w in (32, 64, 128, 256))
