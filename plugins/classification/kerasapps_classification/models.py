"""The classifiers: LeNet-5, ResNet-20 (CIFAR variant) and a linear baseline, as Keras functional models.

Example::

    model = build_classifier("resnet20", (32, 32, 3), num_classes=10)
    model.output_shape   # (None, 10): class probabilities
"""

from __future__ import annotations

import keras

MODELS = ("lenet5", "resnet20", "linear")


def build_classifier(name: str, input_shape, num_classes: int, *, filters=(6, 16), dense_units=(120, 84),
                     dropout: float = 0.0) -> keras.Model:
    """``name``'s network from uint8-range images of ``input_shape`` to class probabilities
    (softmax in float32, also under mixed precision). ``filters`` and ``dense_units`` shape
    LeNet-5; ``dropout`` applies before the classifier (not to the linear baseline)."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    if name == "lenet5":
        x = lenet5_features(x, filters, dense_units)
    elif name == "resnet20":
        x = resnet20_features(x)
    elif name == "linear":
        x = keras.layers.Flatten(name="flatten")(x)
    else:
        raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(MODELS)}")
    if dropout and name != "linear":
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    probabilities = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, probabilities, name=name)


def lenet5_features(x, filters=(6, 16), dense_units=(120, 84)):
    """LeNet-5's shape: conv 5x5, pool, conv 5x5, pool, two dense layers (ReLU, max-pool)."""
    for i, filters in enumerate(filters, start=1):
        x = keras.layers.Conv2D(filters, 5, activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    return x


def resnet20_features(x):
    """ResNet-20 for small images (He et al. 2016, CIFAR variant): 3 stages x 3 basic blocks."""

    def conv_bn(x, filters, strides, name, relu=True):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x

    x = conv_bn(x, 16, 1, "stem")
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            strides = 2 if stage > 0 and block == 0 else 1
            name = f"stage{stage + 1}_block{block + 1}"
            shortcut = x
            y = conv_bn(x, filters, strides, f"{name}_a")
            y = conv_bn(y, filters, 1, f"{name}_b", relu=False)
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = keras.layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(shortcut)
                shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
            x = keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([shortcut, y]))
    return keras.layers.GlobalAveragePooling2D(name="pool")(x)
