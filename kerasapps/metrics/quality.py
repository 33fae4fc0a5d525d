"""Image quality, shared by every image-to-image task: per-example L1, PSNR and SSIM, as
functions, Keras metrics and a mean over a dataset.

Every figure is computed on images mapped to [0, 1] from the task's own ``value_range``
(``(-1, 1)`` for a tanh generator, ``(0, 255)`` for pixels), so tasks report comparable
numbers.

Example::

    model.compile("adam", "mse", metrics=[PSNR(value_range=(0, 1)), SSIM(value_range=(0, 1))])
    l1, psnr, ssim = image_quality(predicted, targets, value_range=(-1, 1))   # [N] each
    mean_image_quality(test_data, value_range=(0, 1))   # the do-nothing baseline: input as output
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def to_unit_range(images, value_range=(0.0, 1.0)):
    """Images in ``value_range`` -> float32 in [0, 1], clipped.

    Returns a float32 tensor of the input's shape, in [0, 1].
    """
    low, high = value_range
    return tf.clip_by_value((tf.cast(images, tf.float32) - low) / (high - low), 0.0, 1.0)


def image_quality(predicted, target, value_range=(0.0, 1.0)):
    """Per-example ``(L1, PSNR in dB, SSIM)`` of two ``[N, H, W, C]`` batches, measured in [0, 1].

    Returns three float32 tensors ``[N]``: L1, PSNR (dB) and SSIM of each example.

    SSIM uses 11x11 windows: images need sides of at least 11 pixels.
    """
    predicted, target = to_unit_range(predicted, value_range), to_unit_range(target, value_range)
    l1 = tf.reduce_mean(tf.abs(predicted - target), axis=[1, 2, 3])
    return l1, tf.image.psnr(predicted, target, max_val=1.0), tf.image.ssim(predicted, target, max_val=1.0)


class _QualityMetric(keras.metrics.Mean):
    index = 0

    def __init__(self, value_range=(0.0, 1.0), name=None, **kwargs):
        super().__init__(name=name or self.default_name, **kwargs)
        self.value_range = tuple(float(v) for v in value_range)

    def update_state(self, y_true, y_pred, sample_weight=None):
        value = image_quality(y_pred, y_true, self.value_range)[self.index]
        return super().update_state(value, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range}


@keras.saving.register_keras_serializable("kerasapps")
class PSNR(_QualityMetric):
    """Mean peak signal-to-noise ratio (dB) per example, of images in ``value_range``."""

    index, default_name = 1, "psnr"


@keras.saving.register_keras_serializable("kerasapps")
class SSIM(_QualityMetric):
    """Mean structural similarity per example (11x11 Gaussian windows), of images in ``value_range``."""

    index, default_name = 2, "ssim"


@keras.saving.register_keras_serializable("kerasapps")
class ImageL1(_QualityMetric):
    """Mean L1 distance per example, measured in [0, 1] (``l1``)."""

    index, default_name = 0, "l1"


def mean_image_quality(dataset, translate=None, value_range=(0.0, 1.0)) -> dict:
    """``{"l1", "psnr", "ssim"}``: means per example over a dataset of ``(inputs, targets)`` batches
    of ``translate(inputs)`` against the targets; without ``translate``, of the inputs themselves
    (the do-nothing baseline every image-to-image model must beat).

    Returns ``{"l1": float, "psnr": float, "ssim": float}``.
    """
    totals, count = np.zeros(3), 0
    for inputs, targets in dataset:
        values = image_quality(inputs if translate is None else translate(inputs), targets, value_range)
        totals += [float(tf.reduce_sum(v)) for v in values]
        count += int(inputs.shape[0])
    return dict(zip(("l1", "psnr", "ssim"), (totals / max(count, 1)).tolist()))


__all__ = ["PSNR", "SSIM", "ImageL1", "image_quality", "mean_image_quality", "to_unit_range"]
