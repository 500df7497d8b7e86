"""Primitive shapes as masks in the primitive's own frame (u, v in about [-1, 1]).

Two vocabularies that share no shape: the target datasets (CUB, Cars, SOP, the landmark sets) are built from
``TARGET_SHAPES``, the stand-in "ImageNet" from ``SOURCE_SHAPES``. Edges, corners, curves, colours and
stripes occur in both, so what a network learns on one transfers in part to the other, as ImageNet features
transfer to birds and cars without containing those species or models.
"""
from __future__ import annotations

import numpy as np

TARGET_SHAPES = ("disk", "ring", "square", "triangle", "bar", "cross")
SOURCE_SHAPES = ("star", "hexagon", "crescent", "ellipse", "diamond", "chevron")
SHAPES = TARGET_SHAPES + SOURCE_SHAPES


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray, aspect: float) -> np.ndarray:
    """Boolean mask of ``shape`` at frame coordinates (u, v); ``aspect`` thins bars, crosses and chevrons."""
    if shape == "disk":
        return u * u + v * v <= 1.0
    if shape == "ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.3)
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "triangle":  # equilateral, circumradius 1: three half-planes at distance 0.5
        return (v <= 0.5) & (0.866 * u - 0.5 * v <= 0.5) & (-0.866 * u - 0.5 * v <= 0.5)
    if shape == "bar":
        return (np.abs(u) <= 1.0) & (np.abs(v) <= aspect)
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= 1.0) & (av <= aspect)) | ((av <= 1.0) & (au <= aspect))
    if shape == "star":  # five lobes
        radius = 0.55 + 0.45 * np.abs(np.cos(2.5 * np.arctan2(v, u)))
        return u * u + v * v <= radius * radius
    if shape == "hexagon":
        au, av = np.abs(u), np.abs(v)
        return (av <= 0.866) & (0.866 * au + 0.5 * av <= 0.866)
    if shape == "crescent":
        return (u * u + v * v <= 1.0) & ((u - 0.45) ** 2 + v * v > 0.6)
    if shape == "ellipse":
        minor = max(aspect * 1.8, 0.3)
        return u * u + (v / minor) ** 2 <= 1.0
    if shape == "diamond":
        return np.abs(u) + np.abs(v) / 0.7 <= 1.0
    if shape == "chevron":
        return (np.abs(v - 0.6 * np.abs(u)) <= aspect) & (np.abs(u) <= 1.0)
    raise ValueError(f"unknown shape {shape!r}")
