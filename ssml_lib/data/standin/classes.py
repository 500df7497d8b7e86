"""Procedural object classes: a few coloured primitives at fixed relative positions.

A class is a pure function of (namespace, class number), so every stand-in dataset draws from one shared
"class space" (which is what lets stand-in ImageNet pre-training transfer) while datasets with different
namespaces, and the train and test classes within one, never share a class.
"""
from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass

import numpy as np

SHAPES = ("disk", "ring", "square", "triangle", "bar", "cross")
PATTERNS = ("flat", "stripes", "shaded")


@dataclass(frozen=True)
class Part:
    """One primitive, in object coordinates (the object lives in about [-1, 1]^2)."""

    shape: str
    cx: float
    cy: float
    size: float  # radius-like extent
    aspect: float  # bars and crosses: half-width relative to half-length
    angle: float  # radians
    color: tuple[float, float, float]  # RGB in [0, 1]
    pattern: str
    frequency: float  # stripes per unit length (patterns that use it)


@dataclass(frozen=True)
class ObjectClass:
    key: str  # "<namespace>/<number>"
    parts: tuple[Part, ...]

    def fingerprint(self) -> str:
        """A short hash of the full specification, to check that two classes really differ."""
        return hashlib.sha256(repr(self.parts).encode()).hexdigest()[:16]


def stable_rng(*keys: object) -> np.random.Generator:
    """A generator seeded from the text of ``keys`` (independent of PYTHONHASHSEED and platform)."""
    digest = hashlib.sha256("\x1f".join(map(str, keys)).encode()).digest()
    return np.random.default_rng([int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)])


def random_color(rng: np.random.Generator) -> tuple[float, float, float]:
    # Saturated, reasonably bright colours, so parts stand out from the muted backgrounds.
    h, s, v = rng.uniform(0, 1), rng.uniform(0.45, 1.0), rng.uniform(0.45, 1.0)
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h, s, v))


def random_part(rng: np.random.Generator, centre_range: float = 0.55) -> Part:
    shape = SHAPES[rng.integers(len(SHAPES))]
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


def object_class(namespace: str, number: int, family: tuple[str, int] | None = None) -> ObjectClass:
    """The class ``number`` of ``namespace``: 3-5 parts, drawn from a generator keyed by both.

    ``family`` (namespace, number) gives a shared geometry (as SOP's super-classes): the class keeps the
    family's shapes and layout, nudged a little, and gets its own colours and patterns, so classes of one
    family are fine-grained neighbours.
    """
    rng = stable_rng("class", namespace, number)
    if family is None:
        parts = tuple(random_part(rng) for _ in range(int(rng.integers(3, 6))))
    else:
        base = object_class(*family).parts
        parts = tuple(
            Part(shape=p.shape, cx=p.cx + float(rng.normal(0, 0.06)), cy=p.cy + float(rng.normal(0, 0.06)),
                 size=p.size * float(rng.uniform(0.85, 1.15)), aspect=p.aspect, angle=p.angle + float(rng.normal(0, 0.2)),
                 color=random_color(rng), pattern=PATTERNS[rng.integers(len(PATTERNS))], frequency=p.frequency)
            for p in base
        )
    return ObjectClass(key=f"{namespace}/{number}", parts=parts)
