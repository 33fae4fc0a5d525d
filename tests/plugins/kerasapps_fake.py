"""A small fake task plugin for the core's tests: which colour is the large shape? (16x16 images).

Written against ``kerasapps.api`` only, like any third-party plugin. Load it with
``PYTHONPATH=tests/plugins kerasapps -p kerasapps_fake ...`` (see ``conftest.FAKE``).
It trains in a second, so the core's behaviour (resume, evaluate, export, predict) is
tested without the first-party tasks. Its config declares one field of each kind the core checks
(bounds, ``choices``, a ``Literal``, a tuple), and it reads ``folder:PATH`` (one folder per colour)
as well as the generated scenes, so the core's checks of user input are tested on it too.
"""

import dataclasses
from typing import Literal

from kerasapps.api import (SPLITS, DatasetSpec, Task, TaskConfig, TaskSpec, check_image_file, field, hookimpl,
                           read_image, read_image_folder)


@hookimpl
def kerasapps_register_tasks():
    return [TaskSpec("fake", "kerasapps_fake:FakeTask", "colour of the large shape (tests only)"),
            TaskSpec("fake-text", "kerasapps_fake:FakeTextTask", "colour named in a caption (tests only)")]


@hookimpl
def kerasapps_register_datasets():
    # A registered dataset the fake task does not read (it reads shapes): `--dataset fake-words` is refused.
    return [DatasetSpec("fake-words", "kerasapps_fake:WORDS", "colour words (tests only; no task reads them)")]


WORDS = ("red", "green", "blue")


@dataclasses.dataclass
class FakeConfig(TaskConfig):
    epochs: int = field(1, "training epochs")
    batch_size: int = field(16, "global batch size")
    learning_rate: float = field(0.01, "Adam learning rate")
    units: int = field(8, "width of the first convolution", minimum=1)
    filters: tuple[int, ...] = field((), "widths of further convolutions (none by default)", minimum=1)
    kernel_size: int = field(3, "convolution kernel side", choices=(1, 3, 5))
    activation: Literal["relu", "tanh"] = field("relu", "activation of the convolutions")
    dropout: float = field(0.0, "dropout before the classifier", minimum=0, below=1)
    batch_norm: bool = field(False, "BatchNormalization after each convolution (moving statistics: state "
                             "that is not trained, which multi-worker training must keep equal)")
    train_examples: int = field(128, "shapes: training scenes", minimum=1)
    eval_examples: int = field(32, "shapes: validation and test scenes each", minimum=1)
    image_size: int = field(16, "image side", minimum=8, maximum=512)


class FakeTask(Task):
    """The colour of the large shape, from 16x16 scenes."""

    name = "fake"
    Config = FakeConfig
    monitor, monitor_mode = "val_accuracy", "max"
    serving_inputs = {"image_bytes": "tf.string [N]: PNG or JPEG images"}
    serving_outputs = {"colour": "tf.string [N]: colour name", "scores": "tf.float32 [N, colours]",
                       "preview_bytes": "tf.string [N]: the model's input (the image resized) as PNG"}
    # Changing how much data is generated does not change the model: a backup stays usable.
    data_fields = ("train_examples", "eval_examples")
    folder_layout = "PATH/<colour>/*.png (or PATH/train/<colour>/..., PATH/test/<colour>/...)"

    def load_registered(self):
        import tensorflow as tf

        shapes = self.source.load()
        self.info["colours"] = list(shapes.COLOURS)
        size = self.config.image_size
        splits = {}
        for split in SPLITS:
            count = self.config.train_examples if split == "train" else self.config.eval_examples
            data = shapes.generate_arrays(split, count, seed=self.seed, image_size=size)
            colour = data["label"] // len(shapes.SHAPES)
            splits[split] = tf.data.Dataset.from_tensor_slices((data["image"].astype("float32"), colour))
        return splits

    def load_folder(self):
        import tensorflow as tf

        files = read_image_folder(self.source.path, labelled=True, layout=self.folder_layout)
        for path, _ in files["train"]:  # each header (format, pixel limit) before anything is decoded
            check_image_file(path)
        self.info["colours"] = sorted({colour for _, colour in files["train"]})
        index = {colour: i for i, colour in enumerate(self.info["colours"])}
        size = self.config.image_size

        def load(path, colour):
            return read_image(path, (size, size)), colour

        return {split: tf.data.Dataset.from_tensor_slices(([str(p) for p, _ in files[split]],
                                                           [index[c] for _, c in files[split]])).map(load)
                for split in SPLITS}

    def build_model(self):
        import keras

        size = self.config.image_size
        model = keras.Sequential([
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255),
            *[layer for width in (self.config.units, *self.config.filters)
              for layer in [keras.layers.Conv2D(width, self.config.kernel_size, activation=self.config.activation),
                            *([keras.layers.BatchNormalization()] if self.config.batch_norm else [])]],
            keras.layers.GlobalAveragePooling2D(),
            *([keras.layers.Dropout(self.config.dropout)] if self.config.dropout else []),
            keras.layers.Dense(len(self.info["colours"]), activation="softmax"),
        ])
        model.compile(keras.optimizers.Adam(self.config.learning_rate), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    def evaluate(self, model, dataset, metrics):
        # A task metric beside the compiled ones: how many test examples were scored.
        return {**metrics, "examples": sum(int(x.shape[0]) for x, _ in dataset)}

    def serving_function(self, model):
        import tensorflow as tf

        from kerasapps.api import decode_images

        colours = tf.constant(self.info["colours"])
        size = self.config.image_size

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(image_bytes):
            images = decode_images(image_bytes, (size, size))
            scores = model(images)
            previews = tf.map_fn(lambda image: tf.io.encode_png(tf.cast(tf.round(image), tf.uint8)), images,
                                 fn_output_signature=tf.TensorSpec([], tf.string))
            return {"colour": tf.gather(colours, tf.argmax(scores, axis=-1)), "scores": scores,
                    "preview_bytes": previews}

        return serve

    def tensor_core(self, model):
        # The default core, told that the output's last axis holds the colours' scores (this task
        # keeps its class names as info["colours"], not info["class_names"]).
        core = super().tensor_core(model)
        core.classes, core.scores = self.info["colours"], True
        core.postprocessing = "colour probabilities [N, colours]; the argmax is the colour"
        return core


@dataclasses.dataclass
class FakeTextConfig(TaskConfig):
    epochs: int = field(1, "training epochs")
    batch_size: int = field(16, "global batch size")
    learning_rate: float = field(0.02, "Adam learning rate")
    buckets: int = field(64, "hashed word buckets")
    train_examples: int = field(128, "shapes: training captions")
    eval_examples: int = field(32, "shapes: validation and test captions each")


class FakeTextTask(Task):
    """The colour named in a scene's caption, from its words (text in, one text output)."""

    name = "fake-text"
    Config = FakeTextConfig
    monitor, monitor_mode = "val_accuracy", "max"
    serving_inputs = {"text": "tf.string [N]: a sentence"}
    serving_outputs = {"colour": "tf.string [N]: colour name"}

    def load_registered(self):
        import tensorflow as tf

        shapes = self.source.load()
        self.info["colours"] = list(shapes.COLOURS)
        splits = {}
        for split in SPLITS:
            count = self.config.train_examples if split == "train" else self.config.eval_examples
            data = shapes.generate_arrays(split, count, seed=self.seed, image_size=16)
            captions = [captions[0] for captions in data["captions"]]
            splits[split] = tf.data.Dataset.from_tensor_slices((captions, data["label"] // len(shapes.SHAPES)))
        return splits

    def bag_of_words(self, text):
        """Multi-hot hashed words of ``[N]`` sentences (any lengths): ``[N, buckets]``."""
        import tensorflow as tf

        words = tf.strings.split(tf.strings.lower(text))
        hot = tf.one_hot(tf.strings.to_hash_bucket_fast(words, self.config.buckets), self.config.buckets)
        return tf.reduce_max(hot, axis=1)  # ragged words -> dense [N, buckets]

    def prepare_datasets(self, splits):
        return {split: self.batch(splits[split], split, map_batch=lambda text, colour: (self.bag_of_words(text), colour))
                for split in SPLITS}

    def build_model(self):
        import keras

        model = keras.Sequential([keras.Input((self.config.buckets,)),
                                  keras.layers.Dense(len(self.info["colours"]), activation="softmax")])
        model.compile(keras.optimizers.Adam(self.config.learning_rate), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    def serving_function(self, model):
        import tensorflow as tf

        colours = tf.constant(self.info["colours"])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            return {"colour": tf.gather(colours, tf.argmax(model(self.bag_of_words(text)), axis=-1))}

        return serve
