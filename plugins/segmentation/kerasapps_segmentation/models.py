"""Segmentation networks: SegNet-Basic, SegNet (VGG16 depth) and U-Net, as Keras functional models.

Each builder takes the input tensor (float pixels 0..255) and returns per-pixel
class probabilities (softmax in float32, also under mixed precision).

Example::

    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, segnet_basic(inputs, num_classes=5))
"""

from __future__ import annotations

import keras

from kerasapps_segmentation.layers import CropLike, MaxPoolingWithArgmax2D, MaxUnpooling2D

# VGG16's convolutions per block and width multipliers (SegNet's encoder).
VGG16_BLOCKS = ((2, 1), (2, 2), (3, 4), (3, 8), (3, 8))


def _conv_bn(x, filters, kernel_size, name, relu=True):
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9 (Keras: 0.99): the moving statistics keep up within a few-epoch CPU run.
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _classifier(x, num_classes):
    logits = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
    return keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)


def segnet_basic(inputs, num_classes: int, width: int = 64, kernel_size: int = 7, depth: int = 4,
                 fused_pooling: bool = True, stage_widths=()):
    """SegNet-Basic (Badrinarayanan et al. 2017): ``depth`` encoders of conv-BN-ReLU +
    2x2 max-pooling that keeps its argmax; a mirrored decoder of max-unpooling with
    those indices + conv-BN (no ReLU in the decoder, as in the paper); 1x1 conv; softmax.
    ``fused_pooling=False`` when the model will run compiled with XLA.

    ``stage_widths`` (``depth + 1`` values; empty: ``width`` everywhere): each encoder's width,
    then the last decoder's. Decoder ``i + 1``'s output is unpooled with encoder ``i``'s
    pooling indices, so it has encoder ``i``'s width."""
    widths = list(stage_widths) or [width] * (depth + 1)
    if len(widths) != depth + 1:
        raise ValueError(f"stage_widths: SegNet-Basic of depth {depth} takes {depth + 1} widths, got {len(widths)}")
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    stages = []
    for i in range(1, depth + 1):
        x = _conv_bn(x, widths[i - 1], kernel_size, f"encoder{i}")
        pooled, argmax = MaxPoolingWithArgmax2D(fused_pooling, name=f"pool{i}")(x)
        stages.append((argmax, x))
        x = pooled
    for i in range(depth, 0, -1):
        argmax, before = stages[i - 1]
        x = MaxUnpooling2D(fused_pooling, name=f"unpool{i}")([x, argmax, before])
        x = _conv_bn(x, widths[i - 2] if i > 1 else widths[depth], kernel_size, f"decoder{i}", relu=False)
    return _classifier(x, num_classes)


def segnet(inputs, num_classes: int, width: int = 64, fused_pooling: bool = True):
    """SegNet: the 13 convolutions of VGG16 (with batch normalisation) as the encoder,
    5 argmax max-poolings, and a mirrored decoder that unpools with their indices.
    ``fused_pooling=False`` when the model will run compiled with XLA."""
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    stages = []
    for block, (convs, multiple) in enumerate(VGG16_BLOCKS, start=1):
        for j in range(1, convs + 1):
            x = _conv_bn(x, width * multiple, 3, f"encoder{block}_{j}")
        pooled, argmax = MaxPoolingWithArgmax2D(fused_pooling, name=f"pool{block}")(x)
        stages.append((argmax, x))
        x = pooled
    for block in range(len(VGG16_BLOCKS), 0, -1):
        convs, multiple = VGG16_BLOCKS[block - 1]
        argmax, before = stages[block - 1]
        x = MaxUnpooling2D(fused_pooling, name=f"unpool{block}")([x, argmax, before])
        # The last convolution of each decoder block narrows to the next block's width.
        out_width = width * VGG16_BLOCKS[block - 2][1] if block > 1 else width
        for j in range(convs, 0, -1):
            x = _conv_bn(x, width * multiple if j > 1 else out_width, 3, f"decoder{block}_{j}")
    return _classifier(x, num_classes)


def unet(inputs, num_classes: int, width: int = 64, depth: int = 4):
    """U-Net (Ronneberger et al. 2015) with batch normalisation and "same" padding:
    ``depth`` levels of two 3x3 convolutions and max-pooling, a bottleneck, and an
    expanding path of 2x2 transposed convolutions concatenated with the skip features."""
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    skips = []
    for level in range(depth):
        filters = width * 2**level
        x = _conv_bn(x, filters, 3, f"down{level + 1}_a")
        x = _conv_bn(x, filters, 3, f"down{level + 1}_b")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{level + 1}")(x)
    x = _conv_bn(x, width * 2**depth, 3, "bottleneck_a")
    x = _conv_bn(x, width * 2**depth, 3, "bottleneck_b")
    for level in reversed(range(depth)):
        filters = width * 2**level
        skip = skips[level]
        x = keras.layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level + 1}_transpose")(x)
        # Odd sides: pooling rounded up, so the upsampled map can be one pixel larger. For any size
        # (None sides: trained on crops) that is known only when the network runs.
        if None in (x.shape[1], x.shape[2], skip.shape[1], skip.shape[2]):
            x = CropLike(name=f"up{level + 1}_crop")([x, skip])
        elif x.shape[1] != skip.shape[1] or x.shape[2] != skip.shape[2]:
            extra_h, extra_w = x.shape[1] - skip.shape[1], x.shape[2] - skip.shape[2]
            x = keras.layers.Cropping2D(((0, extra_h), (0, extra_w)), name=f"up{level + 1}_crop")(x)
        x = keras.layers.Concatenate(name=f"up{level + 1}_concat")([skip, x])
        x = _conv_bn(x, filters, 3, f"up{level + 1}_a")
        x = _conv_bn(x, filters, 3, f"up{level + 1}_b")
    return _classifier(x, num_classes)
