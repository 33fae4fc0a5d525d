"""A judge for generated ``shapes`` images: does the picture show what the caption says?

The judge is a small CNN trained on real ``shapes`` images (their object lists
are the labels). It reads the large main object's colour (6), shape (4) and
rough position (a 3x3 grid: the caption generator's "top left" ... "bottom
right"). It does not read the small objects: after its strided first layer they
are 2-3 pixels wide, and a judge that reads them reliably needed more training
than a 12-minute run can spend (a 24-way multi-label head stayed at 0% after 6
epochs). A caption's facts are parsed from its words, so any caption in the
``shapes`` language can be judged, not only the generator's own.

It is trained once per process and seed (about half a minute on 2 CPU cores)
and kept in memory: evaluation needs no extra files in the workdir, and the
same seed always gives the same judge.

Example::

    judge = train_judge(seed=0, image_size=64)
    facts = caption_facts("a large red circle to the left of a small blue square")
    reading = judge.read(images_uint8)          # dict of predictions
    judged = check_facts([facts], reading)     # {"main": [True], "all": [True], ...}
"""

from __future__ import annotations

import re

import keras
import numpy as np

from kerasapps.api import frechet_distance, shapes  # noqa: F401 (frechet_distance: kept importable from here)

COLOURS = tuple(shapes.COLOURS)
SHAPES = shapes.SHAPES
CELLS = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")
# The caption generator's position phrases -> 3x3 cell index (row * 3 + column).
_POSITIONS = {
    "in the top left": 0, "at the top": 1, "in the top right": 2,
    "on the left": 3, "in the center": 4, "on the right": 5,
    "in the bottom left": 6, "at the bottom": 7, "in the bottom right": 8,
}
_OBJECT = re.compile(r"\b(?:(large|big|small)\s+)?(" + "|".join(COLOURS) + r")\s+(" + "|".join(SHAPES) + r")\b")
_POSITION = re.compile("|".join(re.escape(p) for p in sorted(_POSITIONS, key=len, reverse=True)))


def caption_facts(caption: str) -> dict | None:
    """What a caption states: main colour/shape ids, position cell (or None), small objects' class ids
    (parsed, but not judged: see the module docstring).

    The main object is the one called large/big, else the first one named; any
    other named object is a small one. None if the caption names no object.
    """
    text = " ".join(re.sub(r"[^a-z\s]", " ", caption.lower()).split())
    objects = [(size, COLOURS.index(colour), SHAPES.index(shape)) for size, colour, shape in _OBJECT.findall(text)]
    if not objects:
        return None
    main = next((o for o in objects if o[0] in ("large", "big")), objects[0])
    smalls = [o for o in objects if o is not main]
    position = _POSITION.search(text)
    return {
        "colour": main[1],
        "shape": main[2],
        "cell": _POSITIONS[position.group(0)] if position and not smalls else None,
        "small": [colour * len(SHAPES) + shape for _, colour, shape in smalls],
    }


def scene_labels(objects, image_size: int) -> dict:
    """Judge targets from a scene's object list (the last object is the large main one)."""
    main = objects[-1]
    third = image_size / 3.0
    col = min(int(main.center[0] // third), 2)
    row = min(int(main.center[1] // third), 2)
    return {"colour": main.colour_index, "shape": main.shape_index, "cell": row * 3 + col}


class Judge:
    """A trained judge network: ``read`` images, ``features`` for the Frechet distance."""

    def __init__(self, model: keras.Model):
        self.model = model
        self.feature_model = keras.Model(model.input, model.get_layer("features").output)

    def read(self, images) -> dict:
        """uint8/float ``[N, S, S, 3]`` in 0..255 -> the main object's colour, shape and cell ids."""
        out = self.model.predict(np.asarray(images, np.float32), batch_size=128, verbose=0)
        return {"colour": out["colour"].argmax(-1), "shape": out["shape"].argmax(-1),
                "cell": out["cell"].argmax(-1)}

    def features(self, images) -> np.ndarray:
        return self.feature_model.predict(np.asarray(images, np.float32), batch_size=128, verbose=0)


def build_judge_network(image_size: int) -> keras.Model:
    image = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(image)
    # A strided 5x5 first layer: cheap on CPU, and colours and large shapes survive it.
    x = keras.layers.Conv2D(24, 5, strides=2, padding="same", use_bias=False, name="conv1")(x)
    x = keras.layers.ReLU(name="relu1")(keras.layers.BatchNormalization(name="bn1")(x))
    for i, filters in enumerate((48, 64, 96), start=2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    # Flatten, not global pooling: the judge must know where things are.
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="features")(x)
    heads = {
        "colour": keras.layers.Dense(len(COLOURS), name="colour")(x),
        "shape": keras.layers.Dense(len(SHAPES), name="shape")(x),
        "cell": keras.layers.Dense(len(CELLS), name="cell")(x),
    }
    return keras.Model(image, heads, name="judge")


_JUDGES: dict = {}


def train_judge(seed: int = 0, image_size: int = 64, examples: int = 4000, epochs: int = 4) -> Judge:
    """Train (or reuse, within this process) the judge on real ``shapes`` training images."""
    key = (seed, image_size, examples, epochs)
    if key in _JUDGES:
        return _JUDGES[key]
    images, labels = [], {"colour": [], "shape": [], "cell": []}
    for i in range(examples):
        scene = shapes.generate_scene(i, "train", seed=seed, image_size=image_size)
        images.append(scene["image"])
        for k, v in scene_labels(scene["objects"], image_size).items():
            labels[k].append(v)
    images = np.stack(images).astype(np.float32)
    labels = {k: np.stack(v) for k, v in labels.items()}
    # A fixed seed, and built outside any strategy scope (evaluation runs outside it):
    # the judge is the same whatever strategy trained the GAN.
    keras.utils.set_random_seed(seed + 1)
    model = build_judge_network(image_size)
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(2e-3),
                  loss={"colour": sparse, "shape": sparse, "cell": sparse})
    model.fit(images, labels, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    judge = Judge(model)
    _JUDGES[key] = judge
    return judge


def check_facts(facts: list, reading: dict) -> dict:
    """Per caption: is each stated fact what the judge reads in the matching image?

    Returns boolean arrays ``main`` (colour and shape), ``colour``, ``shape``,
    ``all`` (main and, where stated, position), ``position`` (with its mask
    ``has_position``) and ``valid`` (the caption names an object).
    """
    n = len(facts)
    out = {k: np.zeros(n, bool) for k in ("colour", "shape", "main", "position", "all", "has_position", "valid")}
    for i, f in enumerate(facts):
        if f is None:
            continue
        out["valid"][i] = True
        out["colour"][i] = reading["colour"][i] == f["colour"]
        out["shape"][i] = reading["shape"][i] == f["shape"]
        out["main"][i] = out["colour"][i] and out["shape"][i]
        ok = out["main"][i]
        if f["cell"] is not None:
            out["has_position"][i] = True
            out["position"][i] = reading["cell"][i] == f["cell"]
            ok = ok and out["position"][i]
        out["all"][i] = ok
    return out


def summarize(judged: dict, prefix: str = "") -> dict:
    """Rates of :func:`check_facts` results (each over the captions that state the fact)."""
    def rate(key, mask):
        return float(judged[key][mask].mean()) if mask.any() else float("nan")

    valid = judged["valid"]
    return {
        f"{prefix}semantic_accuracy": rate("main", valid),
        f"{prefix}all_facts_accuracy": rate("all", valid),
        f"{prefix}colour_accuracy": rate("colour", valid),
        f"{prefix}shape_accuracy": rate("shape", valid),
        f"{prefix}position_accuracy": rate("position", judged["has_position"]),
    }
