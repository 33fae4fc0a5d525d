"""Image classification: LeNet-5 (default), ResNet-20, and a linear baseline.

The task: config, data, model (built in ``models.py``), metrics, serving, in that order.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import numpy as np

from kerasapps.api import (SPLITS, CompressionPlan, PrunableGroup, PrunableStream, StreamRead, Task, TaskConfig,
                           UsageError, decode_images, field, load_tfds, probe_image, read_image, read_image_folder)


@dataclasses.dataclass
class ClassificationConfig(TaskConfig):
    epochs: int = field(8, "training epochs")
    batch_size: int = field(64, "global batch size")
    learning_rate: float = field(2e-3, "Adam learning rate")
    model: Literal["lenet5", "resnet20", "linear"] = field("lenet5", "lenet5, resnet20, or linear (raw-pixel baseline)")
    filters: tuple[int, ...] = field((32, 64), "LeNet-5 convolution widths (the paper used 6,16)", minimum=1)
    dense_units: tuple[int, ...] = field((120, 84), "LeNet-5 fully connected widths", minimum=1)
    inner_widths: tuple[int, ...] = field((), "ResNet-20: each block's first convolution width, 9 values in block "
                                          "order (kerasapps compress sets them); empty: each stage's width x3",
                                          minimum=1)
    stage_widths: tuple[int, ...] = field((), "ResNet-20: each stage's block-output width (its residual stream), 3 "
                                          "values (kerasapps compress sets them); empty: 16, 32, 64", minimum=1)
    dropout: float = field(0.2, "dropout before the classifier", minimum=0, below=1)
    image_size: Optional[int] = field(None, "input side in pixels; default: the dataset's own (64 for shapes)",
                                      minimum=16, maximum=8192)
    channels: Optional[int] = field(None, "1 or 3; default: the dataset's own", choices=(1, 3))
    top_k: int = field(3, "k of the top-k accuracy metric", minimum=1)
    adversarial: Literal["none", "fgsm", "pgd"] = field(
        "none", "adversarial training: none, fgsm (Goodfellow et al.) or pgd (Madry et al.) examples of each batch")
    adversarial_epsilon: float = field(8 / 255, "adversarial training: L-infinity budget, a fraction of the pixel "
                                       "range (0.3 = 76.5 of 0..255)", minimum=0, maximum=1)
    adversarial_steps: int = field(7, "adversarial training: PGD steps (step 2.5 * epsilon / steps)", minimum=1)
    adversarial_weight: float = field(0.5, "adversarial training: share of the loss from adversarial examples "
                                      "(0.5: Goodfellow's mix; 1: Madry's adversarial-only)", minimum=0, maximum=1)
    train_examples: int = field(20000, "shapes: training examples generated", minimum=1)
    eval_examples: int = field(2000, "shapes: validation and test examples each", minimum=1)

    def validate(self):
        if self.inner_widths and len(self.inner_widths) != 9:
            raise UsageError(f"inner_widths: ResNet-20 has 9 blocks, so 9 widths (or none); "
                             f"got {len(self.inner_widths)}")
        if self.stage_widths and len(self.stage_widths) != 3:
            raise UsageError(f"stage_widths: ResNet-20 has 3 stages, so 3 widths (or none); "
                             f"got {len(self.stage_widths)}")


def resnet20_compression_plan() -> CompressionPlan:
    """ResNet-20's prunable groups, stage by stage: the stage's residual stream, then each block's
    first convolution (with its BatchNormalization, re-fitting the block's second). A stage's
    stream is written by the stem (stage 1) or the stage's projection shortcut and by every block's
    second convolution, each with its BatchNormalization; it is read after each addition's ReLU by
    the next block's first convolution, at the stage's end by the next stage's first convolution
    and projection shortcut, and after the last stage by the classifier (after global pooling).
    Widths in ``stage_widths`` and ``inner_widths``."""
    groups = []
    for stage in (1, 2, 3):
        blocks = [f"stage{stage}_block{block}" for block in (1, 2, 3)]
        if stage == 1:  # the stem writes the stream, and its ReLU is the first block's input
            writers, norms = ["stem_conv"], ["stem_bn"]
            reads = [StreamRead("stem_relu", (f"{blocks[0]}_a_conv",))]
        else:  # the projection shortcut writes it; the first block reads the previous stage's stream
            writers, norms, reads = [f"{blocks[0]}_proj"], [f"{blocks[0]}_proj_bn"], []
        writers += [f"{name}_b_conv" for name in blocks]
        norms += [f"{name}_b_bn" for name in blocks]
        reads += [StreamRead(f"{name}_out", (f"{after}_a_conv",)) for name, after in zip(blocks, blocks[1:])]
        reads.append(StreamRead(f"{blocks[-1]}_out", (f"stage{stage + 1}_block1_a_conv",
                                                      f"stage{stage + 1}_block1_proj")) if stage < 3
                     else StreamRead("pool", ("logits",)))
        groups.append(PrunableStream(f"stage{stage}", producers=tuple(writers), reads=tuple(reads),
                                     channelwise=tuple(norms)))
        groups += [PrunableGroup(f"{name}_a_conv", consumer=f"{name}_b_conv", channelwise=(f"{name}_a_bn",))
                   for name in blocks]
    inner = [f"stage{stage}_block{block}_a_conv" for stage in (1, 2, 3) for block in (1, 2, 3)]
    return CompressionPlan(tuple(groups), lambda widths: {
        "stage_widths": tuple(widths[f"stage{stage}"] for stage in (1, 2, 3)),
        "inner_widths": tuple(widths[name] for name in inner)})


class ClassificationTask(Task):
    """Image classification (LeNet-5, ResNet-20, linear baseline)."""

    name = "classification"
    Config = ClassificationConfig
    monitor = "val_accuracy"
    monitor_mode = "max"
    cpu_bfloat16 = True  # accuracy checked under mixed_bfloat16: docs/tasks/classification.md
    serving_inputs = {"image_bytes": "tf.string [N]: encoded PNG or JPEG images of any size"}
    serving_outputs = {
        "label": "tf.string [N]: predicted class name",
        "class_id": "tf.int64 [N]: predicted class index",
        "scores": "tf.float32 [N, classes]: class probabilities",
    }
    folder_layout = (
        "PATH/train/<class>/*.png|jpg and PATH/test/<class>/... (PATH/validation/<class>/ optional: "
        "else 10% of train); or PATH/<class>/* alone, split 80/10/10 by file name"
    )

    # -- data (the core batches each split with ``batch`` below) -------------
    def load_registered(self):
        import tensorflow as tf

        shapes = self.source.load()
        size = self.config.image_size or 64
        counts = {"train": self.config.train_examples, "validation": self.config.eval_examples,
                  "test": self.config.eval_examples}
        self.info.update(class_names=list(shapes.CLASS_NAMES), image_size=size, channels=3)
        out = {}
        for split in SPLITS:
            arrays = shapes.generate_arrays(split, counts[split], seed=self.seed, image_size=size)
            images = arrays["image"]
            if self.config.channels == 1:
                images = images.mean(axis=-1, keepdims=True).astype(np.uint8)
                self.info["channels"] = 1
            out[split] = tf.data.Dataset.from_tensor_slices((images, arrays["label"]))
        return out

    def load_tfds(self):
        import tensorflow as tf

        datasets, info = load_tfds(self.source, as_supervised=True)
        if "label" not in info.features or "image" not in info.features:
            raise UsageError(f"TFDS dataset {self.source.name!r} has no image and label features")
        shape = info.features["image"].shape
        size = self.config.image_size or (shape[0] if shape[0] else 64)
        channels = self.config.channels or (shape[2] if len(shape) == 3 and shape[2] else 3)
        self.info.update(class_names=list(info.features["label"].names), image_size=size, channels=channels)

        def prepare(image, label):
            image = tf.image.resize(tf.cast(image, tf.float32), (size, size))
            if image.shape[-1] != channels:
                image = tf.image.rgb_to_grayscale(image) if channels == 1 else tf.image.grayscale_to_rgb(image)
            return tf.cast(tf.round(image), tf.uint8), label

        return {s: ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).cache() for s, ds in datasets.items()}

    def load_folder(self):
        import tensorflow as tf

        root = self.source.path
        files = read_image_folder(root, labelled=True, layout=self.folder_layout)
        class_names = sorted({c for _, c in files["train"]})
        height, _, found_channels = probe_image(files["train"][0][0])
        size = self.config.image_size or height
        channels = self.config.channels or (1 if found_channels == 1 else 3)
        self.info.update(class_names=class_names, image_size=size, channels=channels)
        index = {c: i for i, c in enumerate(class_names)}

        def load(path, label):
            image = read_image(path, (size, size), channels)
            return tf.cast(tf.round(image), tf.uint8), label

        out = {}
        for split in SPLITS:
            paths = [str(f) for f, _ in files[split]]
            labels = np.array([index[c] for _, c in files[split]], dtype=np.int64)
            ds = tf.data.Dataset.from_tensor_slices((paths, labels))
            if split == "train":  # shuffle file order once so the cache is not class-sorted
                ds = ds.shuffle(len(paths), seed=self.seed, reshuffle_each_iteration=False)
            out[split] = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).cache()
        return out

    def batch(self, dataset, split, shuffle_buffer=20_000, map_batch=None, map_example=None):
        import tensorflow as tf

        # uint8 in the pipeline (4x less memory for the cache); the model rescales.
        return super().batch(dataset, split, shuffle_buffer, map_batch=lambda x, y: (tf.cast(x, tf.float32), y))

    # -- model ---------------------------------------------------------------
    def build_model(self):
        import keras
        from kerasapps_classification.models import AdversarialClassifier, build_classifier

        cfg = self.config
        size, channels = self.info["image_size"], self.info["channels"]
        num_classes = len(self.info["class_names"])
        model = build_classifier(cfg.model, (size, size, channels), num_classes, filters=cfg.filters,
                                 dense_units=cfg.dense_units, dropout=cfg.dropout, inner_widths=cfg.inner_widths,
                                 stage_widths=cfg.stage_widths)
        if cfg.adversarial != "none":  # the same layers and weights; only training differs
            model = AdversarialClassifier(model.inputs, model.outputs, name=model.name, attack=cfg.adversarial,
                                          epsilon=cfg.adversarial_epsilon * 255, steps=cfg.adversarial_steps,
                                          adversarial_weight=cfg.adversarial_weight)
        k = min(cfg.top_k, num_classes)
        model.compile(
            optimizer=keras.optimizers.Adam(cfg.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(k, name=f"top{k}_accuracy"),
            ],
        )
        return model

    # -- width compression (kerasapps compress) --------------------------------
    def compression_plan(self, model):
        """LeNet-5: every conv and dense layer but the classifier, each re-fitting the next one (the
        last conv's features are its pooled map, before Flatten). ResNet-20: each stage's residual
        stream (one stream per stage, below) and each block's first convolution (and its
        BatchNormalization), re-fitting the block's second."""
        cfg = self.config
        if cfg.model == "lenet5":
            convs = [f"conv{i}" for i in range(1, len(cfg.filters) + 1)]
            denses = [f"fc{i}" for i in range(1, len(cfg.dense_units) + 1)]
            chain = convs + denses + ["logits"]
            groups = tuple(PrunableGroup(producer, consumer=consumer,
                                         features=f"pool{len(convs)}" if producer == convs[-1] else None)
                           for producer, consumer in zip(chain, chain[1:]))
            return CompressionPlan(groups, lambda widths: {"filters": tuple(widths[name] for name in convs),
                                                           "dense_units": tuple(widths[name] for name in denses)})
        if cfg.model == "resnet20":
            return resnet20_compression_plan()
        raise UsageError(f"the {cfg.model} classifier has no hidden layer to compress (lenet5 and resnet20 have)")

    # -- predictions and serving ----------------------------------------------
    def describe_predictions(self, model, dataset, count=5):
        names = self.info["class_names"]
        images, labels = next(iter(dataset.unbatch().batch(count)))
        scores = model.predict_on_batch(images)
        lines = []
        for label, row in zip(labels.numpy(), np.asarray(scores)):
            guess = int(np.argmax(row))
            mark = "ok " if guess == label else "XX "
            lines.append(f"{mark} true: {names[label]:<16} predicted: {names[guess]:<16} p={row[guess]:.2f}")
        return lines

    def serving_function(self, model):
        import tensorflow as tf

        size, channels = self.info["image_size"], self.info["channels"]
        class_names = tf.constant(self.info["class_names"])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(image_bytes):
            images = decode_images(image_bytes, (size, size), channels)
            scores = tf.cast(model(images, training=False), tf.float32)
            class_id = tf.argmax(scores, axis=-1)
            return {"label": tf.gather(class_names, class_id), "class_id": class_id, "scores": scores}

        return serve

    def tensor_core(self, model):
        """The model itself (pixels in, probabilities out), described for LiteRT / ONNX users."""
        core = super().tensor_core(model)
        size, channels = self.info["image_size"], self.info["channels"]
        core.preprocessing = (f"decode the image ({'grey' if channels == 1 else 'RGB'}), resize it to {size}x{size} "
                              f"(bilinear, not antialiased); float32 pixel values 0..255, not rescaled (the model "
                              f"rescales); layout [N, {size}, {size}, {channels}] (NHWC), any batch size N")
        core.postprocessing = ("class probabilities [N, classes] (softmax applied); the predicted class is the argmax, "
                               "its name classes[argmax]")
        return core
