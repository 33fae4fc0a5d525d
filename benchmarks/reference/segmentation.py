"""SegNet-Basic on the built-in shapes scenes, as a keras-io reader would write it.

The same model (4 encoders of 64 3x3 conv-BN-ReLU + max-pooling with argmax, a
mirrored decoder that unpools with those indices, 1x1 conv, softmax), batch size,
precision (float32), data and augmentation (flip, zoom up to 1.25x and crop) as
`kerasapps run segmentation`. The pooling is the usual tutorial one,
``tf.nn.max_pool_with_argmax`` + ``tf.scatter_nd`` (kerasapps writes it with
reshapes, which XLA can compile).

    python -m benchmarks.reference.segmentation
"""

import keras
import tensorflow as tf

from kerasapps.data import shapes

BATCH_SIZE = 32
EPOCHS = 6
SIZE = 64
NUM_CLASSES = len(shapes.MASK_CLASS_NAMES)


def augment(image, mask):
    flip = tf.random.uniform([]) < 0.5
    image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
    mask = tf.cond(flip, lambda: tf.image.flip_left_right(mask), lambda: mask)
    new_size = tf.cast(tf.math.ceil(tf.random.uniform([], 1.0, 1.25) * SIZE), tf.int32)
    image = tf.image.resize(tf.cast(image, tf.float32), [new_size, new_size])
    mask = tf.image.resize(mask, [new_size, new_size], method="nearest")
    top = tf.random.uniform([], 0, new_size - SIZE + 1, tf.int32)
    left = tf.random.uniform([], 0, new_size - SIZE + 1, tf.int32)
    image = image[top:top + SIZE, left:left + SIZE]
    mask = mask[top:top + SIZE, left:left + SIZE]
    return tf.ensure_shape(image, [SIZE, SIZE, 3]), tf.ensure_shape(mask[..., 0], [SIZE, SIZE])


def load_data(train_examples):
    arrays = shapes.generate_arrays("train", train_examples, seed=0, image_size=SIZE)
    dataset = tf.data.Dataset.from_tensor_slices((arrays["image"], arrays["mask"][..., None]))
    return dataset.shuffle(5_000).map(augment).batch(BATCH_SIZE)


class MaxPoolingWithArgmax2D(keras.layers.Layer):
    def call(self, inputs):
        pooled, argmax = tf.nn.max_pool_with_argmax(inputs, 2, 2, "SAME", include_batch_in_index=True)
        return pooled, argmax

    def compute_output_spec(self, inputs):
        b, h, w, c = inputs.shape
        shape = (b, h // 2, w // 2, c)
        return keras.KerasTensor(shape, dtype=inputs.dtype), keras.KerasTensor(shape, dtype="int64")


class MaxUnpooling2D(keras.layers.Layer):
    def call(self, inputs):
        values, argmax, like = inputs
        shape = tf.shape(like, out_type=tf.int64)
        flat = tf.scatter_nd(tf.reshape(argmax, [-1, 1]), tf.reshape(values, [-1]), [tf.reduce_prod(shape)])
        return tf.reshape(flat, shape)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[2].shape, dtype=inputs[0].dtype)


def conv_bn(x, relu=True):
    x = keras.layers.Conv2D(64, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    return keras.layers.ReLU()(x) if relu else x


def build_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    skips = []
    for _ in range(4):
        x = conv_bn(x)
        pooled, argmax = MaxPoolingWithArgmax2D()(x)
        skips.append((argmax, x))
        x = pooled
    for argmax, before in reversed(skips):
        x = MaxUnpooling2D()([x, argmax, before])
        x = conv_bn(x, relu=False)
    outputs = keras.layers.Conv2D(NUM_CLASSES, 1, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=255),
        metrics=["accuracy", keras.metrics.MeanIoU(NUM_CLASSES, sparse_y_pred=False, ignore_class=255)],
    )
    return model


def build(train_examples=5_000):
    return build_model(), load_data(train_examples)


if __name__ == "__main__":
    model, dataset = build()
    model.fit(dataset, epochs=EPOCHS)
