"""Scoring a trained model under attack: the loop under the run's strategy, the report, the
plot (score vs epsilon, one line per attack) and the panels (clean | perturbation | adversarial).

The attacked batches go through the model's own ``test_step``, so the figures are the task's
compiled metrics (accuracy, mIoU ...) exactly as ``kerasapps evaluate`` measures them, on
adversarial inputs.

Example::

    meter = RobustnessMeter(model, strategy, surface, settings)
    clean = meter.measure(test, attack=None, epsilon=0.0)
    fgsm_at_8 = meter.measure(test, attack="fgsm", epsilon=8 / 255)   # {"metrics": ..., "seconds": ...}
"""

from __future__ import annotations

import io
import time

import keras
import numpy as np
import tensorflow as tf

from kerasapps.adversarial.attacks import fgsm, pgd
from kerasapps.adversarial.settings import AttackSettings
from kerasapps.adversarial.surface import AttackSurface
from kerasapps.errors import UsageError
from kerasapps.training.engine import shard_by_data

# Under a working white-box attack at the check's epsilon the score falls below this share of the clean
# one, or below the floor (about 0: a model near chance already has little to lose).
MASKING_SHARE, MASKING_FLOOR = 0.1, 0.05


def resolve_target(target: str | None, surface: AttackSurface) -> int | None:
    """``--target``: a class id or one of ``surface.class_names``.

    Returns the class id, or None for an untargeted attack.
    """
    if target is None:
        return None
    names = list(surface.class_names or ())
    if target in names:
        return names.index(target)
    try:
        class_id = int(target)
    except ValueError:
        known = f"; classes: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}" if names else ""
        raise UsageError(f"--target: {target!r} is not a class id or name{known}") from None
    if class_id < 0 or (names and class_id >= len(names)):
        raise UsageError(f"--target: class {class_id} does not exist (0..{len(names) - 1})")
    return class_id


class RobustnessMeter:
    """Measures a compiled model's metrics on adversarial versions of a dataset, under ``strategy``.

    Args:
        model: the trained, compiled model (built inside ``strategy.scope()``, its metrics built).
        strategy: the run's ``tf.distribute.Strategy``.
        surface: what to attack and score (``Task.attack_surface``).
        settings: the attacks' parameters.
        target: a class id for a targeted attack (None: untargeted).
    """

    def __init__(self, model, strategy, surface: AttackSurface, settings: AttackSettings, target: int | None = None):
        self.model, self.strategy, self.surface, self.settings, self.target = model, strategy, surface, settings, target
        low, high = surface.pixel_range
        self.span = float(high) - float(low)
        self._functions, self._warm, self._examples = {}, set(), {}
        with strategy.scope():
            self.target_hits = keras.metrics.Mean(name="target_rate") if target is not None else None

    # -- graph code ------------------------------------------------------------
    def _loss(self, inputs, labels):
        if self.surface.loss is not None:
            return self.surface.loss(self.model, inputs, labels)
        return self.model.compute_loss(x=inputs, y=labels, y_pred=self.model(inputs, training=False), training=False)

    def _image(self, inputs):
        return inputs if self.surface.input_name is None else inputs[self.surface.input_name]

    def _with_image(self, inputs, image):
        return image if self.surface.input_name is None else {**inputs, self.surface.input_name: image}

    def perturb(self, attack: str | None, inputs, labels, epsilon, step_size=None):
        """The adversarial version of one batch (``epsilon``, ``step_size`` in input units).

        Returns ``inputs`` with the image replaced (unchanged for ``attack=None``).
        """
        if attack is None:
            return inputs
        image = tf.cast(self._image(inputs), tf.float32)
        targeted = self.target is not None
        goal = tf.fill(tf.shape(labels), tf.cast(self.target, labels.dtype)) if targeted else labels

        def loss_of(candidate, goal):
            return self._loss(self._with_image(inputs, candidate), goal)

        if attack == "fgsm":
            adversarial = fgsm(loss_of, image, goal, epsilon, self.surface.pixel_range, targeted=targeted)
        else:
            adversarial = pgd(loss_of, image, goal, epsilon, self.settings.steps, step_size, self.surface.pixel_range,
                              targeted=targeted, seed=self.settings.seed)
        return self._with_image(inputs, adversarial)

    def _replica_step(self, attack, batch, epsilon, step_size):
        inputs, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        adversarial = self.perturb(attack, inputs, labels, epsilon, step_size)
        self.model.test_step(keras.utils.pack_x_y_sample_weight(adversarial, labels, sample_weight))
        if self.target_hits is not None:
            scores = self.model(adversarial, training=False)
            if scores.shape.rank == labels.shape.rank + 1:
                hits = tf.equal(tf.argmax(scores, axis=-1, output_type=tf.int32), self.target)
                self.target_hits.update_state(tf.cast(hits, tf.float32))

    def _function(self, attack):
        if attack not in self._functions:
            @tf.function(reduce_retracing=True)
            def run(batch, epsilon, step_size):
                self.strategy.run(lambda b, e, s: self._replica_step(attack, b, e, s), args=(batch, epsilon, step_size))

            self._functions[attack] = run
        return self._functions[attack]

    # -- measuring ---------------------------------------------------------------
    def measure(self, dataset, attack: str | None, epsilon: float) -> dict:
        """One pass over ``dataset`` (batched ``(inputs, labels)``) under ``attack`` at ``epsilon``
        (a fraction of the pixel range); the first call of an attack is traced on one batch first,
        so that ``seconds`` is the attack's own time.

        Returns ``{"metrics": {...}, "score": float, "examples": n, "seconds": s, "examples_per_second": r}``.
        """
        step = self.settings.step_size if self.settings.step_size is not None else 2.5 * epsilon / self.settings.steps
        arguments = (tf.constant(epsilon * self.span, tf.float32), tf.constant(step * self.span, tf.float32))
        function = self._function(attack)
        distributed = self.strategy.experimental_distribute_dataset(shard_by_data(dataset))
        if attack not in self._warm:
            function(next(iter(distributed)), *arguments)
            self._warm.add(attack)
        self.model.reset_metrics()
        if self.target_hits is not None:
            self.target_hits.reset_state()
        started = time.perf_counter()
        for batch in distributed:
            function(batch, *arguments)
        results = {k: float(v) for k, v in self.model.get_metrics_result().items()}
        seconds = time.perf_counter() - started
        if self.target_hits is not None:
            results["target_rate"] = float(self.target_hits.result())
        if self.surface.score not in results:
            raise UsageError(f"the score {self.surface.score!r} is not among the model's metrics "
                             f"({', '.join(sorted(results))}); the task's attack_surface must name one")
        if id(dataset) not in self._examples:
            self._examples[id(dataset)] = count_examples(dataset)
        examples = self._examples[id(dataset)]
        return {"metrics": results, "score": results[self.surface.score], "examples": examples,
                "seconds": round(seconds, 3), "examples_per_second": round(examples / seconds, 1) if seconds else None}


def count_examples(dataset) -> int:
    """Examples in a batched dataset of ``(inputs, labels)``, counted once.

    Returns the count.
    """
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, batch: n + tf.cast(
        tf.shape(tf.nest.flatten(batch)[-1])[0], tf.int64)))


def take_examples(dataset, examples: int | None):
    """``examples`` examples spread evenly over a batched dataset (every k-th one, so that a split
    stored class by class is sampled from every class), batched the same (None: all).

    Returns a batched ``tf.data.Dataset``.
    """
    if examples is None:
        return dataset
    total = count_examples(dataset)
    if examples >= total:
        return dataset
    first = next(iter(dataset.take(1)))
    batch_size = int(tf.shape(tf.nest.flatten(first)[-1])[0])
    return dataset.unbatch().shard(total // examples, 0).take(examples).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def measure_robustness(meter: RobustnessMeter, dataset) -> dict:
    """Every attack at every epsilon of ``meter.settings``, the clean score and the gradient-masking check.

    Returns the report's figures: ``{"clean", "attacks", "gradient_masking_check", "warnings"}``.
    """
    settings, surface = meter.settings, meter.surface
    clean = meter.measure(dataset, None, 0.0)
    attacks = {}
    for attack in settings.attacks:
        rows = []
        for epsilon in settings.epsilons:
            row = meter.measure(dataset, attack, epsilon)
            rows.append({"epsilon": epsilon, "epsilon_pixels": round(epsilon * meter.span, 4), **row})
        parameters = {"norm": "linf", "targeted": meter.target is not None}
        if attack == "pgd":
            parameters.update(steps=settings.steps, random_start=True,
                              step_size=settings.step_size if settings.step_size is not None else "2.5*epsilon/steps")
        attacks[attack] = {"parameters": parameters, "results": rows}
    warnings, check = [], None
    if settings.check_epsilon is not None and surface.higher_is_better:
        strongest = "pgd" if "pgd" in settings.attacks else settings.attacks[-1]
        checked = meter.measure(dataset, strongest, settings.check_epsilon)
        passed = checked["score"] <= max(MASKING_SHARE * clean["score"], MASKING_FLOOR)
        check = {"attack": strongest, "epsilon": settings.check_epsilon,
                 "epsilon_pixels": round(settings.check_epsilon * meter.span, 4), "score": checked["score"],
                 "clean_score": clean["score"], "passed": passed}
        if not passed:
            warnings.append(
                f"gradient masking? {strongest} at epsilon {settings.check_epsilon:g} "
                f"({settings.check_epsilon * meter.span:g} of the input range) leaves {surface.score} at "
                f"{checked['score']:.4f} (clean {clean['score']:.4f}); an attack that large should take it to about 0, "
                "so the attacks may be failing (zero or useless gradients) and the figures may overstate robustness")
    elif settings.check_epsilon is not None:
        warnings.append(f"no gradient-masking check: a lower {surface.score} is better, so there is no floor to reach")
    return {"clean": clean, "attacks": attacks, "gradient_masking_check": check, "warnings": warnings}


# -- pictures (Pillow comes with TensorFlow, through TensorBoard) -----------------
PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


def _png(image) -> bytes:
    from kerasapps.data.images import encode_png

    return encode_png(np.asarray(image, np.uint8))


def plot_png(figures: dict, score: str, title: str, width: int = 640, height: int = 420) -> bytes:
    """A line plot of ``score`` against epsilon, one line per attack of ``figures["attacks"]``,
    with the clean score as a dashed line.

    Returns the PNG's bytes.
    """
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 64, width - 150, 36, height - 48
    rows = [row for attack in figures["attacks"].values() for row in attack["results"]]
    values = [row["score"] for row in rows] + [figures["clean"]["score"]]
    epsilons = [row["epsilon"] for row in rows] or [0.0]
    x_max = max(epsilons) or 1.0
    y_min, y_max = min(0.0, min(values)), max(1.0, max(values))

    def point(epsilon, value):
        return (left + (right - left) * epsilon / x_max, bottom - (bottom - top) * (value - y_min) / (y_max - y_min))

    draw.rectangle([left, top, right, bottom], outline="black")
    for i in range(6):
        value = y_min + (y_max - y_min) * i / 5
        y = point(0, value)[1]
        draw.line([left - 4, y, left, y], fill="black")
        draw.text((8, y - 6), f"{value:.2f}", fill="black")
    for i in range(5):
        epsilon = x_max * i / 4
        x = point(epsilon, y_min)[0]
        draw.line([x, bottom, x, bottom + 4], fill="black")
        draw.text((x - 14, bottom + 8), f"{epsilon:.3g}", fill="black")
    draw.text((left, bottom + 26), "epsilon (fraction of the pixel range; x255 = pixel levels)", fill="black")
    draw.text((left, 10), f"{title}: {score} under attack", fill="black")
    clean_y = point(0, figures["clean"]["score"])[1]
    for x in range(left, right, 10):
        draw.line([x, clean_y, x + 5, clean_y], fill=(120, 120, 120))
    draw.text((right + 10, top), "- - clean", fill=(120, 120, 120))
    for i, (name, attack) in enumerate(figures["attacks"].items()):
        colour = PALETTE[i % len(PALETTE)]
        points = [point(row["epsilon"], row["score"]) for row in attack["results"]]
        if len(points) > 1:
            draw.line(points, fill=colour, width=3)
        for x, y in points:
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
        steps = attack["parameters"].get("steps")
        draw.text((right + 10, top + 20 * (i + 1)), f"{name.upper()}{f'-{steps}' if steps else ''}", fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def describe_outputs(outputs, surface: AttackSurface) -> tuple[list[str], list]:
    """Captions (and, for per-pixel outputs, coloured masks) of a batch of model outputs.

    Returns ``(captions, masks)``: ``masks`` is empty unless the outputs are [N, H, W, classes].
    """
    scores = np.asarray(outputs, np.float32)
    if scores.ndim >= 2 and not np.allclose(scores.sum(axis=-1), 1.0, atol=1e-3):
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
    names = list(surface.class_names or ())
    classes = scores.argmax(axis=-1)
    if scores.ndim == 2:
        captions = [f"{names[c] if c < len(names) else c} p={scores[i, c]:.2f}" for i, c in enumerate(classes)]
        return captions, []
    if scores.ndim == 4:
        colours = np.array(list(surface.colours or PALETTE) * (1 + scores.shape[-1] // len(surface.colours or PALETTE)),
                           np.uint8)
        confidence = scores.max(axis=-1).mean(axis=(1, 2))
        return [f"mean p={p:.2f}" for p in confidence], [colours[c] for c in classes]
    return [""] * len(scores), []


def panel_png(clean, adversarial, epsilon_pixels: float, clean_caption: str, adversarial_caption: str,
              pixel_range=(0.0, 255.0), clean_mask=None, adversarial_mask=None) -> bytes:
    """One example: clean image | perturbation (amplified to the whole range) | adversarial image,
    captioned with each prediction; per-pixel predictions as a second row of masks.

    Returns the PNG's bytes.
    """
    from PIL import Image, ImageDraw

    low, high = pixel_range

    def to_rgb(image):
        image = np.asarray(image, np.float32)
        image = (image - low) / (high - low) * 255
        if image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        return np.clip(np.round(image), 0, 255).astype(np.uint8)

    delta = np.asarray(adversarial, np.float32) - np.asarray(clean, np.float32)
    amplified = 127.5 + delta / max(epsilon_pixels, 1e-12) * 127.5  # -epsilon black, 0 grey, +epsilon white
    tiles = [to_rgb(clean), to_rgb(amplified * (high - low) / 255 + low), to_rgb(adversarial)]
    scale = max(1, -(-160 // max(tiles[0].shape[:2])))  # tiles of at least 160 pixels: room for the captions
    tiles = [np.kron(tile, np.ones((scale, scale, 1), np.uint8)) for tile in tiles]
    rows = [tiles]
    if clean_mask is not None and adversarial_mask is not None:
        masks = [np.kron(np.asarray(m, np.uint8), np.ones((scale, scale, 1), np.uint8))
                 for m in (clean_mask, adversarial_mask)]
        rows.append([masks[0], np.full_like(masks[0], 255), masks[1]])
    tile_h, tile_w = tiles[0].shape[:2]
    gap, caption = 8, 48
    canvas = Image.new("RGB", (3 * tile_w + 4 * gap, len(rows) * (tile_h + gap) + caption + gap), "white")
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            canvas.paste(Image.fromarray(tile), (gap + c * (tile_w + gap), caption + r * (tile_h + gap)))
    draw = ImageDraw.Draw(canvas)
    labels = [("clean", clean_caption), (f"perturbation x{127.5 / max(epsilon_pixels, 1e-12):.3g}",
                                         f"epsilon {epsilon_pixels:g} of {low:g}..{high:g}"),
              ("adversarial", adversarial_caption)]
    width = max(8, tile_w // 6)  # characters of PIL's default font that fit over a tile
    for c, (title, text) in enumerate(labels):
        draw.text((gap + c * (tile_w + gap), 4), title[:width], fill="black")
        draw.text((gap + c * (tile_w + gap), 18), text[:width], fill=(60, 60, 60))
        if len(text) > width:
            draw.text((gap + c * (tile_w + gap), 32), text[width:2 * width], fill=(60, 60, 60))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def write_panels(meter: RobustnessMeter, dataset, directory, count: int) -> list[str]:
    """Panels for the first ``count`` examples of ``dataset``, attacked by the strongest attack at
    the largest epsilon of ``meter.settings`` (none if that is 0).

    Returns the paths written.
    """
    import pathlib

    from kerasapps.training.workdir import write_bytes_atomic

    settings, surface = meter.settings, meter.surface
    epsilon = max(settings.epsilons)
    if count == 0 or epsilon == 0:
        return []
    attack = "pgd" if "pgd" in settings.attacks else settings.attacks[0]
    inputs, labels, _ = keras.utils.unpack_x_y_sample_weight(next(iter(dataset.unbatch().batch(count))))
    step = settings.step_size if settings.step_size is not None else 2.5 * epsilon / settings.steps
    with meter.strategy.scope():
        adversarial = meter.perturb(attack, inputs, labels, tf.constant(epsilon * meter.span),
                                    tf.constant(step * meter.span))
    clean_captions, clean_masks = describe_outputs(meter.model(inputs, training=False), surface)
    adversarial_captions, adversarial_masks = describe_outputs(meter.model(adversarial, training=False), surface)
    clean_images, adversarial_images = np.asarray(meter._image(inputs)), np.asarray(meter._image(adversarial))
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(clean_images)):
        png = panel_png(clean_images[i], adversarial_images[i], epsilon * meter.span, clean_captions[i],
                        adversarial_captions[i], surface.pixel_range,
                        clean_masks[i] if clean_masks else None, adversarial_masks[i] if adversarial_masks else None)
        path = directory / f"adversarial_{i:02d}.png"
        write_bytes_atomic(path, png)
        paths.append(str(path))
    return paths


__all__ = ["RobustnessMeter", "count_examples", "describe_outputs", "measure_robustness", "panel_png", "plot_png",
           "resolve_target", "take_examples", "write_panels"]
