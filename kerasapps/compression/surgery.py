"""The Keras side of width compression: check a plan against the model, measure each group's
feature covariance on sample data, choose the kept channels, and move the (re-fitted) weights into
the narrow model the task builds, optionally re-estimating its BatchNormalization statistics.
Also counts parameters and multiply-adds.

Example::

    covariances = measure_feature_covariances(model, plan, train_batches, samples=2000)
    choices = choose_channels(model, plan, covariances, keep=0.5, method="spectral")
    narrow = task_with_narrow_config.build_model()
    transfer_weights(model, narrow, narrow_weights(model, plan, choices))
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import keras
import numpy as np

from kerasapps.compression.plan import CompressionPlan, PrunableStream
from kerasapps.compression.spectral import (METHODS, FeatureCovariance, joint_spectral_selection, kept_width,
                                            l1_selection, random_selection, reconstruction_map, refit_consumer_kernel,
                                            selection_map, spectral_selection)

LINEAR_LAYERS = (keras.layers.Conv2D, keras.layers.Dense)


@dataclasses.dataclass
class ChannelChoice:
    """One group's outcome: the kept channels of its producer and the ``[C, k]`` map the consumer
    is re-fitted with (the least-squares reconstruction, or a plain selection for the baselines).
    A stream's: its name as ``producer``, no single ``mapping`` but one per read in ``read_fits``."""

    producer: str
    channels: int
    kept: np.ndarray
    mapping: Optional[np.ndarray]
    relative_error: float  # L(J) / tr(Sigma): the share of the features' energy not reconstructed (a stream: mean)
    read_fits: dict = dataclasses.field(default_factory=dict)  # a stream: {features: (mapping, relative_error)}

    @property
    def width(self) -> int:
        return len(self.kept)


def check_plan(model, plan: CompressionPlan) -> None:
    """ValueError naming what in ``plan`` does not fit ``model`` (a plugin's mistake)."""
    names = {layer.name for layer in model.layers}
    streams = plan_streams(plan)
    producers = [group.producer for group in flat_groups(plan)] + [p for s in streams for p in s.producers]
    if len(set(producers)) != len(producers):
        raise ValueError("compression_plan names a producer twice")
    consumers = [group.consumer for group in flat_groups(plan)] + [c for s in streams for c in _consumers(s)]
    if len(set(consumers)) != len(consumers):
        raise ValueError("compression_plan re-fits a consumer in two groups")
    keys = plan.names() + [member.producer for group in flat_groups(plan) for member in group.tied] + [
        read.features for stream in streams for read in stream.reads]
    if len(set(keys)) != len(keys):
        raise ValueError("compression_plan: a group, stream or stream read is named twice")
    roles = [(role, name) for group in flat_groups(plan)
             for role, name in [("producer", group.producer), ("consumer", group.consumer),
                                *[("channelwise", n) for n in group.channelwise],
                                *([("features", group.features)] if group.features else [])]]
    for stream in streams:
        if not stream.reads:
            raise ValueError(f"compression_plan: stream {stream.name!r} is read nowhere")
        roles += [*[("producer", n) for n in stream.producers], *[("consumer", n) for n in _consumers(stream)],
                  *[("channelwise", n) for n in stream.channelwise],
                  *[("features", read.features) for read in stream.reads]]
    for role, name in roles:
        if name not in names:
            raise ValueError(f"compression_plan: {role} layer {name!r} is not in the model")
        layer = model.get_layer(name)
        if role in ("producer", "consumer") and (not isinstance(layer, LINEAR_LAYERS)
                                                 or getattr(layer, "groups", 1) != 1):
            raise ValueError(f"compression_plan: {role} {layer.name!r} is a {type(layer).__name__}, "
                             "not a Conv2D or Dense layer")
    for stream in streams:
        widths = {model.get_layer(name).kernel.shape[-1] for name in stream.producers}
        if len(widths) != 1:
            raise ValueError(f"compression_plan: the producers of stream {stream.name!r} do not all have the same "
                             f"width ({sorted(widths)})")


def flat_groups(plan: CompressionPlan) -> list:
    """Every :class:`PrunableGroup` of ``plan``, tied ones included, each producer once (streams apart)."""
    return [member for group in plan.groups if not isinstance(group, PrunableStream) for member in group.members()]


def plan_streams(plan: CompressionPlan) -> list:
    """The :class:`PrunableStream` s of ``plan``."""
    return [group for group in plan.groups if isinstance(group, PrunableStream)]


def _consumers(stream) -> list:
    return [consumer for read in stream.reads for consumer in read.consumers]


def _feature_tensor(model, group):
    if group.features:
        return model.get_layer(group.features).output
    return model.get_layer(group.consumer).input


def measure_feature_covariances(model, plan: CompressionPlan, dataset, samples: int) -> dict:
    """Each group's uncentred feature covariance (at what its consumer reads), and a stream's at
    each of its reads, over the first ``samples`` examples of ``dataset`` (batched ``(inputs,
    targets)``); every spatial position of a feature map is one sample.

    Returns ``{producer: FeatureCovariance}``, and ``{features: FeatureCovariance}`` for each read
    of a stream.
    """
    points = [(group.producer, _feature_tensor(model, group)) for group in flat_groups(plan)]
    points += [(read.features, model.get_layer(read.features).output)
               for stream in plan_streams(plan) for read in stream.reads]
    probe = keras.Model(model.inputs, [tensor for _, tensor in points])
    stats = {key: None for key, _ in points}
    for inputs in _first_examples(dataset, samples):
        outputs = probe(inputs, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for (key, _), features in zip(points, outputs):
            features = keras.ops.convert_to_numpy(keras.ops.cast(features, "float32"))
            if stats[key] is None:
                stats[key] = FeatureCovariance(features.shape[-1])
            stats[key].update(features)
    return stats


def _first_examples(dataset, samples: int):
    """The inputs of the first ``samples`` examples of ``dataset`` (batched ``(inputs, targets)``),
    batch by batch, the last one cut short; ValueError if there are none."""
    seen = 0
    for batch in dataset:
        inputs, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        rows = int(keras.ops.shape(keras.tree.flatten(inputs)[0])[0])
        take = min(rows, samples - seen)
        if take < rows:
            inputs = keras.tree.map_structure(lambda t: t[:take], inputs)
        yield inputs
        seen += take
        if seen >= samples:
            break
    if not seen:
        raise ValueError("the dataset to measure the features on is empty")


def recalibrate_batch_normalization(model, dataset, samples: int) -> int:
    """Re-estimate the moving mean and variance of every BatchNormalization layer of ``model``
    (nested models included) on the first ``samples`` examples of ``dataset``: the average of their
    batch statistics, the model run in training mode, no weight changed.

    Why: a re-fitted consumer's output lacks the share of the features' energy that the kept
    channels do not reconstruct, so the statistics the BatchNormalization after it learnt on the
    original network are stale, and in a deep network the mismatch compounds layer after layer.

    Returns how many layers were recalibrated.

    Example::

        transfer_weights(model, narrow, narrow_weights(model, plan, choices))
        recalibrate_batch_normalization(narrow, train_batches, samples=2000)
    """
    layers = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    try:
        for count, inputs in enumerate(_first_examples(dataset, samples) if layers else (), start=1):
            for layer in layers:  # moving = momentum * moving + (1 - momentum) * batch: a running average
                layer.momentum = (count - 1) / count
            model(inputs, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return len(layers)


def _all_layers(model) -> list:
    return [inner for layer in model.layers
            for inner in (_all_layers(layer) if isinstance(layer, keras.Model) else [layer])]


def choose_channels(model, plan: CompressionPlan, covariances: dict, keep, method: str = "spectral",
                    ridge: float = 1e-4, seed: int = 0) -> dict:
    """The kept channels of every group at ``keep`` (a fraction, or ``{name: fraction}``, a group
    named by its producer, a stream by its name) by ``method``: "spectral" (greedy selection,
    least-squares re-fit), "l1" (largest-L1 filters, consumer drops the rest) or "random" (consumer
    drops the rest). Tied groups and a stream's reads share one selection (their criteria summed;
    the L1 norms of all their producers' filters summed).

    Returns ``{producer: ChannelChoice}``, a stream's under its name.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    choices = {}
    for index, group in enumerate(plan.groups):
        is_stream = isinstance(group, PrunableStream)
        # where the kept channels are read: each tied producer's consumer, or each read of a stream
        points = [read.features for read in group.reads] if is_stream else [m.producer for m in group.members()]
        producers = group.producers if is_stream else [m.producer for m in group.members()]
        sigmas = [covariances[point].covariance for point in points]
        channels = sigmas[0].shape[0]
        if any(sigma.shape[0] != channels for sigma in sigmas):
            raise ValueError(f"compression_plan: the layers tied to {group.name!r} do not all have "
                             f"{channels} channels")
        fraction = keep[group.name] if isinstance(keep, dict) else keep
        k = kept_width(channels, fraction)
        if method == "spectral":
            kept = spectral_selection(sigmas[0], k, ridge) if len(sigmas) == 1 else \
                joint_spectral_selection(sigmas, k, ridge)
        elif method == "l1":  # tied producers: the filters' L1 norms summed over them
            kernels = [keras.ops.convert_to_numpy(model.get_layer(name).kernel) for name in producers]
            kept = l1_selection(np.concatenate([kernel.reshape(-1, channels) for kernel in kernels]), k)
        else:
            kept = random_selection(channels, k, seed=seed + index)
        fits = {}
        for point, sigma in zip(points, sigmas):
            mapping = reconstruction_map(sigma, kept, ridge) if method == "spectral" else selection_map(channels, kept)
            # the error of what the consumer will read: the re-fit map, or zeros for dropped channels
            error = _mapped_error(sigma, kept, mapping)
            fits[point] = (mapping, error / max(float(np.trace(sigma)), 1e-30))
        if is_stream:
            choices[group.name] = ChannelChoice(group.name, channels, kept, None,
                                                float(np.mean([share for _, share in fits.values()])), fits)
        else:
            choices.update({point: ChannelChoice(point, channels, kept, *fit) for point, fit in fits.items()})
    return choices


def _mapped_error(sigma, kept, mapping) -> float:
    """``E||phi - A phi_J||^2`` from the covariance: tr(S) - 2 tr(A S_JF) + tr(A S_JJ A^T)."""
    cross = sigma[kept, :]
    return float(np.trace(sigma) - 2 * np.trace(mapping @ cross) + np.trace(mapping @ sigma[np.ix_(kept, kept)]
                                                                          @ mapping.T))


def narrow_weights(model, plan: CompressionPlan, choices: dict) -> dict:
    """The new weights of every layer the plan touches: producers keep their kept filters (kernel
    and bias), channel-wise layers their kept entries, consumers get ``W' = A^T W`` on their input
    channels (and keep their own kept filters when they are producers too); a stream's consumers
    each get the map of the read they read.

    Returns ``{layer name: [numpy weights in get_weights() order]}``.
    """
    weights = {}

    def current(name):
        if name not in weights:
            weights[name] = [np.asarray(w) for w in model.get_layer(name).get_weights()]
        return weights[name]

    groups, streams = flat_groups(plan), plan_streams(plan)
    refits = [(group.consumer, choices[group.producer].mapping) for group in groups]
    refits += [(consumer, choices[stream.name].read_fits[read.features][0])
               for stream in streams for read in stream.reads for consumer in read.consumers]
    for consumer, mapping in refits:  # inputs first: a consumer's kernel is re-fitted while it has all its filters
        kernel, *rest = current(consumer)
        weights[consumer] = [refit_consumer_kernel(kernel, mapping), *rest]
    owners = [(group.producer, (group.producer,), group.channelwise) for group in groups]
    owners += [(stream.name, stream.producers, stream.channelwise) for stream in streams]
    for choice, producers, channelwise in owners:
        kept = choices[choice].kept
        for name in producers:
            kernel, *rest = current(name)
            weights[name] = [kernel[..., kept], *[w[..., kept] for w in rest]]
        for name in channelwise:
            weights[name] = [w[..., kept] for w in current(name)]
    return weights


def transfer_weights(source, narrow, replaced: dict) -> None:
    """Load ``narrow`` (the task's model at the kept widths, its layers named as in ``source``)
    with ``replaced`` weights where given and ``source``'s own elsewhere.

    ValueError naming the first layer whose weights do not fit (the task's ``config_overrides``
    and its plan disagree).
    """
    for layer in narrow.layers:
        if not layer.weights:
            continue
        values = replaced.get(layer.name)
        if values is None:
            values = source.get_layer(layer.name).get_weights()
        expected = [tuple(w.shape) for w in layer.weights]
        if [tuple(np.shape(v)) for v in values] != expected:
            raise ValueError(f"layer {layer.name!r} of the narrow model takes weights shaped {expected}, the "
                             f"compressed ones are {[tuple(np.shape(v)) for v in values]}")
        layer.set_weights(values)


def count_multiply_adds(model, example_shape=None) -> int:
    """Multiply-adds of one example through the model's Conv2D and Dense layers (nested models
    included); other layers are not counted. A model that takes images of any size (``None`` in
    its input's shape, e.g. one trained on crops) is counted at ``example_shape`` (one example's
    shape, no batch axis: the size it is scored and served at).

    Example::

        count_multiply_adds(model)   # 2.3e6 for LeNet-5 on 28x28
        count_multiply_adds(fully_convolutional, example_shape=(360, 480, 3))
    """
    counted = [layer for layer in _all_layers(model) if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    output_shapes = {id(layer): layer.output.shape for layer in counted}
    if any(None in tuple(shape[1:]) for shape in output_shapes.values()):  # a model, or a nested one, for any size
        input_shape = tuple(model.inputs[0].shape[1:])
        if None in input_shape:
            if example_shape is None:
                raise ValueError(f"{model.name} takes inputs of any size {tuple(model.inputs[0].shape)}: "
                                 "give example_shape to count its multiply-adds")
            input_shape = tuple(example_shape)
        output_shapes = _output_shapes_at(model, input_shape)
    missed = [layer.name for layer in counted if id(layer) not in output_shapes]
    if missed:  # a nested model Keras's graph walk does not enter (a subclassed model)
        raise ValueError(f"cannot infer the output shapes of {', '.join(missed)} in {model.name} for inputs of "
                         f"shape {example_shape}: build the model for that size to count its multiply-adds")
    total = 0
    for layer in counted:
        shape = output_shapes[id(layer)]
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, channels_in, channels_out = layer.kernel.shape
            height, width = shape[1:3]
            total += int(height * width * kh * kw * channels_in * channels_out)
        elif isinstance(layer, keras.layers.Dense):
            positions = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
            total += positions * int(np.prod(layer.kernel.shape))
    return total


def example_shape_of(batch):
    """One example's shape (no batch axis) of a batch's model input (the first element of an
    ``(inputs, targets)`` batch), or None when the input is not one tensor: the ``example_shape``
    of :func:`count_multiply_adds`.

    Example: ``count_multiply_adds(model, example_shape_of(next(iter(test_dataset))))``
    """
    inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
    return tuple(inputs.shape[1:]) if hasattr(inputs, "shape") else None


def _output_shapes_at(model, example_shape) -> dict:
    """Each layer's output shape when ``model`` reads a batch of one example of ``example_shape``:
    Keras's own shape inference through the graph (``compute_output_spec``), nested models
    included; nothing is built or run."""
    shapes = {}

    def recorded(operation):
        def infer(*args, **kwargs):
            if isinstance(operation, keras.Sequential):  # its layers are called one after another
                spec = args[0]
                for layer in operation.layers:
                    spec = recorded(layer)(spec)
            elif isinstance(operation, keras.Model) and hasattr(operation, "_run_through_graph"):
                spec = operation._run_through_graph(args[0], operation_fn=recorded)
            else:
                spec = operation.compute_output_spec(*args, **kwargs)
            if hasattr(spec, "shape"):
                shapes[id(operation)] = spec.shape
            return spec
        return infer

    model._run_through_graph(keras.KerasTensor((1, *example_shape), dtype=model.inputs[0].dtype), operation_fn=recorded)
    return shapes


__all__ = ["ChannelChoice", "check_plan", "choose_channels", "count_multiply_adds", "example_shape_of",
           "flat_groups", "measure_feature_covariances", "narrow_weights", "plan_streams",
           "recalibrate_batch_normalization", "transfer_weights"]
