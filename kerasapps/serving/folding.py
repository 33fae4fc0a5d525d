"""Batch normalization folded into the convolution before it, for serving.

At inference a BatchNormalization is a fixed affine map per channel,
``y = gamma * (x - mean) / sqrt(variance + epsilon) + beta``; after a linear Conv2D it can be
folded into that convolution's kernel and bias, which removes its arithmetic from every call.
TensorFlow does not do it for a SavedModel, whose weights are variables, not constants (the
LiteRT converter folds by itself). What it saves on ResNet-20: docs/serving.md.

Example::

    served = fold_batch_normalization(model)   # the same answers, fewer operations
    served is model                             # True when there was nothing to fold
"""

from __future__ import annotations

import functools

import numpy as np

TOLERANCE = 1e-4  # of the largest output magnitude: float32 reassociation, not a change of answer


def fold_batch_normalization(model):
    """Fold each BatchNormalization that reads only a linear Conv2D's output into that convolution
    (``kernel * scale``, ``(bias - mean) * scale + beta``, ``scale = gamma / sqrt(variance + epsilon)``).

    Returns a copy of ``model`` with those layers folded (same layer names; each folded
    normalization's place holds a layer that passes its input on), or ``model`` itself when
    nothing is folded.

    Only a model built with the functional API (``keras.Model(inputs, outputs)``, not a subclass,
    whose methods a task may rely on) computing in float32 is folded: under mixed precision the
    convolution would round the folded kernel to 16 bits, which changes answers. The copy is
    checked against the model on a random batch; if it differs (beyond float32 rounding) or cannot
    be built, the model itself is returned.
    """
    import keras
    from keras.src.models.functional import Functional

    if type(model) is not Functional:
        return model
    pairs = _foldable_pairs(model)
    if not pairs:
        return model
    folded_norms = {norm.name for norm in pairs.values()}

    def clone(layer):
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        elif layer.name in folded_norms:
            return folded_layer_class()(name=layer.name)
        return layer.__class__.from_config(config)

    try:
        folded = keras.models.clone_model(model, clone_function=clone)
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer) or layer.name in folded_norms or not layer.weights:
                continue
            target = folded.get_layer(layer.name)
            target.set_weights(_folded_weights(layer, pairs[layer.name]) if layer.name in pairs
                               else layer.get_weights())
        if not _same_answers(model, folded):
            return model
    except Exception:  # a layer that cannot be rebuilt from its config: serve the model as it is
        return model
    return folded


def _foldable_pairs(model) -> dict:
    """{Conv2D name: the BatchNormalization (or kerasapps' FusedBatchNormalization) folded into it}:
    a float32, channels-last, linear convolution called once, whose only reader is that
    normalization over its channels."""
    import keras

    from kerasapps.modeling.layers import FusedBatchNormalization  # Keras's layer at inference

    pairs = {}
    for norm in model.layers:
        if type(norm) not in (keras.layers.BatchNormalization, FusedBatchNormalization):
            continue
        if len(norm._inbound_nodes) != 1:
            continue
        if norm.axis not in (-1, 3) or norm.compute_dtype != "float32":
            continue
        inputs = norm._inbound_nodes[0].input_tensors
        conv = inputs[0]._keras_history.operation if len(inputs) == 1 else None
        if (type(conv) is keras.layers.Conv2D and len(conv._inbound_nodes) == 1 and len(conv._outbound_nodes) == 1
                and conv.data_format == "channels_last" and conv.activation is keras.activations.linear
                and conv.compute_dtype == "float32"):
            pairs[conv.name] = norm
    return pairs


def _folded_weights(conv, norm) -> list:
    kernel, *bias = [np.asarray(w, np.float64) for w in conv.get_weights()]
    values = dict(zip([w.name for w in norm.weights], norm.get_weights()))
    mean = np.asarray(values["moving_mean"], np.float64)
    variance = np.asarray(values["moving_variance"], np.float64)
    gamma = np.asarray(values.get("gamma", np.ones_like(mean)), np.float64)
    beta = np.asarray(values.get("beta", np.zeros_like(mean)), np.float64)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    bias = bias[0] if bias else np.zeros_like(mean)
    return [(kernel * scale).astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]


def _same_answers(model, folded) -> bool:
    """Both models on one random batch (sides of unknown size: 32) agree to ``TOLERANCE``."""
    import keras

    rng = np.random.default_rng(0)
    batch = []
    for spec in model.inputs:
        if not str(spec.dtype).startswith("float"):
            return False  # not an image model: folding is not checked, so not done
        shape = [2] + [32 if side is None else side for side in spec.shape[1:]]
        batch.append(rng.uniform(0, 255, shape).astype(spec.dtype))
    batch = batch[0] if len(batch) == 1 else batch
    expected = keras.tree.flatten(model(batch, training=False))
    got = keras.tree.flatten(folded(batch, training=False))
    for want, have in zip(expected, got):
        want, have = np.asarray(want, np.float64), np.asarray(have, np.float64)
        if want.shape != have.shape or np.abs(want - have).max() > TOLERANCE * max(1.0, np.abs(want).max()):
            return False
    return True


@functools.cache
def folded_layer_class():
    """The layer left where a folded BatchNormalization was (keras is imported on first use)."""
    import keras

    class FoldedBatchNormalization(keras.layers.Layer):
        """Where a BatchNormalization was: its map now lives in the convolution before it."""

        def call(self, inputs, training=None, mask=None):
            return inputs

        def compute_output_shape(self, input_shape):
            return input_shape

    return FoldedBatchNormalization


__all__ = ["fold_batch_normalization"]
