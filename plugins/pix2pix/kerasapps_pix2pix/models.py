"""pix2pix networks and the adversarial training step (Isola et al. 2017, appendix 6.1).

- :func:`unet_generator`: encoder-decoder with skip connections; 4x4 stride-2
  convolutions down to 1x1, LeakyReLU(0.2) down, ReLU up, dropout in the first
  three decoder blocks (the paper's only noise source), tanh output in [-1, 1].
- :func:`patchgan_discriminator`: C64-C128-C256-C512 then a 1-channel map of
  logits, one per overlapping patch (70x70 with 3 layers), conditioned on the
  input image by channel concatenation.
- :class:`Pix2Pix`: the two networks, two Adams and a ``train_step`` that is
  correct under every ``tf.distribute`` strategy.

Normalisation: the paper uses batch norm with batch size 1 and test-batch
statistics, i.e. instance normalisation; that is the default here, and it also
makes one replica's result independent of what the other replicas hold.

Example::

    generator = unet_generator(64, filters=32)
    discriminator = patchgan_discriminator(64, filters=32)
    model = Pix2Pix(generator, discriminator)
    model.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    logs = model.train_step((inputs, targets))   # {"d_loss": ..., "g_loss": ..., ...}
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from kerasapps.api import image_quality

# The paper's weights initialisation: N(0, 0.02).
INIT = keras.initializers.RandomNormal(0.0, 0.02)


def _normalization(kind: str, name: str):
    if kind == "instance":
        # groups=-1: one group per channel, statistics over H x W of each example.
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def unet_generator(image_size: int, filters: int = 64, dropout: float = 0.5,
                   normalization: str = "instance", channels: int = 3, max_filters_factor: int = 8):
    """U-Net generator: ``log2(image_size)`` down blocks to 1x1, as many up blocks with skips.

    Widths double from ``filters`` up to ``8 * filters`` (the paper: 64 -> 512 at 256x256).
    Returns a functional ``keras.Model`` mapping ``[N, S, S, channels]`` in [-1, 1] to the same.
    """
    depth = int(math.log2(image_size))
    widths = [filters * min(2**i, max_filters_factor) for i in range(depth)]
    inputs = keras.Input((image_size, image_size, channels), name="input_image")
    x = inputs
    skips = []
    for i, width in enumerate(widths):
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", use_bias=False,
                                kernel_initializer=INIT, name=f"down{i + 1}_conv")(x)
        # No norm on the first block (paper) nor at the 1x1 bottleneck, where
        # instance statistics over one pixel would zero every activation.
        if 0 < i < depth - 1:
            x = _normalization(normalization, f"down{i + 1}_norm")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down{i + 1}_act")(x)
        skips.append(x)
    for j, (width, skip) in enumerate(zip(reversed(widths[:-1]), reversed(skips[:-1]))):
        x = keras.layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=INIT, name=f"up{j + 1}_conv")(x)
        x = _normalization(normalization, f"up{j + 1}_norm")(x)
        if j < 3 and dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"up{j + 1}_dropout")(x)
        x = keras.layers.ReLU(name=f"up{j + 1}_act")(x)
        x = keras.layers.Concatenate(name=f"up{j + 1}_skip")([x, skip])
    x = keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", kernel_initializer=INIT,
                                     name="output_conv")(x)
    outputs = keras.layers.Activation("tanh", dtype="float32", name="output_image")(x)
    return keras.Model(inputs, outputs, name="unet_generator")


def patchgan_discriminator(image_size: int, filters: int = 64, layers: int = 3,
                           normalization: str = "instance", channels: int = 3):
    """PatchGAN: one real/fake logit per image patch; ``layers=3`` gives the paper's 70x70 patches.

    Takes ``[input_image, target_or_generated]`` (both [-1, 1]); returns logits ``[N, h, w, 1]``.
    """
    input_image = keras.Input((image_size, image_size, channels), name="input_image")
    candidate = keras.Input((image_size, image_size, channels), name="candidate_image")
    x = keras.layers.Concatenate(name="condition")([input_image, candidate])
    # 4x4 convolutions with 1 pixel of zero padding, as in the paper's code: stride 2
    # halves the side, stride 1 takes one off (256 -> 128, 64, 32, 31 -> 30x30 logits).
    for i in range(layers + 1):
        width = filters * min(2**i, 8)
        last = i == layers  # the stride-1 block before the logits (C512 in the paper)
        x = keras.layers.ZeroPadding2D(1, name=f"block{i + 1}_pad")(x)
        x = keras.layers.Conv2D(width, 4, strides=1 if last else 2, use_bias=i == 0,
                                kernel_initializer=INIT, name=f"block{i + 1}_conv")(x)
        if i > 0:
            x = _normalization(normalization, f"block{i + 1}_norm")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"block{i + 1}_act")(x)
    x = keras.layers.ZeroPadding2D(1, name="logits_pad")(x)
    logits = keras.layers.Conv2D(1, 4, kernel_initializer=INIT, dtype="float32", name="patch_logits")(x)
    return keras.Model([input_image, candidate], logits, name="patchgan_discriminator")


MODEL_RANGE = (-1.0, 1.0)  # the generator's tanh range; every metric is measured in [0, 1]


class Pix2Pix(keras.Model):
    """A conditional GAN: ``generator(input) -> output`` judged by ``discriminator([input, image])``.

    ``train_step`` updates both networks from one forward pass (as the reference
    TensorFlow implementation does): the discriminator on
    ``(BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)) / 2``, the generator on
    ``BCE(D(x, G(x)), 1) + l1_weight * |y - G(x)|``. Per-example losses are
    summed over the replicas and divided by the *global* batch size, so every
    strategy takes the same step; the logged losses are the unscaled means.

    Example::

        model = Pix2Pix(unet_generator(32, 8), patchgan_discriminator(32, 8))
        model.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
        model(inputs)   # translated images in [-1, 1], i.e. generator(inputs, training=False)
    """

    def __init__(self, generator, discriminator, l1_weight: float = 100.0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.l1_weight = float(l1_weight)
        self.built = True  # the sub-models are built already
        mean = keras.metrics.Mean
        self.trackers = {name: mean(name=name) for name in ("d_loss", "g_loss", "gan_loss", "l1_loss")}
        self.quality = {name: mean(name=name) for name in ("l1", "psnr", "ssim")}

    def compile(self, generator_optimizer, discriminator_optimizer, **kwargs):
        """Attach and build both optimizers (call inside the strategy scope).

        The generator's Adam is ``model.optimizer`` (saved by the core's
        checkpoints like any model's); the discriminator's is a tracked
        attribute, saved with the model's weights and checkpoints as well.
        """
        super().compile(optimizer=generator_optimizer, **kwargs)
        self.discriminator_optimizer = discriminator_optimizer
        # Built now, in the scope: created inside the first distributed step they fail.
        generator_optimizer.build(self.generator.trainable_variables)
        discriminator_optimizer.build(self.discriminator.trainable_variables)

    def call(self, inputs, training=False):
        """The translation: ``model(inputs)`` is ``generator(inputs)``."""
        return self.generator(inputs, training=training)

    @property
    def generator_optimizer(self):
        return self.optimizer

    @property
    def metrics(self):
        # Listed so that the engine resets them each epoch and reads them after reduction.
        return list(self.trackers.values()) + list(self.quality.values())

    @staticmethod
    def _global_batch_size(batch):
        # Summed over replicas: exact for a short last batch too (16 + 15 under 2 replicas).
        local = tf.shape(batch, out_type=tf.int64)[0]
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)

    @staticmethod
    def _patch_bce(label, logits):
        """Per-example binary cross-entropy of every patch logit against ``label``, averaged over patches."""
        logits = tf.cast(logits, tf.float32)
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label), logits=logits)
        return tf.reduce_mean(loss, axis=[1, 2, 3])

    def train_step(self, data):
        inputs, targets = data
        global_batch = self._global_batch_size(inputs)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            generated = self.generator(inputs, training=True)
            real_logits = self.discriminator([inputs, targets], training=True)
            fake_logits = self.discriminator([inputs, generated], training=True)
            d_loss = 0.5 * (self._patch_bce(1.0, real_logits) + self._patch_bce(0.0, fake_logits))
            gan_loss = self._patch_bce(1.0, fake_logits)
            l1_loss = tf.reduce_mean(tf.abs(tf.cast(targets, tf.float32) - generated), axis=[1, 2, 3])
            g_loss = gan_loss + self.l1_weight * l1_loss
            # Per-replica share of the global mean: the optimizers sum gradients over replicas.
            scaled_d = tf.nn.compute_average_loss(d_loss, global_batch_size=global_batch)
            scaled_g = tf.nn.compute_average_loss(g_loss, global_batch_size=global_batch)
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables
        self.discriminator_optimizer.apply_gradients(zip(d_tape.gradient(scaled_d, d_vars), d_vars))
        self.generator_optimizer.apply_gradients(zip(g_tape.gradient(scaled_g, g_vars), g_vars))
        # Logged unscaled, per example: the metric sums over replicas give the true mean.
        for name, value in (("d_loss", d_loss), ("g_loss", g_loss), ("gan_loss", gan_loss), ("l1_loss", l1_loss)):
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def test_step(self, data):
        inputs, targets = data
        generated = self.generator(inputs, training=False)
        for name, value in zip(("l1", "psnr", "ssim"), image_quality(generated, targets, MODEL_RANGE)):
            self.quality[name].update_state(value)
        return {name: metric.result() for name, metric in self.quality.items()}
