"""Procedural object classes: a few coloured primitives at fixed relative positions, built per dataset.

A class is a pure function of (namespace, class number), so datasets with different namespaces, and the train
and test classes within one, never share a class. How a dataset's classes relate to each other is its
:class:`ClassSpace`, chosen to mirror what the real dataset is made of:

- CUB: species come in families of five that share a body plan (the same shapes at the same places) and
  differ in the colours and patterns of two parts, as bird species differ in plumage;
- Cars: models come in makes of seven that share a plan and differ in geometry (two parts change shape,
  every part moves a little); the body colour is drawn per image, as one model is sold in many colours;
- SOP: products of one super-class share a geometry and differ in all colours and patterns;
- landmarks: every landmark is its own plan;
- the stand-in "ImageNet" (the source of pre-training) differs from all of them in kind: other primitives
  (:data:`~.shapes.SOURCE_SHAPES`), two or three parts spread further apart, independent classes.
"""
from __future__ import annotations

import colorsys
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from .shapes import SOURCE_SHAPES, TARGET_SHAPES

PATTERNS = ("flat", "stripes", "shaded")


@dataclass(frozen=True)
class Part:
    """One primitive, in object coordinates (the object lives in about [-1, 1]^2)."""

    shape: str
    cx: float
    cy: float
    size: float  # radius-like extent
    aspect: float  # bars, crosses, chevrons: half-width relative to half-length
    angle: float  # radians
    color: tuple[float, float, float]  # RGB in [0, 1]
    pattern: str
    frequency: float  # stripes per unit length (patterns that use it)


@dataclass(frozen=True)
class ObjectClass:
    key: str  # "<namespace>/<number>"
    parts: tuple[Part, ...]
    free_colour_part: Optional[int] = None  # this part's colour is drawn per image (Cars' body colour)

    def fingerprint(self) -> str:
        """A short hash of the full specification, to check that two classes really differ."""
        return hashlib.sha256(repr((self.parts, self.free_colour_part)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ClassSpace:
    """How one dataset's classes are drawn (see the module docstring)."""

    shapes: tuple[str, ...]
    parts: tuple[int, int]  # parts per plan, inclusive
    spread: float = 0.55  # part centres within [-spread, spread]
    family_size: int = 1  # consecutive class numbers that share a plan (1: independent classes)
    varies: Literal["appearance", "geometry"] = "appearance"
    varied_parts: int = 2  # parts a class changes relative to its family's plan
    nudge: float = 0.04  # geometry jitter of every part of a class relative to its family
    free_colour: bool = False  # the plan's first part gets its colour per image


_DML = dict(shapes=TARGET_SHAPES, parts=(4, 5))
CLASS_SPACES: dict[str, ClassSpace] = {
    "cub200": ClassSpace(**_DML, family_size=5, varies="appearance", varied_parts=2),
    "cars196": ClassSpace(**_DML, family_size=7, varies="geometry", varied_parts=2, nudge=0.08, free_colour=True),
    "sop": ClassSpace(TARGET_SHAPES, (3, 5), varies="appearance", varied_parts=99, nudge=0.06),
    "landmark": ClassSpace(TARGET_SHAPES, (3, 5)),
    "imagenet": ClassSpace(SOURCE_SHAPES, (2, 3), spread=0.7),
    "cifar10": ClassSpace(TARGET_SHAPES, (3, 5)),  # ten independent kinds of object, no families
    "cifar100": ClassSpace(TARGET_SHAPES, (3, 5), family_size=5, varies="appearance", varied_parts=2),  # 20 x 5
    "stl10": ClassSpace(TARGET_SHAPES, (3, 5)),  # ten kinds of object, and others in the unlabelled split
}
_LANDMARK_NAMESPACES = ("gldv2", "roxford5k", "rparis6k", "revisitop1m")


def class_space(namespace: str) -> ClassSpace:
    """The class space of a namespace; derived namespaces ("gldv2-noise", "sop-super") use their dataset's."""
    base = namespace.split("-")[0]
    if base in _LANDMARK_NAMESPACES:
        return CLASS_SPACES["landmark"]
    if base not in CLASS_SPACES:
        raise ValueError(f"no class space for namespace {namespace!r}")
    return CLASS_SPACES[base]


def stable_rng(*keys: object) -> np.random.Generator:
    """A generator seeded from the text of ``keys`` (independent of PYTHONHASHSEED and platform)."""
    digest = hashlib.sha256("\x1f".join(map(str, keys)).encode()).digest()
    return np.random.default_rng([int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)])


def random_color(rng: np.random.Generator) -> tuple[float, float, float]:
    # Saturated, reasonably bright colours, so parts stand out from the muted backgrounds.
    h, s, v = rng.uniform(0, 1), rng.uniform(0.45, 1.0), rng.uniform(0.45, 1.0)
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h, s, v))


def random_part(rng: np.random.Generator, centre_range: float = 0.55,
                shapes: tuple[str, ...] = TARGET_SHAPES) -> Part:
    shape = shapes[rng.integers(len(shapes))]
    return Part(
        shape=shape,
        cx=float(rng.uniform(-centre_range, centre_range)),
        cy=float(rng.uniform(-centre_range, centre_range)),
        size=float(rng.uniform(0.2, 0.45)),
        aspect=float(rng.uniform(0.2, 0.4)),
        angle=float(rng.uniform(0, np.pi)),
        color=random_color(rng),
        pattern=PATTERNS[rng.integers(len(PATTERNS))],
        frequency=float(rng.uniform(2.0, 4.0)),
    )


def _plan(rng: np.random.Generator, space: ClassSpace) -> tuple[Part, ...]:
    count = int(rng.integers(space.parts[0], space.parts[1] + 1))
    return tuple(random_part(rng, space.spread, space.shapes) for _ in range(count))


def _variant(base: tuple[Part, ...], rng: np.random.Generator, space: ClassSpace) -> tuple[Part, ...]:
    """A class of a family: every part nudged, ``varied_parts`` of them changed in appearance or shape."""
    changed = set(rng.choice(len(base), min(space.varied_parts, len(base)), replace=False).tolist())
    parts = []
    for i, p in enumerate(base):
        p = dataclasses.replace(p, cx=p.cx + float(rng.normal(0, space.nudge)), cy=p.cy + float(rng.normal(0, space.nudge)),
                                size=p.size * float(rng.uniform(0.85, 1.15)), angle=p.angle + float(rng.normal(0, 0.2)))
        if i in changed and space.varies == "appearance":
            p = dataclasses.replace(p, color=random_color(rng), pattern=PATTERNS[rng.integers(len(PATTERNS))])
        elif i in changed:  # geometry: another shape, size and aspect at a shifted place
            p = dataclasses.replace(p, shape=space.shapes[rng.integers(len(space.shapes))],
                                    size=float(rng.uniform(0.2, 0.45)), aspect=float(rng.uniform(0.2, 0.4)),
                                    cx=p.cx + float(rng.normal(0, 0.15)), cy=p.cy + float(rng.normal(0, 0.15)))
        parts.append(p)
    return tuple(parts)


def object_class(namespace: str, number: int, family: tuple[str, int] | None = None) -> ObjectClass:
    """The class ``number`` of ``namespace``, built as its :func:`class_space` says.

    ``family`` (namespace, number) names the plan explicitly (SOP's super-classes); otherwise a space with
    ``family_size`` > 1 groups consecutive numbers, and a space without families draws every class alone.
    """
    space = class_space(namespace)
    rng = stable_rng("class", namespace, number)
    if family is None and space.family_size > 1:
        family = (namespace, (number - 1) // space.family_size)
    if family is None:
        parts = _plan(rng, space)
    else:
        parts = _variant(_plan(stable_rng("family", *family), space), rng, space)
    return ObjectClass(key=f"{namespace}/{number}", parts=parts, free_colour_part=0 if space.free_colour else None)
