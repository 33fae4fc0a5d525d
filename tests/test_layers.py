"""kerasapps.modeling.layers: the fused batch normalisation matches keras.layers.BatchNormalization; the LSTM forget-gate bias."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from kerasapps.modeling.layers import ForgetGateBias, FusedBatchNormalization  # noqa: E402


def _pair(**kwargs):
    """The Keras layer and the fused one, built on the same shape, with the same (non-trivial) weights."""
    plain = keras.layers.BatchNormalization(momentum=0.9, **kwargs)
    fused = FusedBatchNormalization(momentum=0.9, **kwargs)
    for layer in (plain, fused):
        layer.build((None, 6, 5, 4))
    rng = np.random.default_rng(0)
    weights = [rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in plain.get_weights()]
    plain.set_weights(weights)
    fused.set_weights(weights)
    return plain, fused


def test_training_pass_matches_keras_outputs_gradients_and_moving_statistics():
    plain, fused = _pair()
    x = tf.constant(np.random.default_rng(1).normal(3.0, 2.0, (8, 6, 5, 4)), tf.float32)
    upstream = tf.constant(np.random.default_rng(2).normal(size=(8, 6, 5, 4)), tf.float32)
    results = []
    for layer in (plain, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append((y.numpy(), [g.numpy() for g in grads], [w.numpy() for w in layer.non_trainable_weights]))
    (y0, g0, s0), (y1, g1, s1) = results
    np.testing.assert_allclose(y1, y0, rtol=1e-4, atol=1e-4)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    for a, b in zip(s1, s0):  # moving mean and (biased) moving variance, updated alike
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert not np.allclose(s1[0], plain.moving_mean_initializer((4,)).numpy())  # they did move


def test_inference_uses_moving_statistics_like_keras_and_weights_interchange():
    plain, fused = _pair()
    x = tf.constant(np.random.default_rng(3).normal(size=(2, 6, 5, 4)), tf.float32)
    np.testing.assert_allclose(fused(x, training=False).numpy(), plain(x, training=False).numpy(), rtol=1e-6)
    model = keras.Sequential([keras.Input((6, 5, 4)), FusedBatchNormalization(name="bn")])
    model.get_layer("bn").set_weights(plain.get_weights())
    np.testing.assert_allclose(model(x, training=False).numpy(), plain(x, training=False).numpy(), rtol=1e-6)


def test_mixed_precision_keeps_the_compute_dtype_and_other_ranks_fall_back():
    layer = FusedBatchNormalization(dtype="mixed_bfloat16")
    y = layer(tf.ones((2, 4, 4, 3), tf.bfloat16) * tf.range(3, dtype=tf.bfloat16), training=True)
    assert y.dtype == tf.bfloat16 and layer.moving_mean.dtype == tf.float32
    dense_input = tf.constant(np.random.default_rng(4).normal(size=(16, 3)), tf.float32)
    plain, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
    np.testing.assert_allclose(fused(dense_input, training=True).numpy(),
                               plain(dense_input, training=True).numpy(), rtol=1e-5, atol=1e-5)


def _lstm_bias(**kwargs):
    lstm = keras.layers.LSTM(3, **kwargs)
    lstm.build((None, 4, 2))
    return keras.ops.convert_to_numpy(lstm.cell.bias)


def test_forget_gate_bias_sets_the_forget_gate_only_and_survives_serialisation():
    bias = _lstm_bias(unit_forget_bias=False, bias_initializer=ForgetGateBias(3.0))
    np.testing.assert_array_equal(bias, [0, 0, 0, 3, 3, 3, 0, 0, 0, 0, 0, 0])  # gates i, f, c, o
    # value 1 is what Keras's unit_forget_bias gives.
    np.testing.assert_array_equal(_lstm_bias(unit_forget_bias=False, bias_initializer=ForgetGateBias(1.0)),
                                  _lstm_bias())
    lstm = keras.layers.LSTM(3, unit_forget_bias=False, bias_initializer=ForgetGateBias(2.5))
    restored = keras.layers.LSTM.from_config(lstm.get_config())
    assert isinstance(restored.cell.bias_initializer, ForgetGateBias)
    assert restored.cell.bias_initializer.value == 2.5
    with pytest.raises(ValueError, match="4 \\* units"):
        ForgetGateBias(3.0)((6,))
