"""A task plugin written against the previous release's documented API, kept as it was written.

It imports from ``kerasapps``, ``kerasapps.config``, ``kerasapps.task`` and ``kerasapps.data.images``
(not ``kerasapps.api``), reads its data in its own ``build_datasets``, overrides
``__init__`` with the old constructor and ``evaluate(self, trainer, dataset)`` calling
``super().evaluate(trainer, dataset)``. The core must still train, evaluate and export it,
with deprecation warnings naming the new forms (tests/test_compat.py). Do not modernise it.
"""

import dataclasses

import kerasapps
from kerasapps.config import TaskConfig, field
from kerasapps.task import SPLITS, Task


@kerasapps.hookimpl
def kerasapps_register_tasks():
    return [kerasapps.TaskSpec("oldstyle", "kerasapps_oldstyle:OldStyleTask", "colour of the large shape (old API)")]


@dataclasses.dataclass
class OldStyleConfig(TaskConfig):
    epochs: int = field(2, "training epochs")
    batch_size: int = field(16, "global batch size")
    examples: int = field(64, "training scenes")


class OldStyleTask(Task):
    """The colour of the large shape, as a plugin of the previous release wrote it."""

    name = "oldstyle"
    Config = OldStyleConfig
    dataset_kinds = ("registered",)
    monitor, monitor_mode = "val_accuracy", "max"
    serving_inputs = {"image_bytes": "tf.string [N]: PNG or JPEG images"}
    serving_outputs = {"colour": "tf.string [N]: colour name"}

    def __init__(self, config=None, source=None, info=None, seed=0):
        super().__init__(config, source, info, seed)
        self.evaluated = 0

    def build_datasets(self):
        import tensorflow as tf

        shapes = self.source.load()
        self.info["colours"] = list(shapes.COLOURS)
        splits = {}
        for split in SPLITS:
            count = self.config.examples if split == "train" else 32
            data = shapes.generate_arrays(split, count, seed=self.seed, image_size=16)
            colour = data["label"] // len(shapes.SHAPES)
            dataset = tf.data.Dataset.from_tensor_slices((data["image"].astype("float32"), colour))
            splits[split] = self.batch(dataset, split)
        return splits

    def build_model(self):
        import keras

        model = keras.Sequential([
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(self.info["colours"]), activation="softmax"),
        ])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def evaluate(self, trainer, dataset):
        metrics = super().evaluate(trainer, dataset)
        self.evaluated += 1
        metrics["parameters"] = trainer.model.count_params()
        metrics["replicas"] = trainer.strategy.num_replicas_in_sync
        return metrics

    def serving_function(self, model):
        import tensorflow as tf

        from kerasapps.data.images import decode_images

        colours = tf.constant(self.info["colours"])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(image_bytes):
            scores = model(decode_images(image_bytes, (16, 16)))
            return {"colour": tf.gather(colours, tf.argmax(scores, axis=-1))}

        return serve
