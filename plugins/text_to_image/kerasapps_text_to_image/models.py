"""The text-to-image GAN: text encoder, conditioning augmentation, generator, discriminator.

StackGAN stage I (Zhang et al. 2017) with the matching-aware discriminator of
GAN-CLS (Reed et al. 2016):

- a text encoder (embedding + bidirectional LSTM) turns word ids into a sentence vector;
- conditioning augmentation (CA) maps it to a Gaussian ``N(mu, sigma)`` and samples
  the condition ``c = mu + sigma * eps``, with a KL term pulling the Gaussian
  towards ``N(0, I)`` (a smoother condition manifold from few captions);
- a DCGAN-style generator turns ``[z, c]`` into a 64x64 image (tanh, -1..1);
- the discriminator scores (image, sentence) pairs: real image + its caption is
  real; a generated image, or a real image with a mismatched caption, is fake.

All randomness (``z``, ``eps`` and which caption is the mismatched one) comes in
with the batch, so one step is a pure function of the batch and the weights: the
same global batch gives the same step on one device or on several replicas.

Example::

    gan = build_gan(vocab_size=40, max_length=16, image_size=64)
    logs = gan.train_step({"image": images, "tokens": ids, "wrong_tokens": other_ids,
                           "z": z, "eps": eps})   # {"d_loss": ..., "g_loss": ..., ...}
    images = gan.generate(ids, z, eps)           # float32 [N, 64, 64, 3] in -1..1
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def _batch_norm(name):
    # Synchronised: under several replicas, statistics over the global batch, so a
    # step does not depend on how the batch is split.
    return keras.layers.BatchNormalization(synchronized=True, momentum=0.9, name=name)


def build_text_encoder(vocab_size: int, max_length: int, embed_dim: int, lstm_units: int) -> keras.Model:
    """Word ids ``[N, T]`` -> sentence vector ``[N, 2 * lstm_units]`` (both directions' last states).

    Padding (id 0) is masked, so a caption's vector does not depend on its padding;
    an empty caption (all padding) gives the zero vector.
    """
    tokens = keras.Input((max_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="word_embedding")(tokens)
    x = keras.layers.Bidirectional(keras.layers.LSTM(lstm_units), name="bilstm")(x)
    return keras.Model(tokens, x, name="text_encoder")


def build_conditioning(sentence_dim: int, cond_dim: int, augmentation: bool) -> keras.Model:
    """Sentence vector -> ``[mu, log_var]`` (``2 * cond_dim``) with CA, else ``c`` itself (``cond_dim``)."""
    sentence = keras.Input((sentence_dim,), name="sentence")
    x = keras.layers.Dense(2 * cond_dim if augmentation else cond_dim, name="ca_fc")(sentence)
    x = keras.layers.LeakyReLU(0.2, name="ca_act")(x) if not augmentation else x
    return keras.Model(sentence, x, name="conditioning")


def build_generator(z_dim: int, cond_dim: int, image_size: int, filters: int) -> keras.Model:
    """``[z, c]`` -> image ``[S, S, 3]`` in -1..1: 4x4 seed, then (upsample, conv, BN, ReLU) blocks.

    Nearest upsampling + 3x3 conv (StackGAN's choice) avoids the checkerboard of
    transposed convolutions.
    """
    z = keras.Input((z_dim,), name="z")
    c = keras.Input((cond_dim,), name="c")
    x = keras.layers.Concatenate(name="z_c")([c, z])
    x = keras.layers.Dense(4 * 4 * filters, use_bias=False, name="fc")(x)
    x = keras.layers.ReLU(name="fc_relu")(_batch_norm("fc_bn")(x))
    x = keras.layers.Reshape((4, 4, filters), name="seed")(x)
    for i in range(int(math.log2(image_size // 4))):
        filters = max(filters // 2, 16)
        x = keras.layers.UpSampling2D(2, name=f"up{i + 1}")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = keras.layers.ReLU(name=f"relu{i + 1}")(_batch_norm(f"bn{i + 1}")(x))
    image = keras.layers.Conv2D(3, 3, padding="same", activation="tanh", dtype="float32", name="image")(x)
    return keras.Model([z, c], image, name="generator")


def build_discriminator(image_size: int, sentence_dim: int, filters: int, text_dim: int) -> keras.Model:
    """(image, sentence vector) -> one logit: is this a real image that matches the text?

    The image is strided down to 4x4; the compressed sentence vector is
    replicated over those 4x4 cells and joined to the image features (StackGAN).
    Layer normalisation, not batch normalisation: the generator's step shows the
    discriminator a batch of fakes only, whose batch statistics would differ from
    the mixed batch of its own step and hide what makes a fake a fake.
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    sentence = keras.Input((sentence_dim,), name="sentence")
    x = image
    for i in range(int(math.log2(image_size // 4))):
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=i == 0, name=f"conv{i + 1}")(x)
        if i:  # DCGAN: no normalisation on the first layer
            x = keras.layers.LayerNormalization(name=f"ln{i + 1}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
        filters *= 2
    t = keras.layers.Dense(text_dim, name="text_fc")(sentence)
    t = keras.layers.LeakyReLU(0.2, name="text_lrelu")(t)
    t = keras.layers.Reshape((1, 1, text_dim), name="text_cell")(t)
    t = keras.layers.UpSampling2D(4, name="text_tiled")(t)
    x = keras.layers.Concatenate(name="image_text")([x, t])
    x = keras.layers.Conv2D(filters // 2, 1, use_bias=False, name="joint_conv")(x)
    x = keras.layers.LeakyReLU(0.2, name="joint_lrelu")(keras.layers.LayerNormalization(name="joint_ln")(x))
    x = keras.layers.Conv2D(1, 4, padding="valid", dtype="float32", name="logit_conv")(x)
    logit = keras.layers.Flatten(name="logit")(x)
    return keras.Model([image, sentence], logit, name="discriminator")


def _bce(labels_value: float, logits):
    """Per-example sigmoid cross-entropy against a constant label: ``[N, 1]`` -> ``[N]``."""
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), labels_value), logits), axis=-1)


class TextToImageGAN(keras.Model):
    """A text-conditional GAN with its own ``train_step``/``test_step`` and two optimizers.

    The discriminator's optimizer trains the discriminator and the text encoder
    (the matching-aware loss is an image-text matching objective, which gives the
    encoder its meaning); the generator's optimizer trains the generator and the
    conditioning layer. The generator sees the sentence vector through
    ``stop_gradient``: it cannot bend the text space to make its own job easier.

    Per-example losses are averaged over the global batch
    (``tf.nn.compute_average_loss``) so that replicas' gradients sum to the
    global mean; the logged losses are ``Mean`` metrics of the unscaled
    per-example values, right under any number of replicas.

    Example::

        gan = TextToImageGAN(encoder, conditioning, generator, discriminator)
        gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
        Trainer(gan, strategy).fit(dataset, epochs=1)
    """

    def __init__(self, text_encoder, conditioning, generator, discriminator, *, augmentation: bool = True,
                 kl_weight: float = 1.0, mismatched_text: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.text_encoder = text_encoder
        self.conditioning = conditioning
        self.generator = generator
        self.discriminator = discriminator
        self.augmentation = augmentation
        self.kl_weight = kl_weight
        self.mismatched_text = mismatched_text
        self.trackers = {name: keras.metrics.Mean(name=name) for name in (
            "d_loss", "g_loss", "kl", "real_score", "wrong_score", "fake_score")}
        self.built = True  # no call(): the engine must not try to build it

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        # ``model.optimizer`` is the generator's: the core's backup and weight
        # files then hold both (the discriminator's travels as an attribute).
        super().compile(optimizer=g_optimizer, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    @property
    def d_variables(self):
        return self.discriminator.trainable_variables + self.text_encoder.trainable_variables

    @property
    def g_variables(self):
        return self.generator.trainable_variables + self.conditioning.trainable_variables

    def build_optimizers(self):
        """Create both optimizers' slots (inside the strategy scope, before any step)."""
        self.d_optimizer.build(self.d_variables)
        self.g_optimizer.build(self.g_variables)

    @property
    def metrics(self):
        return list(self.trackers.values())

    # -- the pieces ---------------------------------------------------------
    def condition(self, sentence, eps, training=False):
        """Sentence vector + ``eps ~ N(0, I)`` -> (condition ``c``, per-example KL)."""
        stats = tf.cast(self.conditioning(sentence, training=training), tf.float32)
        if not self.augmentation:
            return stats, tf.zeros(tf.shape(stats)[:1])
        mu, log_var = tf.split(stats, 2, axis=-1)
        log_var = tf.clip_by_value(log_var, -10.0, 10.0)  # exp() stays finite
        c = mu + tf.exp(0.5 * log_var) * eps
        kl = 0.5 * tf.reduce_mean(tf.exp(log_var) + tf.square(mu) - 1.0 - log_var, axis=-1)
        return c, kl

    def generate(self, tokens, z, eps, training=False):
        """Word ids, noise -> images float32 ``[N, S, S, 3]`` in -1..1."""
        sentence = self.text_encoder(tokens, training=training)
        c, _ = self.condition(sentence, eps, training=training)
        return self.generator([z, c], training=training)

    def _pair_losses(self, data, training):
        images, tokens, wrong = data["image"], data["tokens"], data["wrong_tokens"]
        n = tf.shape(images)[0]
        sentence = self.text_encoder(tokens, training=training)
        c, kl = self.condition(tf.stop_gradient(sentence), data["eps"], training=training)
        fake = self.generator([data["z"], c], training=training)
        if self.mismatched_text:
            wrong_sentence = self.text_encoder(wrong, training=training)
            logits = self.discriminator(
                [tf.concat([images, tf.stop_gradient(fake), images], 0),
                 tf.concat([sentence, sentence, wrong_sentence], 0)], training=training)
            real_logit, fake_logit, wrong_logit = logits[:n], logits[n:2 * n], logits[2 * n:]
            d_loss = _bce(1.0, real_logit) + 0.5 * (_bce(0.0, fake_logit) + _bce(0.0, wrong_logit))
        else:
            logits = self.discriminator(
                [tf.concat([images, tf.stop_gradient(fake)], 0), tf.concat([sentence, sentence], 0)],
                training=training)
            real_logit, fake_logit = logits[:n], logits[n:]
            wrong_logit = self.discriminator([images, self.text_encoder(wrong, training=False)], training=False)
            d_loss = _bce(1.0, real_logit) + _bce(0.0, fake_logit)
        scores = {k: tf.sigmoid(tf.cast(v[:, 0], tf.float32))
                  for k, v in (("real_score", real_logit), ("wrong_score", wrong_logit), ("fake_score", fake_logit))}
        return fake, c, kl, d_loss, scores

    def _update(self, values):
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {m.name: m.result() for m in self.metrics}

    # -- training -----------------------------------------------------------
    def train_step(self, data):
        # Discriminator (and text encoder) step.
        with tf.GradientTape() as tape:
            _, _, _, d_loss, scores = self._pair_losses(data, training=True)
            scaled = tf.nn.compute_average_loss(d_loss)
        grads = tape.gradient(scaled, self.d_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.d_variables))
        # Generator (and conditioning) step, against the updated discriminator.
        sentence = tf.stop_gradient(self.text_encoder(data["tokens"], training=True))
        with tf.GradientTape() as tape:
            c, kl = self.condition(sentence, data["eps"], training=True)
            fake = self.generator([data["z"], c], training=True)
            g_adv = _bce(1.0, self.discriminator([fake, sentence], training=True))
            g_loss = g_adv + self.kl_weight * kl
            scaled = tf.nn.compute_average_loss(g_loss)
        grads = tape.gradient(scaled, self.g_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.g_variables))
        return self._update({"d_loss": d_loss, "g_loss": g_loss, "kl": kl, **scores})

    def test_step(self, data):
        fake, c, kl, d_loss, scores = self._pair_losses(data, training=False)
        sentence = self.text_encoder(data["tokens"], training=False)
        g_loss = _bce(1.0, self.discriminator([fake, sentence], training=False)) + self.kl_weight * kl
        return self._update({"d_loss": d_loss, "g_loss": g_loss, "kl": kl, **scores})


def build_gan(vocab_size: int, max_length: int, image_size: int = 64, *, embed_dim: int = 64,
              lstm_units: int = 64, z_dim: int = 64, cond_dim: int = 64, generator_filters: int = 128,
              discriminator_filters: int = 16, text_dim: int = 64, augmentation: bool = True,
              kl_weight: float = 1.0, mismatched_text: bool = True, learning_rate: float = 2e-4,
              text_encoder: keras.Model | None = None) -> TextToImageGAN:
    """Build, compile and build the optimizers of the GAN (call inside ``strategy.scope()``).

    ``text_encoder``: a given encoder (token ids ``[N, max_length]`` -> sentence vector), e.g. a
    frozen pretrained one, instead of a new BiLSTM trained with the discriminator.
    """
    encoder = text_encoder or build_text_encoder(vocab_size, max_length, embed_dim, lstm_units)
    sentence_dim = int(encoder.output.shape[-1])
    gan = TextToImageGAN(
        encoder,
        build_conditioning(sentence_dim, cond_dim, augmentation),
        build_generator(z_dim, cond_dim, image_size, generator_filters),
        build_discriminator(image_size, sentence_dim, discriminator_filters, text_dim),
        augmentation=augmentation, kl_weight=kl_weight, mismatched_text=mismatched_text, name="stackgan_stage1",
    )
    gan.compile(keras.optimizers.Adam(learning_rate, beta_1=0.5, name="d_adam"),
                keras.optimizers.Adam(learning_rate, beta_1=0.5, name="g_adam"))
    gan.build_optimizers()
    return gan
