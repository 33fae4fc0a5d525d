"""What a task's model offers an attacker: which input is the image, its pixel range, the loss
to climb and the metric to report. A task says it with ``Task.attack_surface(model)``; the
default (:func:`default_attack_surface`) reads it from the compiled model. No TensorFlow here.

Example (a task whose model takes an image and a caption prefix, attacked on the image)::

    def attack_surface(self, model):
        return AttackSurface(input_name="image", score="accuracy", class_names=self.info["words"])
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

from kerasapps.errors import UsageError


@dataclasses.dataclass(frozen=True)
class AttackSurface:
    """What to attack and what to score (the answer of ``Task.attack_surface``).

    Fields:
        input_name: the image input of a model with several (its inputs are then a dict);
            None: the model's only input.
        pixel_range: the image's valid values, in the model's input units ((0, 255): pixels).
        loss: ``loss(model, inputs, labels) -> scalar`` the attack climbs; None: the model's
            compiled loss (``model.compute_loss``).
        score: the metric the report and plot lead with (a compiled metric's name); None: the
            task's monitor without ``val_``.
        higher_is_better: whether a larger ``score`` is better (accuracy, mIoU).
        class_names: names of the output classes, for the panels' captions (None: their ids).
        colours: RGB colour per class, for dense (per-pixel) predictions in the panels.

    Example::

        AttackSurface(pixel_range=(0.0, 1.0), score="mean_iou")
    """

    input_name: Optional[str] = None
    pixel_range: tuple = (0.0, 255.0)
    loss: Optional[Callable] = None
    score: Optional[str] = None
    higher_is_better: bool = True
    class_names: Optional[Sequence[str]] = None
    colours: Optional[Sequence[Sequence[int]]] = None


class NotAttackable(UsageError):
    """A run whose model cannot be attacked (why is the message)."""


def default_attack_surface(task, model) -> AttackSurface:
    """The surface of a compiled Keras model with one float image input (rank 4) and a loss:
    pixels in 0..255 (kerasapps' image models rescale inside), the compiled loss, the task's
    monitor as the score, ``task.info["class_names"]``/``["colours"]`` for the panels.

    Example::

        surface = default_attack_surface(task, model)   # in Task.attack_surface

    Returns an :class:`AttackSurface`; raises :class:`NotAttackable` naming why otherwise.
    """
    why = f"task {task.name!r} cannot be attacked"
    hint = "; a task opts in by overriding Task.attack_surface (see docs/adversarial.md)"
    try:
        inputs = list(model.inputs or ())
    except (AttributeError, ValueError):
        inputs = []
    if not inputs:
        raise NotAttackable(f"{why}: its model ({type(model).__name__}) has no inputs to perturb "
                            f"(a model without call(), such as a GAN's){hint}")
    if len(inputs) > 1:
        names = ", ".join(sorted(getattr(t, "name", "?") for t in inputs))
        raise NotAttackable(f"{why}: its model takes {len(inputs)} inputs ({names}) and the task does not say "
                            f"which one is the image{hint}")
    shape, dtype = tuple(inputs[0].shape), str(inputs[0].dtype)
    if len(shape) != 4 or "float" not in dtype:
        raise NotAttackable(f"{why}: its model's input is {dtype} {list(shape)}, not a batch of images "
                            f"(float, [N, H, W, C]){hint}")
    if getattr(model, "loss", None) is None:
        raise NotAttackable(f"{why}: its model has no compiled loss to climb{hint}")
    monitor = task.monitor or "loss"
    return AttackSurface(
        score=monitor[4:] if monitor.startswith("val_") else monitor,
        higher_is_better=task.monitor is not None and task.monitor_mode == "max",
        class_names=task.info.get("class_names"),
        colours=task.info.get("colours"),
    )


__all__ = ["AttackSurface", "NotAttackable", "default_attack_surface"]
