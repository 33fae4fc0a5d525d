"""Segmentation building blocks against hand-computed cases: argmax pooling, max-unpooling,
the confusion-matrix metrics (with the void label), the loss, the three networks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasapps_segmentation import models
from kerasapps_segmentation.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
from kerasapps_segmentation.metrics import MeanClassAccuracy, MeanIoU, PixelAccuracy, per_class_iou
from kerasapps_segmentation.losses import PixelCrossEntropy
from kerasapps_segmentation.task import VOID

# Two 3x5 single-channel images (odd height and width). The second is all negative, so a
# padded position would win its window if padding were wrong.
X = np.array([
    [[1, 5, 2, 0, 7],
     [3, 4, 9, 1, 6],
     [8, 0, 2, 2, 3]],
    [[-1, -5, -2, -0.5, -7],
     [-3, -4, -9, -1, -6],
     [-8, -0.25, -2, -2, -3]],
], np.float32)[..., None]
# By hand: 2x2 windows rows {0,1},{2} x cols {0,1},{2,3},{4}; flat index ((b*3 + y)*5 + x).
POOLED = np.array([[[5, 9, 7], [8, 2, 3]], [[-1, -0.5, -6], [-0.25, -2, -3]]], np.float32)[..., None]
ARGMAX = np.array([[[1, 7, 4], [10, 12, 14]], [[15, 18, 24], [26, 27, 29]]], np.int64)[..., None]


@pytest.mark.parametrize("fused", [False, True])
def test_pooling_keeps_the_argmax_positions_by_hand(fused):
    pooled, argmax = MaxPoolingWithArgmax2D(fused)(tf.constant(X))
    np.testing.assert_array_equal(pooled.numpy(), POOLED)
    np.testing.assert_array_equal(argmax.numpy(), ARGMAX)  # ties: the first maximum (row-major)


def test_the_padded_copy_of_an_odd_side_is_never_recorded_whatever_argmax_does_with_ties(monkeypatch):
    """The rebuilt pooling pads an odd side with a copy of its last row and column, which ties with
    them; an argmax that broke ties towards the last index would pick the copy. Each recorded index
    is still inside the input and holds the pooled value."""
    from kerasapps_segmentation import layers

    first_maximum = tf.argmax

    def last_maximum(x, axis, output_type):
        return 3 - first_maximum(tf.reverse(x, [axis]), axis=axis, output_type=output_type)

    monkeypatch.setattr(layers.tf, "argmax", last_maximum)
    x = np.random.default_rng(3).integers(0, 3, (2, 5, 7, 2)).astype(np.float32)  # many ties
    pooled, argmax = MaxPoolingWithArgmax2D(fused=False)(tf.constant(x))
    flat = argmax.numpy().ravel()
    assert flat.max() < x.size
    np.testing.assert_array_equal(x.ravel()[flat], pooled.numpy().ravel())
    np.testing.assert_array_equal(pooled.numpy(), tf.nn.max_pool2d(x, 2, 2, "SAME").numpy())


@pytest.mark.parametrize("scatter", [True, False])
def test_unpooling_puts_each_value_exactly_at_its_argmax(scatter):
    values = np.array([[[10, 20, 30], [40, 50, 60]], [[-1, -2, -3], [-4, -5, -6]]], np.float32)[..., None]
    out = MaxUnpooling2D(scatter)([tf.constant(values), tf.constant(ARGMAX), tf.constant(X)]).numpy()
    expected = np.zeros((2, 3, 5), np.float32)
    expected[0] = [[0, 10, 0, 0, 30],
                   [0, 0, 20, 0, 0],
                   [40, 0, 50, 0, 60]]
    expected[1] = [[-1, 0, 0, -2, 0],
                   [0, 0, 0, 0, -3],
                   [0, -4, -5, 0, -6]]
    assert out.shape == (2, 3, 5, 1)
    np.testing.assert_array_equal(out[..., 0], expected)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("shape", [(3, 7, 9, 4), (2, 8, 6, 3), (1, 1, 1, 2)])
def test_pooling_matches_tensorflows_op_and_unpooling_inverts_it(shape, fused):
    x = tf.random.stateless_normal(shape, seed=(1, 2))
    pooled, argmax = MaxPoolingWithArgmax2D(fused)(x)
    ref_pooled, ref_argmax = tf.nn.max_pool_with_argmax(x, 2, 2, "SAME", include_batch_in_index=True)
    np.testing.assert_array_equal(pooled.numpy(), ref_pooled.numpy())
    np.testing.assert_array_equal(argmax.numpy(), ref_argmax.numpy())
    restored = MaxUnpooling2D(scatter=fused)([pooled, argmax, x]).numpy()
    # Every window maximum is back in place; everything else is zero.
    is_max = np.zeros(np.prod(shape), bool)
    is_max[argmax.numpy().ravel()] = True
    is_max = is_max.reshape(shape)
    np.testing.assert_array_equal(restored[is_max], x.numpy()[is_max])
    assert not restored[~is_max].any()


@pytest.mark.parametrize("fused", [False, True])
def test_unpooling_gradient_flows_back_to_the_maxima(fused):
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        pooled, argmax = MaxPoolingWithArgmax2D(fused)(x)
        out = MaxUnpooling2D(scatter=fused)([pooled * 2.0, argmax, x])
        loss = tf.reduce_sum(out)
    grad = tape.gradient(loss, x).numpy()
    flat = np.zeros(X.size, np.float32)
    flat[ARGMAX.ravel()] = 2.0
    np.testing.assert_array_equal(grad, flat.reshape(X.shape))


def test_pooling_and_unpooling_compile_with_xla():
    @tf.function(jit_compile=True)
    def round_trip(x):
        pooled, argmax = MaxPoolingWithArgmax2D(fused=False)(x)
        return MaxUnpooling2D(scatter=False)([pooled, argmax, x])

    np.testing.assert_array_equal(round_trip(tf.constant(X)).numpy(),
                                  MaxUnpooling2D()([tf.constant(POOLED), tf.constant(ARGMAX), tf.constant(X)]).numpy())

    def pooling_gradient(fused):
        def gradient(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                pooled, _ = MaxPoolingWithArgmax2D(fused=fused)(x)
                loss = tf.reduce_sum(pooled * pooled)
            return tape.gradient(loss, x)
        return gradient

    # X's odd sides are padded (with a copy of the last row and column): no gradient reaches the copy
    # or a real value that lost its window.
    np.testing.assert_array_equal(tf.function(pooling_gradient(False), jit_compile=True)(tf.constant(X)).numpy(),
                                  pooling_gradient(True)(tf.constant(X)).numpy())


# Metrics. Truth (255 = void) and predicted classes, two 2x3 images:
TRUE = np.array([[[0, 0, 1], [2, VOID, 1]], [[2, 2, 0], [VOID, VOID, 1]]])
PRED = np.array([[[0, 1, 1], [2, 2, 0]], [[2, 0, 0], [1, 1, 2]]])
# By hand, rows = truth, columns = prediction, void pixels left out:
#   image 1: (0,0) (0,1) (1,1) (2,2) (1,0)    image 2: (2,2) (2,0) (0,0) (1,2)
CONFUSION = np.array([[2, 1, 0],
                      [1, 1, 1],
                      [1, 0, 2]])


def _probabilities(classes, k=3):
    return tf.one_hot(classes, k) * 0.9 + 0.1 / k


def test_metrics_match_a_hand_computed_confusion_matrix_with_void():
    metrics = [PixelAccuracy(3), MeanClassAccuracy(3), MeanIoU(3)]
    for metric in metrics:  # one image per batch: the state adds up exactly
        for i in range(2):
            metric.update_state(tf.constant(TRUE[i:i + 1]), _probabilities(PRED[i:i + 1]))
        np.testing.assert_array_equal(metric.confusion.numpy(), CONFUSION)
    pixel, klass, iou = (float(m.result()) for m in metrics)
    assert pixel == pytest.approx(5 / 9)  # trace 5 of 9 labelled pixels
    assert klass == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 3)
    # IoU: class 0: 2/(4+3-2) = 2/5; class 1: 1/(3+2-1) = 1/4; class 2: 2/(3+3-2) = 1/2
    assert iou == pytest.approx((2 / 5 + 1 / 4 + 1 / 2) / 3)
    assert per_class_iou(CONFUSION) == pytest.approx([2 / 5, 1 / 4, 1 / 2])
    metrics[0].reset_state()
    assert float(metrics[0].result()) == 0.0 and not metrics[0].confusion.numpy().any()


def test_metrics_skip_absent_classes_and_treat_weights_as_a_mask():
    miou = MeanIoU(4)  # class 3 appears nowhere: left out of the mean, not counted as 0
    weights = (TRUE != 0).astype(np.float32) * 3.0  # weight 0 drops class-0 pixels; 3 is not a count
    miou.update_state(tf.constant(TRUE), _probabilities(PRED, 4), sample_weight=tf.constant(weights))
    expected = CONFUSION.copy()
    expected[0] = 0
    np.testing.assert_array_equal(miou.confusion.numpy()[:3, :3], expected)
    # class 0: 0/(0+2-0) = 0; class 1: 1/(3+1-1) = 1/3; class 2: 2/(3+3-2) = 1/2
    assert float(miou.result()) == pytest.approx((0 + 1 / 3 + 1 / 2) / 3)


def test_loss_ignores_void_pixels_and_weights_classes():
    probabilities = _probabilities(PRED)
    ce = -np.log(np.take_along_axis(probabilities.numpy(), np.where(TRUE == VOID, 0, TRUE)[..., None], -1)[..., 0])
    weights = np.array([1.0, 2.0, 0.5])
    expected = np.where(TRUE == VOID, 0.0, ce * weights[np.where(TRUE == VOID, 0, TRUE)]).mean()
    loss = PixelCrossEntropy(weights)(tf.constant(TRUE), probabilities)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("builder", [models.segnet_basic, models.segnet, models.unet])
def test_networks_give_per_pixel_probabilities_at_odd_sizes(builder):
    inputs = keras.Input((37, 50, 3))
    model = keras.Model(inputs, builder(inputs, 4, width=4))
    out = model(np.random.default_rng(0).uniform(0, 255, (2, 37, 50, 3)).astype(np.float32))
    assert out.shape == (2, 37, 50, 4) and out.dtype == "float32"
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)
    if builder is not models.unet:
        pools = [layer for layer in model.layers if isinstance(layer, MaxPoolingWithArgmax2D)]
        assert len(pools) == (4 if builder is models.segnet_basic else 5)


def test_fused_and_xla_ready_pooling_train_to_the_same_weights_under_bfloat16():
    # The runner picks fused pooling unless the step compiles with XLA: both must train alike,
    # also under mixed_bfloat16 (precision auto on CPUs with bfloat16 instructions).
    images = np.random.default_rng(1).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
    labels = np.random.default_rng(2).integers(0, 3, (4, 16, 16))
    weights = []
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        for fused in (False, True):
            keras.utils.set_random_seed(0)
            inputs = keras.Input((16, 16, 3))
            model = keras.Model(inputs, models.segnet_basic(inputs, 3, width=4, kernel_size=3, depth=2,
                                                             fused_pooling=fused))
            model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
            model.fit(images, labels, batch_size=4, epochs=2, verbose=0)
            weights.append([w.numpy() for w in model.weights])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-2)
