"""What a task's model offers width compression: its prunable layer groups and how its config
records the kept widths. A task says it with ``Task.compression_plan(model)``; the default
(:func:`no_compression_plan`) refuses. No TensorFlow here.

Example (a chain conv1 -> pool1 -> conv2 -> pool2 -> flatten -> fc1, widths in ``filters``)::

    def compression_plan(self, model):
        return CompressionPlan(
            groups=(PrunableGroup("conv1", consumer="conv2"),
                    PrunableGroup("conv2", consumer="fc1", features="pool2")),
            config_overrides=lambda widths: {"filters": (widths["conv1"], widths["conv2"])})
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from kerasapps.errors import UsageError


@dataclasses.dataclass(frozen=True)
class PrunableGroup:
    """One layer whose output channels can be pruned, and the layers that must follow suit.

    Fields:
        producer: the Conv2D or Dense layer whose filters (last kernel axis) are pruned.
        consumer: the next linear layer (Conv2D or Dense) reading those channels, re-fitted to the
            kept ones. It may be the producer of another group.
        channelwise: layers between the two that hold one weight per channel
            (BatchNormalization): each of their weights keeps the kept channels. Layers without
            weights that act per channel (ReLU, max-pooling, Flatten, Dropout) need no mention.
        features: the layer whose output is what the consumer reads, as a ``[..., channels]``
            map (the pooling before a ``Flatten``); None: the consumer's own input. Its
            covariance is measured there, after every per-channel layer in between.
        tied: further groups whose producers must keep the same channels as this one, channel
            for channel (SegNet: the decoder layer whose output is unpooled with this encoder's
            pooling indices). The channels are chosen for all of them together; each consumer
            is re-fitted from its own features.
    """

    producer: str
    consumer: str
    channelwise: tuple = ()
    features: Optional[str] = None
    tied: tuple = ()

    def members(self) -> tuple:
        """This group and its tied ones, this one first."""
        return (self, *self.tied)


@dataclasses.dataclass(frozen=True)
class CompressionPlan:
    """The answer of ``Task.compression_plan``: the prunable groups and the config of the narrow model.

    Fields:
        groups: the :class:`PrunableGroup` s, each producer named once. Layers left out keep
            their width (e.g. a residual block's output, which the shortcut must match).
        config_overrides: ``{producer: kept width}`` (tied producers included) -> the config fields (``--set`` keys and
            typed values) with which the task's ``build_model`` builds the narrow network,
            its layers named as before.

    Example::

        CompressionPlan(groups=(PrunableGroup("fc1", consumer="fc2"),),
                        config_overrides=lambda widths: {"dense_units": (widths["fc1"], 84)})
    """

    groups: tuple
    config_overrides: Callable[[dict], dict]


class NotCompressible(UsageError):
    """A run whose model cannot be width-compressed (why is the message)."""


def no_compression_plan(task, model=None) -> CompressionPlan:
    """The default ``Task.compression_plan``: a one-line refusal (:class:`NotCompressible`).

    Example::

        no_compression_plan(task)   # raises NotCompressible("task 'fake' cannot be compressed: ...")
    """
    raise NotCompressible(f"task {task.name!r} cannot be compressed: it names no prunable layer groups (a task "
                          "opts in by overriding Task.compression_plan; see docs/compression.md)")


__all__ = ["CompressionPlan", "NotCompressible", "PrunableGroup", "no_compression_plan"]
