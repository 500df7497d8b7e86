"""Stand-in "ImageNet pre-training": a short supervised training on a third, disjoint set of stand-in classes.

With real data the "ImageNet pre-trained" rows start from torchvision's ImageNet weights. On the stand-in there
is no ImageNet, so the backbone is first trained with cross-entropy on the stand-in ``imagenet`` class set
(disjoint from every DML/retrieval stand-in class), and the backbone weights are cached on disk. Pretrained vs
scratch rows then differ in miniature as they do in the thesis. The cache key holds every setting, and a JSON
record beside the weights says how they were made.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets as tvd
from torchvision import transforms as T

from ..io import atomic_torch_save, atomic_write_text, file_lock
from ..models import build_model
from ..paths import cache_dir
from ..progress import progress_bar

_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PretrainSettings:
    backbone: str = "convnet4"
    size: str = "default"          # stand-in size of the imagenet class set
    seed: int = 0
    image_size: int = 48
    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.05

    def key(self) -> str:
        return (f"{self.backbone}_{self.size}_s{self.seed}_px{self.image_size}_e{self.epochs}"
                f"_b{self.batch_size}_lr{self.lr:g}")


def standin_pretrained_weights(settings: PretrainSettings = PretrainSettings(), *, device: str = "cpu",
                               progress: bool = True) -> Path:
    """Path of the cached stand-in pre-trained backbone weights, training them first if absent."""
    out = cache_dir() / "pretrain" / f"{settings.key()}.pt"
    if out.is_file():
        return out
    with file_lock(out):  # a concurrent run training the same weights: wait, then reuse them
        if not out.is_file():
            _pretrain(settings, out, device, progress)
    return out


def _pretrain(settings: PretrainSettings, out: Path, device: str, progress: bool) -> None:
    from .datasets import dataset_root

    root = dataset_root("imagenet", None, standin_size=settings.size, standin_seed=settings.seed)
    torch.manual_seed(settings.seed)
    train_tf = T.Compose([T.RandomResizedCrop(settings.image_size, scale=(0.5, 1.0)), T.RandomHorizontalFlip(),
                          T.ToTensor(), T.Normalize(_MEAN, _STD)])
    train = tvd.ImageFolder(str(Path(root) / "train"), transform=train_tf)
    gen = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(train, batch_size=settings.batch_size, shuffle=True, drop_last=True, generator=gen)

    model = build_model(settings.backbone, pooling="avg", head="identity", normalize=False)
    classifier = nn.Linear(model.feature_dim, len(train.classes))
    net = nn.Sequential(model, classifier).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=settings.lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.epochs * len(loader))
    start = time.time()
    correct = seen = 0
    bar = progress_bar(range(settings.epochs), desc=f"stand-in pre-training {settings.backbone}", enabled=progress)
    for _ in bar:
        correct = seen = 0
        loss_sum = torch.zeros((), device=device)
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = net(images)
            loss = nn.functional.cross_entropy(logits, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach()
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
        bar.set_postfix(loss=float(loss_sum) / len(loader), acc=correct / max(seen, 1))
    record = {**asdict(settings), "classes": len(train.classes), "images": len(train),
              "final_epoch_train_accuracy": correct / max(seen, 1), "wall_time_s": time.time() - start,
              "device": str(device), "torch": torch.__version__, "standin": True}
    atomic_torch_save(model.backbone.state_dict(), out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(record, indent=2))
