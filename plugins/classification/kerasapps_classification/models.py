"""The classifiers: LeNet-5, ResNet-20 (CIFAR variant) and a linear baseline, as Keras functional models.

Example::

    model = build_classifier("resnet20", (32, 32, 3), num_classes=10)
    model.output_shape   # (None, 10): class probabilities
"""

from __future__ import annotations

import keras

MODELS = ("lenet5", "resnet20", "linear")


def build_classifier(name: str, input_shape, num_classes: int, *, filters=(6, 16), dense_units=(120, 84),
                     dropout: float = 0.0, inner_widths=(), stage_widths=()) -> keras.Model:
    """``name``'s network from uint8-range images of ``input_shape`` to class probabilities
    (softmax in float32, also under mixed precision). ``filters`` and ``dense_units`` shape
    LeNet-5, ``stage_widths`` ResNet-20's residual streams (empty: 16, 32, 64) and
    ``inner_widths`` its inner convolutions (empty: the stage widths); ``dropout`` applies before
    the classifier (not to the linear baseline)."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    if name == "lenet5":
        x = lenet5_features(x, filters, dense_units)
    elif name == "resnet20":
        x = resnet20_features(x, inner_widths, stage_widths)
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


def resnet20_features(x, inner_widths=(), stage_widths=()):
    """ResNet-20 for small images (He et al. 2016, CIFAR variant): 3 stages x 3 basic blocks.
    ``stage_widths`` (3 values) is each stage's block-output width, the residual stream that the
    stem or the stage's projection shortcut and every block's second convolution write (empty:
    16, 32, 64); ``inner_widths`` (9 values, block order) each block's first convolution (empty:
    its stage's width). ``kerasapps compress`` narrows both."""
    stage_widths = list(stage_widths) or [16, 32, 64]
    if len(stage_widths) != 3:
        raise ValueError(f"stage_widths: ResNet-20 has 3 stages, got {len(stage_widths)} widths")
    inner_widths = list(inner_widths) or [width for width in stage_widths for _ in range(3)]
    if len(inner_widths) != 9:
        raise ValueError(f"inner_widths: ResNet-20 has 9 blocks, got {len(inner_widths)} widths")

    def conv_bn(x, filters, strides, name, relu=True):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x

    x = conv_bn(x, stage_widths[0], 1, "stem")
    for stage, filters in enumerate(stage_widths):
        for block in range(3):
            strides = 2 if stage > 0 and block == 0 else 1
            name = f"stage{stage + 1}_block{block + 1}"
            shortcut = x
            y = conv_bn(x, inner_widths[stage * 3 + block], strides, f"{name}_a")
            y = conv_bn(y, filters, 1, f"{name}_b", relu=False)
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = keras.layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(shortcut)
                shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
            x = keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([shortcut, y]))
    return keras.layers.GlobalAveragePooling2D(name="pool")(x)


class AdversarialClassifier(keras.Model):
    """A functional classifier whose ``train_step`` also trains on adversarial examples made from
    each batch: FGSM (Goodfellow et al. 2015) or PGD with a random start (Madry et al. 2018), in
    the L-infinity ball of ``epsilon`` (pixels of 0..255). The loss is ``(1 - adversarial_weight)``
    times the clean batch's plus ``adversarial_weight`` times the adversarial batch's (0.5: Goodfellow's
    mix; 1.0: Madry's adversarial-only). Its layers, weights and ``call`` are the plain
    classifier's, so checkpoints, best weights and the export are exactly as before.

    Example::

        plain = build_classifier("lenet5", (28, 28, 1), 10)
        model = AdversarialClassifier(plain.inputs, plain.outputs, attack="pgd", epsilon=76.5, steps=7)
    """

    def __init__(self, inputs, outputs, *, attack: str, epsilon: float, steps: int = 10, step_size=None,
                 adversarial_weight: float = 0.5, name=None):
        super().__init__(inputs=inputs, outputs=outputs, name=name)
        self.attack, self.epsilon, self.steps = attack, float(epsilon), int(steps)
        self.step_size, self.adversarial_weight = step_size, float(adversarial_weight)

    def adversarial_examples(self, images, labels):
        """The attack on one batch, against the model in inference mode (no dropout)."""
        from kerasapps.api import fgsm, pgd

        def loss_fn(candidate, labels):
            return self.compute_loss(x=candidate, y=labels, y_pred=self(candidate, training=False), training=False)

        if self.attack == "fgsm":
            return fgsm(loss_fn, images, labels, self.epsilon)
        return pgd(loss_fn, images, labels, self.epsilon, self.steps, self.step_size)

    def train_step(self, data):
        import tensorflow as tf

        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        adversarial = tf.stop_gradient(self.adversarial_examples(images, labels))
        with tf.GradientTape() as tape:
            clean_scores = self(images, training=True)
            adversarial_scores = self(adversarial, training=True)
            clean_loss = self.compute_loss(x=images, y=labels, y_pred=clean_scores, sample_weight=sample_weight)
            adversarial_loss = self.compute_loss(x=adversarial, y=labels, y_pred=adversarial_scores,
                                                 sample_weight=sample_weight)
            loss = (1 - self.adversarial_weight) * clean_loss + self.adversarial_weight * adversarial_loss
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        # compute_loss shares the loss among replicas; the logged loss is the whole batch's.
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync if tf.distribute.has_strategy() else 1
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss * replicas)
        return self.compute_metrics(images, labels, clean_scores, sample_weight=sample_weight)
