"""Segmentation metrics from a confusion matrix that is exact across batches and replicas.

Each metric keeps a ``[classes, classes]`` count of (true class, predicted class)
pixels in a variable summed over replicas; the ratios are taken only at the end,
so nothing is averaged per batch. Labels outside ``0..classes-1`` (the void label,
255 here) count nowhere. ``sample_weight``, if given, is used as a mask (weight 0:
pixel not counted), never as a fractional count.

Example::

    miou = MeanIoU(num_classes=5)
    miou.update_state(masks, probabilities)   # [B, H, W] ints, [B, H, W, 5] scores
    miou.result()                              # mean over classes seen in truth or prediction
    MeanIoU.score(confusion)                   # the same from a float64 confusion matrix
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class ConfusionMatrixMetric(keras.metrics.Metric):
    """Base: accumulates ``confusion[true, predicted]`` pixel counts (float64, exact to 2**53)."""

    def __init__(self, num_classes: int, name: str = "confusion_matrix", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self.confusion = self.add_variable((self.num_classes, self.num_classes), "zeros", dtype="float64",
                                           aggregation="sum", name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        k = self.num_classes
        y_true = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        if len(y_pred.shape) > 0 and y_pred.shape[-1] == k and y_pred.dtype.is_floating:
            y_pred = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        y_pred = tf.cast(tf.reshape(y_pred, [-1]), tf.int32)
        valid = (y_true >= 0) & (y_true < k) & (y_pred >= 0) & (y_pred < k)
        if sample_weight is not None:
            valid &= tf.reshape(tf.cast(sample_weight, tf.float32), [-1]) > 0
        # Invalid pixels go to an overflow bin k*k that is dropped (static shapes: XLA-friendly).
        cells = tf.where(valid, y_true * k + y_pred, k * k)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(cells), cells, k * k + 1)[: k * k]
        self.confusion.assign_add(tf.reshape(tf.cast(counts, tf.float64), [k, k]))

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def result(self):
        return tf.cast(self.score(self.confusion), tf.float32)

    @staticmethod
    def score(confusion):
        """The metric of a ``[classes, classes]`` float64 confusion matrix (also usable on its own)."""
        raise NotImplementedError

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name}


def _ratio(numerator, denominator):
    """Mean of numerator/denominator over the entries where denominator > 0."""
    present = tf.cast(denominator > 0, tf.float64)
    per_class = tf.math.divide_no_nan(numerator, denominator)
    return tf.math.divide_no_nan(tf.reduce_sum(per_class * present), tf.reduce_sum(present))


class PixelAccuracy(ConfusionMatrixMetric):
    """Global accuracy: correctly labelled pixels / all labelled (non-void) pixels."""

    def __init__(self, num_classes, name="pixel_accuracy", dtype=None):
        super().__init__(num_classes, name=name, dtype=dtype)

    @staticmethod
    def score(confusion):
        return tf.math.divide_no_nan(tf.linalg.trace(confusion), tf.reduce_sum(confusion))


class MeanClassAccuracy(ConfusionMatrixMetric):
    """Class average accuracy: per-class recall, averaged over classes present in the truth."""

    def __init__(self, num_classes, name="class_accuracy", dtype=None):
        super().__init__(num_classes, name=name, dtype=dtype)

    @staticmethod
    def score(confusion):
        return _ratio(tf.linalg.diag_part(confusion), tf.reduce_sum(confusion, axis=1))


class MeanIoU(ConfusionMatrixMetric):
    """Mean intersection over union, over classes present in the truth or the prediction."""

    def __init__(self, num_classes, name="mean_iou", dtype=None):
        super().__init__(num_classes, name=name, dtype=dtype)

    @staticmethod
    def score(confusion):
        diagonal = tf.linalg.diag_part(confusion)
        union = tf.reduce_sum(confusion, axis=0) + tf.reduce_sum(confusion, axis=1) - diagonal
        return _ratio(diagonal, union)


def per_class_iou(confusion) -> list[float | None]:
    """IoU of each class from a confusion matrix (numpy); None where the class is absent."""
    confusion = np.asarray(confusion, dtype=np.float64)
    diagonal = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - diagonal
    return [float(d / u) if u > 0 else None for d, u in zip(diagonal, union)]
