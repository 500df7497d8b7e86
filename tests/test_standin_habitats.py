"""The stand-in's surroundings are shared, not instance-specific; its source and target classes differ in kind."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from ssml_lib.data.standin.classes import CLASS_SPACES, class_space, object_class, stable_rng
from ssml_lib.data.standin.habitats import DATASET_STYLES, HABITAT_STYLES, HabitatPool, paint_background
from ssml_lib.data.standin.render import VIEWS, render_view
from ssml_lib.data.standin.shapes import SOURCE_SHAPES, TARGET_SHAPES
from ssml_lib.data.standin.sizes import SIZES

TARGETS = ("cub200", "cars196", "sop", "gldv2", "roxford5k", "rparis6k", "revisitop1m")


def _habitat_of(name: str, class_id: int, k: int, pool: HabitatPool) -> int:
    # the writers' image stream draws the habitat first (ssml_lib.data.standin.dml._render)
    return pool.draw(stable_rng("image", name, 0, class_id, k)).index


@pytest.mark.parametrize("name", ["cub200", "cars196", "sop"])
def test_surroundings_come_from_a_small_pool_shared_across_classes(name):
    size = SIZES["default"][name]
    pool = HabitatPool.for_dataset(name, 0)
    classes_of = collections.defaultdict(set)
    images = 0
    for c in range(1, size.train_classes + size.test_classes + 1):
        for k in range(size.images_per_class[0]):
            classes_of[_habitat_of(name, c, k, pool)].add(c)
            images += 1
    assert len(classes_of) == pool.style.count <= 12 < images / 50
    # every habitat holds images of many classes, so it cannot tell classes (or images) apart
    assert min(len(c) for c in classes_of.values()) >= 10


def test_the_dataset_writer_draws_the_habitat_first():
    # so _habitat_of above replays the writers' choice exactly
    pool = HabitatPool.for_dataset("cub200", 0)
    img, _ = render_view(object_class("cub200", 3), VIEWS["dml"], stable_rng("image", "cub200", 0, 3, 1), 48, 48, pool)
    rng = stable_rng("image", "cub200", 0, 3, 1)
    hab = pool.draw(rng)
    again, _ = render_view(object_class("cub200", 3), VIEWS["dml"], rng, 48, 48, pool, habitat=hab)
    assert np.array_equal(img, again)
    assert hab.index == _habitat_of("cub200", 3, 1, pool)


@pytest.mark.parametrize("style", sorted(set(DATASET_STYLES.values()) - {"studio"}))
def test_layout_is_per_image_but_statistics_belong_to_the_habitat(style):
    pool = HabitatPool("probe", 0, style)
    a, b = pool.habitats[0], pool.habitats[1]
    x1 = paint_background(a, np.random.default_rng(1), 96, 96)
    x2 = paint_background(a, np.random.default_rng(2), 96, 96)
    y = paint_background(b, np.random.default_rng(1), 96, 96)
    # another image of the same habitat: other pixels (texture phases, blob places) ...
    assert np.abs(x1 - x2).mean() > 0.01
    # ... but the same colour statistics, closer than another habitat's
    same = np.abs(x1.mean((0, 1)) - x2.mean((0, 1))).max()
    other = np.abs(x1.mean((0, 1)) - y.mean((0, 1))).max()
    assert same < 0.03 and same < other


def test_studio_backgrounds_are_plain_and_light():
    pool = HabitatPool.for_dataset("sop", 0)
    for hab in pool.habitats:
        x = paint_background(hab, np.random.default_rng(0), 64, 64)
        assert x.mean() > 0.6 and x.std() < 0.08
        assert hab.clutter_count == 0


def test_source_and_target_classes_differ_in_kind():
    assert not set(SOURCE_SHAPES) & set(TARGET_SHAPES)
    source = [object_class("imagenet", c) for c in range(1, SIZES["default"]["imagenet"].classes + 1)]
    assert all(p.shape in SOURCE_SHAPES for c in source for p in c.parts)
    assert {len(c.parts) for c in source} <= {2, 3}
    for name in TARGETS:
        space = class_space(name)
        classes = [object_class(name, c) for c in range(1, 41)]
        assert all(p.shape in TARGET_SHAPES for c in classes for p in c.parts), name
        assert min(len(c.parts) for c in classes) >= 3
        assert space.spread < CLASS_SPACES["imagenet"].spread  # the source's parts lie further apart
    # other surroundings: its own habitat style, other clutter shapes, stronger light changes
    src = HABITAT_STYLES[DATASET_STYLES["imagenet"]]
    for name in TARGETS:
        tgt = HABITAT_STYLES[DATASET_STYLES[name]]
        assert tgt.background != src.background
        assert not set(tgt.clutter_shapes) & set(src.clutter_shapes)
        assert tgt.color_cast < src.color_cast


def test_cub_species_share_a_family_plan_and_differ_in_plumage():
    family = [object_class("cub200", c) for c in range(1, 6)]
    other = object_class("cub200", 6)
    shapes = [tuple(p.shape for p in c.parts) for c in family]
    assert len(set(shapes)) == 1 and tuple(p.shape for p in other.parts) != shapes[0]
    for a, b in zip(family, family[1:]):
        recoloured = sum(pa.color != pb.color for pa, pb in zip(a.parts, b.parts))
        assert 1 <= recoloured <= 4
        assert max(abs(pa.cx - pb.cx) for pa, pb in zip(a.parts, b.parts)) < 0.3  # nudged, not moved


def test_cars_models_differ_in_geometry_and_take_their_body_colour_per_image():
    make = [object_class("cars196", c) for c in range(1, 8)]
    assert all(c.free_colour_part == 0 for c in make)
    assert len({tuple(p.shape for p in c.parts) for c in make}) > 1  # models change part shapes
    pool = HabitatPool.for_dataset("cars196", 0)
    hab = pool.habitats[0]
    view = VIEWS["dml"]
    imgs = [render_view(make[0], view, np.random.default_rng(0), 48, 48, pool, habitat=hab,
                        pose_rng=np.random.default_rng(seed))[0] for seed in (1, 2)]
    assert not np.array_equal(imgs[0], imgs[1])
    assert object_class("cub200", 1).free_colour_part is None
