"""Where initial weights come from: nowhere (random), torchvision's ImageNet files, a local file, or a named
resolver (e.g. the stand-in pre-training registers ``'standin'``).

Nothing is downloaded unless ``allow_download=True``: the ImageNet file is looked up in torch hub's cache
(``torch.hub.get_dir()/checkpoints/<file>``; ``TORCH_HOME`` moves it) and, when absent, the error says which
file to put where. Files load with ``torch.load(weights_only=True)`` and must match the backbone key for key.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Union

import torch
from torch import nn
from torchvision import models as tvm

from ssml_lib.errors import ConfigError, UnsafePickleError, WeightsNotFoundError
from ssml_lib.models.backbones import backbone_spec

StateDict = Mapping[str, torch.Tensor]
WeightsSource = Union[Path, StateDict]
_RESOLVERS: dict[str, Callable[[str], Union[str, os.PathLike, StateDict]]] = {}
_SHOW_KEYS = 8   # keys listed per kind in a mismatch message; a resnet50 file in a resnet18 lists hundreds


class WeightsMismatchError(ConfigError):
    """A weights file does not fit the model: missing, unexpected or mis-shaped keys."""


def register_weights_resolver(name: str, fn: Callable[[str], Union[str, os.PathLike, StateDict]]) -> None:
    """Make ``pretrained=name`` call ``fn(backbone_name)``, which returns a file path or a state dict."""
    if name == "imagenet":
        raise ConfigError("'imagenet' is built in and cannot be re-registered; pick another resolver name")
    _RESOLVERS[name] = fn


def registered_weights() -> list[str]:
    return ["imagenet", *sorted(_RESOLVERS)]


def imagenet_weights_file(backbone: str) -> tuple[str, Path, str]:
    """``(file name, folder, url)`` of the torchvision ImageNet checkpoint of ``backbone``."""
    spec = backbone_spec(backbone)
    if spec.imagenet_weights is None:
        raise ConfigError(f"backbone {backbone!r} has no ImageNet weights; use pretrained=None, a registered name "
                          f"({registered_weights()[1:]}) or a path to a .pth file")
    enum_name, member = spec.imagenet_weights.split(".")
    url = getattr(getattr(tvm, enum_name), member).url
    return os.path.basename(url), Path(torch.hub.get_dir()) / "checkpoints", url


def _imagenet(backbone: str, allow_download: bool) -> WeightsSource:
    filename, folder, url = imagenet_weights_file(backbone)
    if (folder / filename).is_file():
        return folder / filename
    how = (f"put '{filename}' (from {url}) in the folder '{folder}' (torch.hub.get_dir()/checkpoints; TORCH_HOME "
           f"moves it), or pass pretrained='/path/to/{filename}'")
    if not allow_download:
        raise WeightsNotFoundError(f"ImageNet weights for {backbone!r} are not on disk. Fix: {how}, "
                                   f"or allow_download=True where there is internet")
    try:
        return torch.hub.load_state_dict_from_url(url, model_dir=str(folder), map_location="cpu",
                                                  check_hash=True, weights_only=True)
    except Exception as exc:   # URLError, timeouts, hash mismatch: all mean "no usable file"
        raise WeightsNotFoundError(f"downloading ImageNet weights for {backbone!r} failed ({exc}). Fix: {how}") \
            from exc


def resolve_weights(backbone: str, pretrained, *, allow_download: bool = False) -> WeightsSource | None:
    """Check that the weights exist (cheap; before any model is built) and return a file path or a state dict."""
    if pretrained is None or pretrained is False:
        return None
    if pretrained is True:
        pretrained = "imagenet"
    if not isinstance(pretrained, (str, os.PathLike)):
        raise ConfigError(f"pretrained must be None, True, a name in {registered_weights()} or a file path; "
                          f"got {type(pretrained).__name__}")
    if pretrained == "imagenet":
        return _imagenet(backbone, allow_download)
    if pretrained in _RESOLVERS:
        found = _RESOLVERS[pretrained](backbone)
        if isinstance(found, Mapping):
            return found
        if not Path(found).is_file():
            raise WeightsNotFoundError(f"weights {pretrained!r} for {backbone!r} resolved to '{found}', which does "
                                       f"not exist; create it first (e.g. run the stand-in pre-training)")
        return Path(found)
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"no weights file at '{path}'; pretrained must be None, one of "
                                   f"{registered_weights()}, or the path of an existing .pth file")
    return path


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a file: a bare one, or inside ``{'state_dict': ...}`` / ``{'model': ...}``."""
    from ssml_lib.io import torch_file_problem

    fix = ("Fix: pass the .pth file that torch.save(model.state_dict(), path) wrote (or torchvision's checkpoint "
           "of the backbone, e.g. resnet18-f37072fd.pth), or pretrained=None / 'imagenet'")
    try:
        problem = torch_file_problem(path)
    except OSError as exc:
        raise WeightsNotFoundError(f"weights file '{path}' cannot be opened ({exc}). {fix}.") from None
    if problem is not None:
        raise WeightsNotFoundError(f"'{path}' is not a torch weights file: {problem}. {fix}.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafePickleError(f"'{path}' holds objects that weights_only loading refuses ({exc}); "
                                f"re-save it as a plain state_dict: torch.save(model.state_dict(), path)") from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise WeightsNotFoundError(f"'{path}' is not a readable torch checkpoint ({exc}); "
                                   f"the file may be truncated: fetch or save it again") from exc
    except Exception as exc:  # a damaged file fails inside torch's unpickler with any error (IndexError, KeyError)
        raise WeightsNotFoundError(f"'{path}' cannot be read as a torch file ({type(exc).__name__}: {exc}); it is "
                                   f"corrupt. {fix}.") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsMismatchError(f"'{path}' does not hold a state dict of tensors; save model.state_dict()")
    return dict(obj)


def _strict_load(module: nn.Module, state: StateDict, what: str, hint: str) -> None:
    """``load_state_dict`` after our own strict check, so the error lists keys and shapes and says what to do."""
    own = module.state_dict()
    # Old torchvision files lack BatchNorm's num_batches_tracked; it is a counter, not a weight.
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{name} ({len(keys)}): {keys[:_SHOW_KEYS]}{' ...' if len(keys) > _SHOW_KEYS else ''}"
                 for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes))
                 if keys]
        raise WeightsMismatchError(f"weights do not fit the {what}: " + "; ".join(parts) + f". {hint}")
    module.load_state_dict(state, strict=False)


def load_weights(model: nn.Module, source: WeightsSource | str, *, part: str = "auto") -> None:
    """Load a file or state dict into an :class:`Embedder`.

    ``part='backbone'``: a backbone state dict (torchvision names; a classifier's ``fc``/``aux`` keys are dropped)
    or the ``backbone.*`` part of a full Embedder state dict. ``part='all'``: a full Embedder state dict.
    ``'auto'``: ``'all'`` when the keys start with ``backbone.``, else ``'backbone'``.
    """
    state = read_state_dict(source) if isinstance(source, (str, os.PathLike)) else dict(source)
    if state and all(k.startswith("module.") for k in state):   # saved from DataParallel / DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    is_full = any(k.startswith("backbone.") for k in state)
    part = ("all" if is_full else "backbone") if part == "auto" else part
    if part == "all":
        if not is_full:
            raise WeightsMismatchError("the weights hold a backbone only; load them with part='backbone'")
        _strict_load(model, state, "whole model",
                     "Build the model with the same backbone, pooling and heads, or load with part='backbone'")
    elif part == "backbone":
        if is_full:
            state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        else:
            drop = backbone_spec(model.backbone_name).classifier_prefixes
            state = {k: v for k, v in state.items() if not (drop and k.startswith(drop))}
        _strict_load(model.backbone, state, f"{model.backbone_name!r} backbone",
                     "Check that the file was saved from the same backbone architecture")
    else:
        raise ConfigError(f"unknown part {part!r}; choose 'auto', 'backbone' or 'all'")
