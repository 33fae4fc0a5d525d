"""SegNet's two layers: max-pooling that remembers where each maximum was, and the
max-unpooling that puts values back exactly there; and U-Net's crop to a skip's size.

Example::

    pooled, argmax = MaxPoolingWithArgmax2D(name="pool1")(x)
    ...
    y = MaxUnpooling2D(name="unpool1")([decoded, argmax, x])   # y has x's shape

The argmax is a flat index into the pooled input, counted over the whole batch:
``((b * H + y) * W + x) * C + c``, as ``tf.nn.max_pool_with_argmax(...,
include_batch_in_index=True)`` computes it (tested equal). That fused op is used
by default (``fused=True``); XLA has no kernel for it, so steps compiled with XLA
(GPU/TPU runs) use ``fused=False``: the same pooling written with reshapes.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _ceil_half(n):
    return None if n is None else (n + 1) // 2


class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """2x2 max-pooling, stride 2, "same" padding (odd sides round up).

    Returns ``(pooled, argmax)``: ``pooled`` ``[B, ceil(H/2), ceil(W/2), C]`` and the
    int64 flat index of each maximum in the input (first maximum on ties).
    ``fused=False`` for XLA (see the module docstring); the results are equal.
    """

    def __init__(self, fused: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.fused = fused

    def get_config(self):
        return {**super().get_config(), "fused": self.fused}

    def call(self, inputs):
        if self.fused:
            return tf.nn.max_pool_with_argmax(inputs, 2, 2, "SAME", include_batch_in_index=True)
        shape = tf.shape(inputs, out_type=tf.int64)
        batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
        pad_h, pad_w = height % 2, width % 2
        # An odd side is padded with a copy of its last row or column. A constant (the dtype's
        # lowest value) would never win a window either, but int8 quantization calibrates the
        # tensor's range to include it: every value of the layer then rounded to one step and
        # LiteRT's XNNPACK refused the scale. The copy ties with the value it copies; the real one
        # comes first in its window, and the index is clamped below in case an argmax breaks ties
        # otherwise (the copy's clamped position holds the same value).
        x = tf.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="SYMMETRIC")
        half_h, half_w = (height + pad_h) // 2, (width + pad_w) // 2
        # [B, H/2, 2, W/2, 2, C] -> [B, H/2, W/2, C, 4]: the four values of each window last.
        x = tf.reshape(x, tf.stack([batch, half_h, 2, half_w, 2, channels]))
        x = tf.reshape(tf.transpose(x, [0, 1, 3, 5, 2, 4]), tf.stack([batch, half_h, half_w, channels, 4]))
        window = tf.argmax(x, axis=-1, output_type=tf.int64)  # dy * 2 + dx
        # Gathered rather than reduce_max: on ties the gradient goes to the recorded position only.
        pooled = tf.gather(x, window[..., None], batch_dims=4)[..., 0]
        b = tf.reshape(tf.range(batch), [-1, 1, 1, 1])
        # window // 2 and window % 2 without int64 FloorDiv/FloorMod, which TFLite's builtins lack
        # (this path is the one `kerasapps export --format litert` converts).
        dy = tf.cast(window >= 2, tf.int64)
        row = tf.minimum(tf.reshape(tf.range(half_h) * 2, [1, -1, 1, 1]) + dy, height - 1)
        col = tf.minimum(tf.reshape(tf.range(half_w) * 2, [1, 1, -1, 1]) + (window - 2 * dy), width - 1)
        channel = tf.reshape(tf.range(channels), [1, 1, 1, -1])
        argmax = ((b * height + row) * width + col) * channels + channel
        return pooled, argmax

    def compute_output_spec(self, inputs):
        b, h, w, c = inputs.shape
        shape = (b, _ceil_half(h), _ceil_half(w), c)
        return (keras.KerasTensor(shape, dtype=inputs.dtype), keras.KerasTensor(shape, dtype="int64"))


class MaxUnpooling2D(keras.layers.Layer):
    """Inverse of :class:`MaxPoolingWithArgmax2D`: call on ``[values, argmax, like]``.

    Each value lands at its recorded argmax position in a zero tensor of ``like``'s
    shape (the tensor that was pooled; only its shape is used). Every other position
    is zero, as in SegNet's decoder.

    ``scatter=True``: one ``tf.scatter_nd`` of the values. ``scatter=False``: each value put in
    the place of its 2x2 window that its argmax names, zeros in the other three, laid out by
    reshapes (the same result, tested equal). The second is what LiteRT's int8 quantization gets right: its int8 ``SCATTER_ND``
    fills the untouched positions with the raw integer 0, which is not 0 when the tensor's zero
    point is not (after a ReLU it is -128): every "zero" came back as 128 quantization steps.
    """

    def __init__(self, scatter: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.scatter = scatter

    def get_config(self):
        return {**super().get_config(), "scatter": self.scatter}

    def call(self, inputs):
        values, argmax, like = inputs
        if not self.scatter:
            return self._spread(values, argmax, like)
        shape = tf.shape(like, out_type=tf.int64)
        flat = tf.scatter_nd(tf.reshape(argmax, [-1, 1]), tf.reshape(values, [-1]),
                             tf.reshape(tf.reduce_prod(shape), [1]))
        return tf.reshape(flat, shape)

    @staticmethod
    def _spread(values, argmax, like):
        shape = tf.shape(like)
        height, width, channels = shape[1], shape[2], shape[3]
        pooled = tf.shape(values)
        batch, half_h, half_w = pooled[0], pooled[1], pooled[2]
        # The argmax's row and column in the pooled input, from its flat index ((b*H + y)*W + x)*C + c
        # (int32 arithmetic: LiteRT has no int64 FloorDiv), then its place in the 2x2 window.
        index = tf.cast(argmax, tf.int32)
        column = (index // channels) % width
        row = (index // (channels * width)) % height
        window = (row % 2) * 2 + column % 2
        # Selected, not multiplied by a one-hot: LiteRT's int8 ONE_HOT copies its raw 1 into the
        # product's scale. The 0 here is a constant the converter quantizes like the values.
        spread = tf.where(window[..., None] == tf.range(4), values[..., None], 0.0)  # [B, H/2, W/2, C, 4]
        spread = tf.reshape(spread, tf.stack([batch, half_h, half_w, channels, 2, 2]))
        spread = tf.transpose(spread, [0, 1, 4, 2, 5, 3])  # [B, H/2, dy, W/2, dx, C]
        spread = tf.reshape(spread, tf.stack([batch, half_h * 2, half_w * 2, channels]))
        return spread[:, :height, :width, :]  # an odd side's padding row or column goes

    def compute_output_spec(self, inputs):
        values, _argmax, like = inputs
        return keras.KerasTensor(like.shape, dtype=values.dtype)


class CropLike(keras.layers.Layer):
    """Crops ``x`` to the height and width of ``like``: call on ``[x, like]``.

    U-Net's upsampled map is a pixel larger than its skip where pooling rounded an odd side up.
    A network built for any size (one that trains on crops and serves whole images) knows its
    sides only when it runs, so the crop is taken then::

        x = CropLike(name="up1_crop")([upsampled, skip])   # x has skip's height and width
    """

    def call(self, inputs):
        x, like = inputs
        shape = tf.shape(like)
        return x[:, :shape[1], :shape[2], :]

    def compute_output_spec(self, inputs):
        x, like = inputs
        return keras.KerasTensor((x.shape[0], like.shape[1], like.shape[2], x.shape[3]), dtype=x.dtype)
