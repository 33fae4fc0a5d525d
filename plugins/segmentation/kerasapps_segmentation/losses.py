"""The segmentation loss: per-pixel cross-entropy with a weight per class (void pixels weigh 0)."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable("kerasapps_segmentation")
class PixelCrossEntropy(keras.losses.Loss):
    """Per-pixel cross-entropy on probabilities, times a weight per true class; void
    pixels (labels outside the class range, 255) weigh 0. Averaged over all pixels."""

    def __init__(self, class_weights, name="pixel_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.class_weights = [float(w) for w in class_weights]

    def call(self, y_true, y_pred):
        num_classes = len(self.class_weights)
        labels = tf.cast(y_true, tf.int32)
        valid = (labels >= 0) & (labels < num_classes)
        labels = tf.where(valid, labels, 0)
        weights = tf.gather(tf.constant(self.class_weights, y_pred.dtype), labels) * tf.cast(valid, y_pred.dtype)
        return keras.losses.sparse_categorical_crossentropy(labels, y_pred) * weights

    def get_config(self):
        return {**super().get_config(), "class_weights": self.class_weights}
