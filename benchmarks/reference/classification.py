"""LeNet-5 on the built-in shapes images, as a keras-io reader would write it.

The same model, batch size, precision (float32) and data as `kerasapps run classification`.

    python -m benchmarks.reference.classification
"""

import keras
import tensorflow as tf

from kerasapps.data import shapes

BATCH_SIZE = 64
EPOCHS = 8
NUM_CLASSES = len(shapes.CLASS_NAMES)


def load_data(train_examples):
    # 64x64 RGB images of coloured shapes, uint8, and their class ids.
    arrays = shapes.generate_arrays("train", train_examples, seed=0, image_size=64)
    dataset = tf.data.Dataset.from_tensor_slices((arrays["image"], arrays["label"]))
    return dataset.shuffle(20_000).batch(BATCH_SIZE)


def build_model():
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(32, 5, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(64, 5, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(120, activation="relu")(x)
    x = keras.layers.Dense(84, activation="relu")(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(3, name="top3_accuracy")],
    )
    return model


def build(train_examples=20_000):
    return build_model(), load_data(train_examples)


if __name__ == "__main__":
    model, dataset = build()
    model.fit(dataset, epochs=EPOCHS)
