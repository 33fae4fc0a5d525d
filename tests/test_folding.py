"""Serving folds each BatchNormalization into the linear convolution it reads, and only there:
the same answers (to float32 rounding) with fewer operations; a model it cannot fold exactly
(mixed precision, a subclass, a normalization after a non-linearity or a shared output) is
served as it is."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasapps.modeling.layers import FusedBatchNormalization
from kerasapps.serving.export import export_saved_model
from kerasapps.serving.folding import fold_batch_normalization
from kerasapps.task import Task


def network():
    """Each case once: conv -> BN -> ReLU (folds), conv with bias -> fused BN (folds), conv -> ReLU -> BN
    (the BN reads a non-linearity: stays), a conv whose output two layers read (stays), a conv
    with a ReLU activation -> BN (stays)."""
    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="a_conv")(inputs)
    x = keras.layers.BatchNormalization(name="a_bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(6, 3, padding="same", name="b_conv")(x)
    x = FusedBatchNormalization(name="b_bn")(x)  # kerasapps' layer: Keras's at inference
    x = keras.layers.Conv2D(5, 3, padding="same", name="c_conv")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.BatchNormalization(name="c_bn")(x)
    shared = keras.layers.Conv2D(5, 1, name="d_conv")(x)
    x = keras.layers.Add()([keras.layers.BatchNormalization(name="d_bn")(shared), shared])
    x = keras.layers.Conv2D(4, 1, activation="relu", name="e_conv")(x)
    x = keras.layers.BatchNormalization(name="e_bn")(x)
    outputs = keras.layers.Conv2D(3, 1, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # statistics far from the identity, so that a wrong fold shows
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = (w.shape for w in layer.get_weights())
            layer.set_weights([rng.uniform(0.5, 2, gamma), rng.normal(0, 1, beta), rng.normal(0, 2, mean),
                               rng.uniform(0.3, 3, variance)])
    return model


def norms(model):
    return sorted(layer.name for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))


def test_folds_each_normalization_of_a_linear_convolution_and_keeps_the_answers():
    model = network()
    folded = fold_batch_normalization(model)
    assert folded is not model
    assert norms(model) == ["a_bn", "b_bn", "c_bn", "d_bn", "e_bn"]
    assert norms(folded) == ["c_bn", "d_bn", "e_bn"]
    assert folded.get_layer("a_conv").use_bias and folded.get_layer("b_conv").use_bias
    images = np.random.default_rng(1).uniform(0, 255, (2, 20, 28, 3)).astype("float32")
    np.testing.assert_allclose(folded(images), model(images, training=False), atol=1e-4)
    np.testing.assert_allclose(model.get_layer("a_bn").moving_mean.numpy(),  # the model itself is untouched
                               network().get_layer("a_bn").moving_mean.numpy())


def test_models_it_cannot_fold_exactly_are_served_as_they_are():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)
            self.norm = keras.layers.BatchNormalization()

        def call(self, x):
            return self.norm(self.conv(x))

    subclassed = Subclassed()
    subclassed(np.zeros((1, 8, 8, 3), "float32"))
    assert fold_batch_normalization(subclassed) is subclassed
    inputs = keras.Input((8, 8, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    assert fold_batch_normalization(plain) is plain
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = network()  # the convolution would round the folded kernel to bfloat16
    finally:
        keras.config.set_dtype_policy(previous)
    assert fold_batch_normalization(mixed) is mixed


class _ImageProbe(Task):
    name = "folding-probe"

    def build_model(self):
        return network()

    def serving_function(self, model):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        def serve(images):
            return {"probabilities": model(images, training=False)}

        return serve


def test_the_export_serves_the_folded_network(tmp_path):
    task = _ImageProbe()
    model = task.build_model()
    path = export_saved_model(task, model, tmp_path)
    loaded = tf.saved_model.load(str(path))
    images = np.random.default_rng(2).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    served = loaded.signatures["serving_default"](images=tf.constant(images))["probabilities"]
    np.testing.assert_allclose(served, model(images, training=False), atol=1e-4)
    # Two normalizations' four variables each are gone, two convolutions gained a bias.
    assert len(loaded.variables) == len(model.variables) - 2 * 4 + 1
