"""Tests for the procedurally generated "shapes" dataset."""

import hashlib
import re

import numpy as np
import pytest

from kerasapps.data import shapes
from kerasapps.data.shapes import (
    CLASS_NAMES,
    COLOURS,
    MASK_CLASS_NAMES,
    MASK_COLOURS,
    SHAPES,
    SPLITS,
    ShapeObject,
    describe,
    generate_arrays,
    generate_scene,
)

CAPTION_RE = re.compile(r"^[a-z]+( [a-z]+)*$")


@pytest.fixture(scope="module")
def train_batch():
    return generate_arrays("train", 2400, seed=0)


def test_constants():
    assert len(SHAPES) == 4 and len(set(SHAPES)) == 4
    assert set(COLOURS) == {"red", "green", "blue", "yellow", "magenta", "cyan"}
    assert SPLITS == ("train", "validation", "test")
    assert len(CLASS_NAMES) == len(COLOURS) * len(SHAPES) == 24
    for ci, colour in enumerate(COLOURS):
        for si, shape in enumerate(SHAPES):
            assert CLASS_NAMES[ci * len(SHAPES) + si] == f"{colour} {shape}"
    assert MASK_CLASS_NAMES == ("background",) + SHAPES
    assert len(MASK_COLOURS) == len(MASK_CLASS_NAMES)
    assert MASK_COLOURS[0] == (0, 0, 0)
    assert len(set(MASK_COLOURS)) == len(MASK_COLOURS)


def test_determinism_any_order():
    a = generate_arrays("train", 20, seed=3, start=5)
    # Scenes generated alone, in reverse order, after other calls, match.
    generate_scene(0, "validation", seed=7)
    for i in reversed(range(20)):
        s = generate_scene(5 + i, "train", seed=3)
        np.testing.assert_array_equal(s["image"], a["image"][i])
        np.testing.assert_array_equal(s["mask"], a["mask"][i])
        assert s["label"] == a["label"][i]
        assert s["captions"] == a["captions"][i]
    b = generate_arrays("train", 20, seed=3, start=5)
    for key in ("image", "mask", "label"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["captions"] == b["captions"]
    # The seed matters.
    c = generate_arrays("train", 20, seed=4, start=5)
    assert not np.array_equal(a["image"], c["image"])


def test_array_dtypes_and_shapes():
    d = generate_arrays("validation", 7, image_size=64)
    assert d["image"].shape == (7, 64, 64, 3) and d["image"].dtype == np.uint8
    assert d["mask"].shape == (7, 64, 64) and d["mask"].dtype == np.uint8
    assert d["label"].shape == (7,) and d["label"].dtype == np.int64
    assert len(d["captions"]) == 7
    assert int(d["mask"].max()) <= len(SHAPES)
    assert generate_arrays("test", 0)["image"].shape == (0, 64, 64, 3)


def _hashes(images):
    return {hashlib.sha1(im.tobytes()).hexdigest() for im in images}


def test_splits_are_disjoint(train_batch):
    train = _hashes(train_batch["image"][:2000])
    test = _hashes(generate_arrays("test", 500)["image"])
    val = _hashes(generate_arrays("validation", 500)["image"])
    assert len(train) == 2000 and len(test) == 500 and len(val) == 500
    assert not train & test
    assert not train & val
    assert not val & test


def test_main_object_is_last_large_and_labelled():
    for i in range(200):
        s = generate_scene(i, "train")
        objs = s["objects"]
        assert 1 <= len(objs) <= 3
        main = objs[-1]
        assert isinstance(main, ShapeObject)
        assert main.size == "large"
        assert all(o.size == "small" for o in objs[:-1])
        assert s["label"] == COLOURS_INDEX[main.colour] * len(SHAPES) + SHAPES.index(main.shape)
        assert CLASS_NAMES[s["label"]] == f"{main.colour} {main.shape}"
        size = s["image"].shape[0]
        assert 0.2 * size <= main.radius <= 0.32 * size
        for o in objs[:-1]:
            assert 0.08 * size <= o.radius <= 0.15 * size
            assert o.radius < main.radius
        # Every object's centre is inside; the main object is fully inside.
        cx, cy = main.center
        assert main.radius <= cx <= size - main.radius
        assert main.radius <= cy <= size - main.radius
        for o in objs:
            assert 0 <= o.center[0] <= size and 0 <= o.center[1] <= size


COLOURS_INDEX = {name: i for i, name in enumerate(COLOURS)}


def test_scene_variety():
    counts = [len(generate_scene(i, "train")["objects"]) for i in range(300)]
    assert set(counts) == {1, 2, 3}


def test_mask_agrees_with_image():
    for i in range(60):
        s = generate_scene(i, "test")
        image, mask, objs = s["image"], s["mask"], s["objects"]
        size = image.shape[0]
        # Re-paint the object masks in drawing order: must equal the returned mask.
        expected = np.zeros((size, size), dtype=np.uint8)
        for o in objs:
            expected[shapes.object_mask(o, size)] = o.mask_class
        np.testing.assert_array_equal(mask, expected)
        # The main object is fully visible, labelled with its class, and has its colour.
        main = objs[-1]
        region = shapes.object_mask(main, size)
        assert region.sum() > 0.06 * size * size
        assert np.all(mask[region] == 1 + SHAPES.index(main.shape))
        mean = image[region].astype(np.float64).mean(axis=0)
        assert np.all(np.abs(mean - np.asarray(COLOURS[main.colour])) < 50), (mean, main.colour)
        # Nearest palette colour of the main region is the main object's colour.
        palette = np.asarray(list(COLOURS.values()), dtype=np.float64)
        nearest = list(COLOURS)[int(np.argmin(((palette - mean) ** 2).sum(axis=1)))]
        assert nearest == main.colour
        # Object pixels are not all one exact value (jitter + noise).
        assert image[region].std() > 1.0
        # Background pixels are not palette coloured: low chroma.
        bg = image[mask == 0].astype(np.int32)
        chroma = bg.max(axis=1) - bg.min(axis=1)
        assert np.median(chroma) < 40
        assert bg.std() > 2.0  # noisy / textured


def test_background_is_textured_and_not_constant():
    s = generate_scene(0, "train")
    bg = s["image"][s["mask"] == 0]
    assert len(np.unique(bg.reshape(-1, 3), axis=0)) > 50


def test_captions():
    for i in range(150):
        s = generate_scene(i, "validation")
        caps = s["captions"]
        main = s["objects"][-1]
        assert len(caps) >= 3
        assert len(set(caps)) == len(caps)
        for c in caps:
            assert CAPTION_RE.match(c), repr(c)
            assert c == c.strip() and "  " not in c
            assert main.colour in c.split() and main.shape in c.split(), (c, main)
        if len(s["objects"]) > 1:
            relations = ("left of", "right of", "above", "below")
            assert any(any(r in c for r in relations) for c in caps)
            assert any("small" in c.split() for c in caps)
        else:
            positions = ("top", "bottom", "left", "right", "center")
            assert any(any(p in c.split() for p in positions) for c in caps)
        assert any(w in c.split() for c in caps for w in ("large", "big"))


def test_describe_relations_and_positions():
    big = ShapeObject("circle", "red", "large", (20.0, 32.0), 16.0)
    small = ShapeObject("square", "blue", "small", (52.0, 30.0), 7.0)
    caps = describe([small, big])
    assert len(caps) >= 3 and len(set(caps)) == len(caps)
    joined = " | ".join(caps)
    assert "red circle to the left of a small blue square" in joined
    assert "small blue square to the right of a" in joined
    below = ShapeObject("triangle", "green", "small", (20.0, 58.0), 6.0)
    joined = " | ".join(describe([below, big]))
    assert "red circle above a small green triangle" in joined
    alone = ShapeObject("cross", "yellow", "large", (16.0, 14.0), 15.0)
    caps = describe([alone], image_size=64)
    assert any("in the top left" in c for c in caps)
    centre = ShapeObject("cross", "yellow", "large", (32.0, 32.0), 15.0)
    assert any("in the center" in c for c in describe([centre], image_size=64))
    # With an rng it is deterministic.
    a = describe([small, big], rng=np.random.default_rng(1))
    b = describe([small, big], rng=np.random.default_rng(1))
    assert a == b


@pytest.mark.parametrize("size", [16, 32, 96])
def test_image_size_scaling(size):
    d = generate_arrays("train", 10, image_size=size)
    assert d["image"].shape == (10, size, size, 3)
    assert d["mask"].shape == (10, size, size)
    for i in range(10):
        s = generate_scene(i, "train", image_size=size)
        np.testing.assert_array_equal(s["image"], d["image"][i])
        main = s["objects"][-1]
        assert 0.2 * size <= main.radius <= 0.32 * size
        # The main object covers a sizeable, size-proportional part of the image.
        frac = (s["mask"] == main.mask_class).mean()
        assert frac > 0.05
    # Same index gives the same scene layout (labels) at any size.
    base = generate_arrays("train", 10, image_size=64)
    np.testing.assert_array_equal(d["label"], base["label"])


def test_shapes_distinguishable_at_32():
    # Each kind of large object has a distinct fill ratio of its bounding box.
    fills = {k: [] for k in SHAPES}
    for i in range(120):
        s = generate_scene(i, "train", image_size=32)
        main = s["objects"][-1]
        area = shapes.object_mask(main, 32).sum()
        fills[main.shape].append(area / (2 * main.radius) ** 2)
    means = {k: float(np.mean(v)) for k, v in fills.items()}
    ordered = sorted(means.values())
    assert min(b - a for a, b in zip(ordered, ordered[1:])) > 0.05, means


@pytest.mark.parametrize(
    "kwargs",
    [
        {"index": 0, "split": "training"},
        {"index": 0, "split": "val"},
        {"index": -1, "split": "train"},
        {"index": 0, "split": "train", "image_size": 8},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        generate_scene(**kwargs)


def test_bad_arguments_raise_arrays():
    with pytest.raises(ValueError, match="split"):
        generate_arrays("dev", 3)
    with pytest.raises(ValueError):
        generate_arrays("train", 3, start=-2)
    with pytest.raises(ValueError):
        generate_arrays("train", -1)


def test_class_balance(train_batch):
    counts = np.bincount(train_batch["label"], minlength=len(CLASS_NAMES))
    assert counts.shape == (24,)
    assert np.all(counts > 0), counts
    # Roughly uniform: 100 expected per class.
    assert counts.min() > 40 and counts.max() < 180, counts
    # Every mask class occurs.
    assert set(np.unique(train_batch["mask"][:200])) == set(range(len(MASK_CLASS_NAMES)))
