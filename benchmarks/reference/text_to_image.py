"""A text-conditional GAN (DCGAN-style generator and discriminator, GAN-CLS's matching-aware
discriminator, StackGAN's conditioning augmentation) on the built-in shapes captions, as a
reader of the keras.io GAN examples would write it.

The same networks as `kerasapps run text-to-image` with its defaults: a text encoder
(64-d word embedding, bidirectional LSTM of 64 units), conditioning augmentation (a dense
layer giving mu and log sigma^2 of a 64-d condition, KL weight 0.2), a generator from
[c, z] (64-d noise) to a 4x4x64 seed, then four (nearest upsampling, 3x3 conv, batch norm,
ReLU) blocks of 32, 16, 16, 16 filters and a tanh 3x3 conv to 64x64; a discriminator of
four 4x4 stride-2 convolutions (8 filters doubling, layer norm after the first) joined at
4x4 with the compressed sentence (64-d) replicated over the cells, a 1x1 conv, layer norm,
and a 4x4 conv to one logit. Same losses (discriminator: real + (fake + wrong caption) / 2,
it and the text encoder trained by one Adam; generator: BCE + KL, it and the conditioning
layer trained by another; Adam 3e-4, beta_1 0.5), batch size, precision (float32),
vocabulary (every word of the training captions; kerasapps' shared vocabulary also
reserves <start> and <end>, kept here so the embedding is the same size) and data (one of
each image's captions at random; the mismatched caption is the next example's).

    python -m benchmarks.reference.text_to_image
"""

import collections

import keras
import tensorflow as tf

from kerasapps.data import shapes

BATCH_SIZE = 64
EPOCHS = 12
SIZE = 64
MAX_WORDS = 16
EMBED_DIM = 64
LSTM_UNITS = 64
Z_DIM = 64
COND_DIM = 64
G_FILTERS = 64
D_FILTERS = 8
TEXT_DIM = 64
KL_WEIGHT = 0.2


# -- data -------------------------------------------------------------------
def load_data(train_examples):
    arrays = shapes.generate_arrays("train", train_examples, seed=0, image_size=SIZE)
    captions = arrays["captions"]
    counts = collections.Counter(word for caps in captions for c in caps for word in c.lower().split())
    words = [w for w, n in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))]
    vectorize = keras.layers.TextVectorization(vocabulary=["<start>", "<end>"] + words,
                                               output_sequence_length=MAX_WORDS)
    most = max(len(caps) for caps in captions)
    padded = [caps + [""] * (most - len(caps)) for caps in captions]

    def pair(image, caps):
        # The image in [-1, 1] and one of its captions at random, as word ids.
        count = tf.reduce_sum(tf.cast(tf.strings.length(caps) > 0, tf.int32))
        caption = caps[tf.random.uniform([], maxval=count, dtype=tf.int32)]
        return tf.cast(image, tf.float32) / 127.5 - 1.0, tf.cast(vectorize(caption), tf.int32)

    dataset = tf.data.Dataset.from_tensor_slices((arrays["image"], padded))
    dataset = dataset.shuffle(10_000).map(pair, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(BATCH_SIZE, drop_remainder=True).prefetch(tf.data.AUTOTUNE), vectorize.vocabulary_size()


# -- networks ---------------------------------------------------------------
def build_text_encoder(vocab_size):
    tokens = keras.Input((MAX_WORDS,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, EMBED_DIM, mask_zero=True)(tokens)
    sentence = keras.layers.Bidirectional(keras.layers.LSTM(LSTM_UNITS))(x)
    return keras.Model(tokens, sentence, name="text_encoder")


def build_generator():
    z = keras.Input((Z_DIM,))
    c = keras.Input((COND_DIM,))
    x = keras.layers.Concatenate()([c, z])
    x = keras.layers.Dense(4 * 4 * G_FILTERS, use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Reshape((4, 4, G_FILTERS))(x)
    for filters in (32, 16, 16, 16):  # 8, 16, 32, 64 pixels
        x = keras.layers.UpSampling2D(2)(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
    image = keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(x)
    return keras.Model([z, c], image, name="generator")


def build_discriminator():
    image = keras.Input((SIZE, SIZE, 3))
    sentence = keras.Input((2 * LSTM_UNITS,))
    x = image
    for i, filters in enumerate((D_FILTERS, 2 * D_FILTERS, 4 * D_FILTERS, 8 * D_FILTERS)):  # 32, 16, 8, 4 pixels
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=i == 0)(x)
        if i > 0:
            x = keras.layers.LayerNormalization()(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    # The compressed sentence, replicated over the 4x4 cells.
    t = keras.layers.Dense(TEXT_DIM)(sentence)
    t = keras.layers.LeakyReLU(0.2)(t)
    t = keras.layers.Reshape((1, 1, TEXT_DIM))(t)
    t = keras.layers.UpSampling2D(4)(t)
    x = keras.layers.Concatenate()([x, t])
    x = keras.layers.Conv2D(8 * D_FILTERS, 1, use_bias=False)(x)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Conv2D(1, 4, padding="valid")(x)
    logit = keras.layers.Flatten()(x)
    return keras.Model([image, sentence], logit, name="discriminator")


# -- the GAN ----------------------------------------------------------------
class ConditionalGAN(keras.Model):
    def __init__(self, text_encoder, generator, discriminator):
        super().__init__()
        self.text_encoder = text_encoder
        self.generator = generator
        self.discriminator = discriminator
        # Conditioning augmentation: mu and log sigma^2 of the condition, from the sentence.
        self.ca_dense = keras.layers.Dense(2 * COND_DIM)
        self.ca_dense.build((None, 2 * LSTM_UNITS))
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.kl_tracker]

    def condition(self, sentence):
        mu, log_var = tf.split(self.ca_dense(sentence), 2, axis=-1)
        log_var = tf.clip_by_value(log_var, -10.0, 10.0)
        eps = tf.random.normal(tf.shape(mu))
        kl = 0.5 * tf.reduce_mean(tf.exp(log_var) + tf.square(mu) - 1.0 - log_var)
        return mu + tf.exp(0.5 * log_var) * eps, kl

    def train_step(self, data):
        images, tokens = data
        batch_size = tf.shape(images)[0]
        wrong_tokens = tf.roll(tokens, shift=1, axis=0)  # the next example's caption: a mismatch
        z = tf.random.normal((batch_size, Z_DIM))

        # Discriminator (and text encoder): real + matching text is real; fake, or real + wrong text, is fake.
        with tf.GradientTape() as tape:
            sentence = self.text_encoder(tokens, training=True)
            wrong_sentence = self.text_encoder(wrong_tokens, training=True)
            c, _ = self.condition(tf.stop_gradient(sentence))
            fake = self.generator([z, c], training=True)
            real_logit = self.discriminator([images, sentence], training=True)
            fake_logit = self.discriminator([tf.stop_gradient(fake), sentence], training=True)
            wrong_logit = self.discriminator([images, wrong_sentence], training=True)
            d_loss = (self.bce(tf.ones_like(real_logit), real_logit)
                      + 0.5 * (self.bce(tf.zeros_like(fake_logit), fake_logit)
                               + self.bce(tf.zeros_like(wrong_logit), wrong_logit)))
        d_vars = self.discriminator.trainable_variables + self.text_encoder.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))

        # Generator (and conditioning): fool the updated discriminator, keep the condition near N(0, I).
        sentence = tf.stop_gradient(self.text_encoder(tokens, training=True))
        with tf.GradientTape() as tape:
            c, kl = self.condition(sentence)
            fake = self.generator([z, c], training=True)
            fake_logit = self.discriminator([fake, sentence], training=True)
            g_loss = self.bce(tf.ones_like(fake_logit), fake_logit) + KL_WEIGHT * kl
        g_vars = self.generator.trainable_variables + self.ca_dense.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}


def build_model(vocab_size):
    model = ConditionalGAN(build_text_encoder(vocab_size), build_generator(), build_discriminator())
    model.compile(d_optimizer=keras.optimizers.Adam(3e-4, beta_1=0.5),
                  g_optimizer=keras.optimizers.Adam(3e-4, beta_1=0.5))
    model.built = True  # its parts are built; it has no call() of its own
    return model


def build(train_examples=6_000):
    dataset, vocab_size = load_data(train_examples)
    return build_model(vocab_size), dataset


if __name__ == "__main__":
    model, dataset = build()
    model.fit(dataset, epochs=EPOCHS)
