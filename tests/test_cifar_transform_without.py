"""``cifar_transform(without=...)``: the Spreading paper's Table 7 / 8 augmentation switch leaves out exactly the
named training steps, keeps the others (same types, same settings, same order) and the test pipeline as it is."""
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from ssml_lib.data.transforms import CIFAR_AUGMENTATIONS, cifar_transform
from ssml_lib.errors import ConfigError

STEP = {"crop": T.RandomResizedCrop, "jitter": T.ColorJitter, "grey": T.RandomGrayscale,
        "flip": T.RandomHorizontalFlip}


def _steps(tf):
    return [repr(t) for t in tf.transforms]


def test_full_pipeline_is_the_four_steps_in_order_then_normalisation():
    steps = cifar_transform(True).transforms
    assert [type(t) for t in steps[:4]] == [STEP[k] for k in CIFAR_AUGMENTATIONS]
    assert [type(t) for t in steps[4:]] == [T.ToTensor, T.Normalize]


@pytest.mark.parametrize("name", CIFAR_AUGMENTATIONS)
def test_without_one_step_removes_exactly_that_step(name):
    full, cut = _steps(cifar_transform(True)), _steps(cifar_transform(True, without=[name]))
    removed = [s for s in full if s not in cut]
    assert len(cut) == len(full) - 1 and len(removed) == 1 and removed[0].startswith(STEP[name].__name__)
    assert [s for s in full if s != removed[0]] == cut  # the others unchanged and in order


def test_without_all_four_is_the_test_pipeline_and_flip_false_agrees():
    assert _steps(cifar_transform(True, without=CIFAR_AUGMENTATIONS)) == _steps(cifar_transform(False))
    assert _steps(cifar_transform(True, flip=False)) == _steps(cifar_transform(True, without=["flip"]))
    assert _steps(cifar_transform(False, without=["crop"])) == _steps(cifar_transform(False))
    image = Image.new("RGB", (32, 32), (120, 30, 200))
    no_da = cifar_transform(True, without=CIFAR_AUGMENTATIONS)
    assert torch.equal(no_da(image), no_da(image))  # deterministic: both views identical


def test_unknown_names_and_a_bare_string_are_refused():
    with pytest.raises(ConfigError, match="crop, jitter, grey, flip"):
        cifar_transform(True, without=["colour"])
    with pytest.raises(ConfigError, match="without takes a list"):
        cifar_transform(True, without="crop")
