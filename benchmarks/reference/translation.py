"""English-to-Japanese translation with GNMT's core at laptop size (a bidirectional
LSTM encoder layer, a second LSTM layer, a 2-layer LSTM decoder with Luong attention),
on the built-in phrasebook pairs, as a keras-io reader would write it.

The same model, batch size, precision (float32), vocabularies and data as
`kerasapps run translation`. Sentences are padded to the longest training sentence,
as the keras-io translation examples do (kerasapps cuts each batch to its longest).

    python -m benchmarks.reference.translation
"""

import collections

import keras
import tensorflow as tf

from kerasapps_translation import phrasebook

BATCH_SIZE = 64
EPOCHS = 10
UNITS = 256
EMBED = 128


def make_vectorizer(texts, length):
    counts = collections.Counter(word for t in texts for word in t.lower().split())
    words = [w for w, _ in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if w not in ("<start>", "<end>")]
    return keras.layers.TextVectorization(standardize="lower", vocabulary=["<start>", "<end>"] + words,
                                          output_sequence_length=length)


def load_data(train_examples):
    pairs = phrasebook.generate("train", train_examples, seed=0)
    english = [e for e, _ in pairs]
    japanese = [f"<start> {j} <end>" for _, j in pairs]
    source_length = max(len(e.split()) for e in english)
    target_length = max(len(j.split()) for j in japanese)
    source_vectorizer = make_vectorizer(english, source_length)
    target_vectorizer = make_vectorizer(japanese, target_length)
    source = source_vectorizer(tf.constant(english))
    target = tf.cast(target_vectorizer(tf.constant(japanese)), tf.int32)
    inputs = {"source": source, "target_in": target[:, :-1]}
    targets = target[:, 1:]
    weights = tf.cast(targets > 0, tf.float32)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets, weights))
    sizes = source_vectorizer.vocabulary_size(), target_vectorizer.vocabulary_size()
    return dataset.shuffle(len(pairs)).batch(BATCH_SIZE), sizes


def build_model(source_vocab, target_vocab, label_smoothing=0.1):
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    # Encoder: a bidirectional layer, then a unidirectional one; padding masked.
    x = keras.layers.Embedding(source_vocab, EMBED, mask_zero=True)(source)
    x = keras.layers.Bidirectional(keras.layers.LSTM(UNITS // 2, return_sequences=True))(x)
    x = keras.layers.Dropout(0.2)(x)
    memory, h, c = keras.layers.LSTM(UNITS, return_sequences=True, return_state=True)(x)
    memory = keras.layers.Dropout(0.2)(memory)
    # Decoder: two LSTM layers starting from the encoder's final state.
    y = keras.layers.Embedding(target_vocab, EMBED)(target_in)
    for _ in range(2):
        y = keras.layers.LSTM(UNITS, return_sequences=True)(y, initial_state=[h, c])
        y = keras.layers.Dropout(0.2)(y)
    # Luong attention over the encoder states.
    query = keras.layers.Dense(UNITS, use_bias=False)(y)
    context = keras.layers.Attention()([query, memory])
    y = keras.layers.Dense(UNITS, activation="tanh")(keras.layers.Concatenate()([y, context]))
    y = keras.layers.Dropout(0.2)(y)
    logits = keras.layers.Dense(target_vocab)(y)
    model = keras.Model({"source": source, "target_in": target_in}, logits)

    def loss(y_true, y_pred):
        one_hot = tf.one_hot(tf.cast(y_true, tf.int32), target_vocab)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, from_logits=True,
                                                     label_smoothing=label_smoothing)

    model.compile(optimizer=keras.optimizers.Adam(2e-3, clipnorm=5.0), loss=loss, weighted_metrics=["accuracy"])
    return model


def build(train_examples=12_000):
    dataset, (source_vocab, target_vocab) = load_data(train_examples)
    return build_model(source_vocab, target_vocab), dataset


if __name__ == "__main__":
    model, dataset = build()
    model.fit(dataset, epochs=EPOCHS)
