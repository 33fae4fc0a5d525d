"""Show and Tell (a small CNN encoder + LSTM decoder) on the built-in shapes captions,
as a keras-io reader would write it.

The same model, batch size, learning-rate schedule, precision (float32), vocabulary
(words seen at least twice) and data (one of each image's captions at random, teacher
forcing) as `kerasapps run captioning`.

    python -m benchmarks.reference.captioning
"""

import collections

import keras
import tensorflow as tf

from kerasapps.data import shapes

BATCH_SIZE = 64
EPOCHS = 12
SIZE = 64
MAX_WORDS = 16


def load_data(train_examples):
    arrays = shapes.generate_arrays("train", train_examples, seed=0, image_size=SIZE)
    captions = arrays["captions"]
    counts = collections.Counter(word for caps in captions for c in caps for word in c.lower().split())
    words = [w for w, n in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if n >= 2]
    vectorize = keras.layers.TextVectorization(vocabulary=["<start>", "<end>"] + words,
                                               output_sequence_length=MAX_WORDS)
    start, end = 2, 3  # ids of <start> and <end> (0 pads, 1 is [UNK])
    most = max(len(caps) for caps in captions)
    padded = [caps + [""] * (most - len(caps)) for caps in captions]

    def pair(image, caps):
        # One of the image's captions at random; inputs <start> w1..wn, targets w1..wn <end>.
        count = tf.reduce_sum(tf.cast(tf.strings.length(caps) > 0, tf.int32))
        ids = tf.cast(vectorize(caps[tf.random.uniform([], maxval=count, dtype=tf.int32)]), tf.int32)
        length = tf.reduce_sum(tf.cast(ids > 0, tf.int32))
        tokens = tf.concat([[start], ids], 0)
        positions = tf.range(MAX_WORDS + 1)
        targets = tf.where(positions == length, end, tf.concat([ids, [0]], 0))
        weights = tf.cast(positions <= length, tf.float32)
        return {"image": image, "tokens": tokens}, targets, weights

    dataset = tf.data.Dataset.from_tensor_slices((arrays["image"], padded))
    return dataset.shuffle(10_000).map(pair).batch(BATCH_SIZE), vectorize.vocabulary_size()


def forget_bias_3(shape, dtype=None):
    # LSTM bias: 3 on the forget gate (gates i, f, c, o), 0 elsewhere.
    units = shape[0] // 4
    return keras.ops.concatenate([keras.ops.zeros((units,)), keras.ops.full((units,), 3.0),
                                  keras.ops.zeros((2 * units,))])


def build_model(vocab_size, steps=None):
    image = keras.Input((SIZE, SIZE, 3), name="image")
    tokens = keras.Input((MAX_WORDS + 1,), dtype="int32", name="tokens")
    x = keras.layers.Rescaling(1 / 255.0)(image)
    for filters in (16, 32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    features = keras.layers.Dense(128, activation="relu")(x)
    # The image is the LSTM's first input, then the words.
    image_step = keras.layers.Reshape((1, 128))(features)
    words = keras.layers.Embedding(vocab_size, 128, mask_zero=True)(tokens)
    x = keras.layers.Concatenate(axis=1)([image_step, words])
    x = keras.layers.LSTM(256, return_sequences=True, unit_forget_bias=False, bias_initializer=forget_bias_3)(x)
    x = keras.layers.Dropout(0.2)(x[:, 1:])
    logits = keras.layers.Dense(vocab_size)(x)
    model = keras.Model({"image": image, "tokens": tokens}, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps, alpha=0.05) if steps else 2e-3, clipnorm=5.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=["accuracy"],
    )
    return model


def build(train_examples=32_000):
    dataset, vocab_size = load_data(train_examples)
    return build_model(vocab_size, steps=EPOCHS * (train_examples // BATCH_SIZE)), dataset


if __name__ == "__main__":
    model, dataset = build()
    model.fit(dataset, epochs=EPOCHS)
