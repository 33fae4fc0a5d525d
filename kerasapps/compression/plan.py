"""What a task's model offers width compression: its prunable layer groups and how its config
records the kept widths. A task says it with ``Task.compression_plan(model)``; the default
(:func:`no_compression_plan`) refuses. No TensorFlow here.

Example (a chain conv1 -> pool1 -> conv2 -> pool2 -> flatten -> fc1, widths in ``filters``)::

    def compression_plan(self, model):
        return CompressionPlan(
            groups=(PrunableGroup("conv1", consumer="conv2"),
                    PrunableGroup("conv2", consumer="fc1", features="pool2")),
            config_overrides=lambda widths: {"filters": (widths["conv1"], widths["conv2"])})

A residual network's stage, whose blocks all add into the same channels through identity
shortcuts, is one :class:`PrunableStream` (its producers, where it is read and by which layers).
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

    @property
    def name(self) -> str:
        """What ``--keep NAME=F`` and the widths given to ``config_overrides`` call the group: its producer."""
        return self.producer


@dataclasses.dataclass(frozen=True)
class StreamRead:
    """One place where a :class:`PrunableStream` is read.

    Fields:
        features: the layer whose output holds the stream's channels there, as a ``[..., channels]``
            map, after every per-channel layer (a block's ReLU after its addition, a global pooling).
        consumers: the linear layers (Conv2D or Dense) that read that output, with only per-channel
            layers in between (Dropout, Flatten): all are re-fitted with the same map, from the
            covariance measured at ``features``.
    """

    features: str
    consumers: tuple


@dataclasses.dataclass(frozen=True)
class PrunableStream:
    """Channels that several producers write into the same stream and several layers read, pruned
    as one group: a residual network's stage, where identity shortcuts add every block's output to
    the channels before it, so the stem (or the stage's projection shortcut) and each block's last
    convolution must keep the very same channels.

    The kept channels minimise the sum of the criteria at every read (each divided by its
    ``tr(Sigma)``, as for tied groups); each read's consumers are re-fitted from the covariance at
    that read. A dropped channel is dropped from every producer, so the identity shortcuts carry
    only the kept ones and need no re-fit.

    Fields:
        name: what ``--keep NAME=F`` and the widths given to ``config_overrides`` call it ("stage1").
        producers: every Conv2D or Dense layer whose output channels are the stream's: each keeps
            the kept filters (kernel and bias).
        reads: the :class:`StreamRead` s, every place the stream is read by a linear layer.
        channelwise: layers holding one weight per stream channel (each producer's
            BatchNormalization): each keeps the kept entries.

    Example (a stage of two residual blocks after a stem, read by each block's first convolution,
    then by the classifier after global pooling)::

        PrunableStream("stage1", producers=("stem_conv", "block1_b_conv", "block2_b_conv"),
                       channelwise=("stem_bn", "block1_b_bn", "block2_b_bn"),
                       reads=(StreamRead("stem_relu", ("block1_a_conv",)),
                              StreamRead("block1_out", ("block2_a_conv",)),
                              StreamRead("pool", ("logits",))))
    """

    name: str
    producers: tuple
    reads: tuple
    channelwise: tuple = ()


@dataclasses.dataclass(frozen=True)
class CompressionPlan:
    """The answer of ``Task.compression_plan``: the prunable groups and the config of the narrow model.

    Fields:
        groups: the :class:`PrunableGroup` s and :class:`PrunableStream` s, each producer named
            once, each consumer re-fitted by one group. Layers left out keep their width.
        config_overrides: ``{name: kept width}`` (a group's producer, tied producers included, or a
            stream's name) -> the config fields (``--set`` keys and typed values) with which the
            task's ``build_model`` builds the narrow network, its layers named as before.

    Example::

        CompressionPlan(groups=(PrunableGroup("fc1", consumer="fc2"),),
                        config_overrides=lambda widths: {"dense_units": (widths["fc1"], 84)})
    """

    groups: tuple
    config_overrides: Callable[[dict], dict]

    def names(self) -> list:
        """The name of each group (its producer) and stream, in order: what ``--keep NAME=F`` takes."""
        return [group.name for group in self.groups]

    def tied_names(self) -> dict:
        """``{layer: the name to give --keep instead}`` for tied producers and streams' producers."""
        tied = {member.producer: group.producer for group in self.groups if isinstance(group, PrunableGroup)
                for member in group.tied}
        tied.update({producer: group.name for group in self.groups if isinstance(group, PrunableStream)
                     for producer in group.producers})
        return tied


class NotCompressible(UsageError):
    """A run whose model cannot be width-compressed (why is the message)."""


def no_compression_plan(task, model=None) -> CompressionPlan:
    """The default ``Task.compression_plan``: a one-line refusal (:class:`NotCompressible`).

    Example::

        no_compression_plan(task)   # raises NotCompressible("task 'fake' cannot be compressed: ...")
    """
    raise NotCompressible(f"task {task.name!r} cannot be compressed: it names no prunable layer groups (a task "
                          "opts in by overriding Task.compression_plan; see docs/compression.md)")


__all__ = ["CompressionPlan", "NotCompressible", "PrunableGroup", "PrunableStream", "StreamRead",
           "no_compression_plan"]
