"""pix2pix (a U-Net generator and a PatchGAN discriminator, GAN + 100 x L1) on the built-in
shapes scenes, as a reader of the pix2pix tutorial would write it with Keras.

The same networks (4x4 stride-2 convolutions down to 1x1 and back up with skips,
32 filters doubling to 256, instance normalisation, dropout 0.5 in the first three
decoder blocks; a C32-C64-C128-C256 PatchGAN on the input and candidate images
concatenated), losses (discriminator: (BCE(real, 1) + BCE(fake, 0)) / 2; generator:
BCE(fake, 1) + 100 x L1), two Adams (2e-4, beta_1 0.5), batch size, precision (float32)
and data (the colour-coded object map -> the rendered scene, random jitter: resize to
72, random crop back to 64, random mirror) as `kerasapps run pix2pix`.

    python -m benchmarks.reference.pix2pix
"""

import math

import keras
import numpy as np
import tensorflow as tf

from kerasapps.data import shapes

BATCH_SIZE = 16
EPOCHS = 10
SIZE = 64
FILTERS = 32
LAMBDA = 100.0
INIT = keras.initializers.RandomNormal(0.0, 0.02)


# -- data -------------------------------------------------------------------
def random_jitter(input_image, real_image):
    # Resize up, crop back at random, mirror at random: the same for both images.
    both = tf.concat([input_image, real_image], axis=-1)
    big = int(math.ceil(SIZE * 286 / 256))
    both = tf.image.resize(both, [big, big])
    both = tf.image.random_crop(both, [SIZE, SIZE, 6])
    both = tf.image.random_flip_left_right(both)
    return both[..., :3], both[..., 3:]


def normalize(input_image, real_image):
    return input_image / 127.5 - 1.0, real_image / 127.5 - 1.0


def load_train(input_image, real_image):
    input_image, real_image = random_jitter(tf.cast(input_image, tf.float32), tf.cast(real_image, tf.float32))
    return normalize(tf.round(input_image), tf.round(real_image))


def load_data(train_examples):
    arrays = shapes.generate_arrays("train", train_examples, seed=0, image_size=SIZE)
    # Input: each pixel's object class in its colour; target: the rendered scene.
    inputs = np.array(shapes.MASK_COLOURS, np.uint8)[arrays["mask"]]
    dataset = tf.data.Dataset.from_tensor_slices((inputs, arrays["image"]))
    dataset = dataset.map(load_train, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.shuffle(5_000).batch(BATCH_SIZE, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


# -- networks ---------------------------------------------------------------
def instance_norm():
    # pix2pix's batch norm at batch size 1 = instance norm: one group per channel.
    return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)


def downsample(x, filters, apply_norm=True):
    x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", kernel_initializer=INIT, use_bias=False)(x)
    if apply_norm:
        x = instance_norm()(x)
    return keras.layers.LeakyReLU(0.2)(x)


def upsample(x, filters, apply_dropout=False):
    x = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", kernel_initializer=INIT,
                                     use_bias=False)(x)
    x = instance_norm()(x)
    if apply_dropout:
        x = keras.layers.Dropout(0.5)(x)
    return keras.layers.ReLU()(x)


def Generator():
    inputs = keras.Input((SIZE, SIZE, 3))
    # 64 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1; no norm on the first block nor at the 1x1 bottleneck.
    widths = [FILTERS * min(2**i, 8) for i in range(int(math.log2(SIZE)))]
    x, skips = inputs, []
    for i, filters in enumerate(widths):
        x = downsample(x, filters, apply_norm=0 < i < len(widths) - 1)
        skips.append(x)
    for i, (filters, skip) in enumerate(zip(reversed(widths[:-1]), reversed(skips[:-1]))):
        x = upsample(x, filters, apply_dropout=i < 3)
        x = keras.layers.Concatenate()([x, skip])
    outputs = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", kernel_initializer=INIT,
                                           activation="tanh")(x)
    return keras.Model(inputs, outputs, name="generator")


def Discriminator():
    input_image = keras.Input((SIZE, SIZE, 3), name="input_image")
    target_image = keras.Input((SIZE, SIZE, 3), name="target_image")
    x = keras.layers.Concatenate()([input_image, target_image])
    for i, filters in enumerate([FILTERS, 2 * FILTERS, 4 * FILTERS, 8 * FILTERS]):
        last = i == 3
        x = keras.layers.ZeroPadding2D(1)(x)
        x = keras.layers.Conv2D(filters, 4, strides=1 if last else 2, kernel_initializer=INIT, use_bias=i == 0)(x)
        if i > 0:
            x = instance_norm()(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.ZeroPadding2D(1)(x)
    logits = keras.layers.Conv2D(1, 4, kernel_initializer=INIT)(x)  # one logit per patch
    return keras.Model([input_image, target_image], logits, name="discriminator")


# -- the GAN ----------------------------------------------------------------
class Pix2Pix(keras.Model):
    def __init__(self, generator, discriminator):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.l1_tracker = keras.metrics.Mean(name="l1_loss")

    def compile(self, g_optimizer, d_optimizer):
        super().compile()
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.l1_tracker]

    def train_step(self, data):
        input_image, target = data
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            gen_output = self.generator(input_image, training=True)
            real_logits = self.discriminator([input_image, target], training=True)
            fake_logits = self.discriminator([input_image, gen_output], training=True)
            d_loss = 0.5 * (self.bce(tf.ones_like(real_logits), real_logits)
                            + self.bce(tf.zeros_like(fake_logits), fake_logits))
            gan_loss = self.bce(tf.ones_like(fake_logits), fake_logits)
            l1_loss = tf.reduce_mean(tf.abs(target - gen_output))
            g_loss = gan_loss + LAMBDA * l1_loss
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_loss, self.generator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.l1_tracker.update_state(l1_loss)
        return {m.name: m.result() for m in self.metrics}


def build_model():
    model = Pix2Pix(Generator(), Discriminator())
    model.compile(g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                  d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    model.build((None, SIZE, SIZE, 3))  # so that summary() and count_params() work before fit
    return model


def build(train_examples=2_000):
    return build_model(), load_data(train_examples)


if __name__ == "__main__":
    model, dataset = build()
    model.fit(dataset, epochs=EPOCHS)
