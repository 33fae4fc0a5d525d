"""Image tagging with visual concepts (Fang et al. 2015, "From captions to visual concepts and
back"): a CNN learns which words of its captions a photo shows, one sigmoid per word.

It reads the captioning task's data (shapes, a TFDS captions dataset, Flickr8k's folder
layout) and needs no labels beyond the captions, so it pretrains an image encoder for
captioning where ImageNet weights cannot be had::

    kerasapps run tagging --dataset folder:flickr8k --workdir runs/tags --set image_size=128
    kerasapps run captioning --dataset folder:flickr8k --set encoder=tagging --set encoder_weights=runs/tags

The tags are the ``tags`` words that most photos' captions use, function words left out;
a photo's label for a tag is 1 when any of its captions uses the word. The export returns
the ``top_k`` tags of each image with their probabilities.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Literal

import numpy as np

from kerasapps.api import (CAPTIONS_FOLDER_LAYOUT, SPLITS, Task, TaskConfig, decode_images, field,
                           standardize_texts)
from kerasapps_captioning import data

# Words that say nothing a photo shows: English function words, and the verbs every caption has.
FUNCTION_WORDS = frozenset("""
a an the and or but of in on at to into onto from by with without for as is are was were be been being
it its it's this that these those there their his her he she they them who which what while has have
up down out off over under near next through other another some each one two three four five several
very just not no s
""".split())


@dataclasses.dataclass
class TaggingConfig(TaskConfig):
    epochs: int = field(10, "training epochs")
    batch_size: int = field(64, "global batch size (images)")
    learning_rate: float = field(2e-3, "Adam learning rate (the peak, with lr_schedule=cosine)")
    lr_schedule: Literal["constant", "cosine"] = field(
        "cosine", "constant: keep the learning rate; cosine: decay it to 5% over the whole run")
    image_size: int = field(64, "input side in pixels", minimum=16, maximum=4096)
    cnn_filters: tuple[int, ...] = field((16, 32, 64, 128), "filters per conv block (each halves the size)",
                                           minimum=1)
    cnn_pooling: Literal["max", "flatten"] = field(
        "max", "global max pooling of the last feature map, or the map flattened")
    tags: int = field(1000, "tags: the caption words most photos' captions use (function words left out)",
                      minimum=1)
    min_images: int = field(5, "a tag's word is in the captions of at least this many training photos", minimum=1)
    dropout: float = field(0.3, "dropout before the tag classifier", minimum=0, below=1)
    flip: bool = field(True, "random horizontal flips in training")
    top_k: int = field(10, "tags the export returns per image, most probable first", minimum=1)
    train_examples: int = field(8000, "shapes: training images generated", minimum=1)
    eval_examples: int = field(500, "shapes: validation and test images each", minimum=1)
    skip_bad_examples: bool = field(False, "folder: skip (and count) rows with a missing image or empty caption")


def caption_words(captions) -> list[set[str]]:
    """Each image's captions -> the set of words they use (standardised as captioning sees them)."""
    flat = standardize_texts(c for caps in captions for c in caps)
    out, i = [], 0
    for caps in captions:
        out.append({w for line in flat[i:i + len(caps)] for w in line.split()})
        i += len(caps)
    return out


def choose_tags(words_per_image, count: int, min_images: int) -> list[str]:
    """The ``count`` words the most images use (at least ``min_images``), function words left out."""
    frequency = collections.Counter(w for words in words_per_image for w in words if w not in FUNCTION_WORDS)
    ranked = sorted(frequency.items(), key=lambda wc: (-wc[1], wc[0]))
    return [w for w, c in ranked if c >= min_images][:count]


def tag_labels(words_per_image, tags) -> np.ndarray:
    """uint8 [images, tags]: 1 where an image's captions use the tag."""
    index = {t: i for i, t in enumerate(tags)}
    labels = np.zeros((len(words_per_image), len(tags)), np.uint8)
    for row, words in enumerate(words_per_image):
        labels[row, [index[w] for w in words if w in index]] = 1
    return labels


def average_precision(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per tag (column), the average precision of ranking images by score (NaN where no image
    has the tag): the mean of the precision at each positive's rank."""
    order = np.argsort(-scores, axis=0, kind="stable")
    hits = np.take_along_axis(labels.astype(np.float64), order, axis=0)
    precision_at = np.cumsum(hits, axis=0) / np.arange(1, len(hits) + 1)[:, None]
    positives = hits.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(positives > 0, (precision_at * hits).sum(axis=0) / positives, np.nan)


class TaggingTask(data.CaptionedImageLoaders, Task):
    """Multi-label image tagging with the words of the images' captions (visual concepts)."""

    name = "tagging"
    Config = TaggingConfig
    monitor = "val_loss"
    monitor_mode = "min"
    serving_inputs = {"image_bytes": "tf.string [N]: encoded PNG or JPEG images of any size"}
    serving_outputs = {"tags": "tf.string [N, top_k]: the most probable tags, best first",
                       "scores": "tf.float32 [N, top_k]: each tag's probability"}
    folder_layout = CAPTIONS_FOLDER_LAYOUT

    # -- data: the loaders (data.CaptionedImageLoaders) give, per split, (images, captions) --
    def prepare_datasets(self, splits):
        """Tags from the training captions; each image with its uint8 tag labels."""
        import tensorflow as tf

        words = {split: caption_words(splits[split][1]) for split in SPLITS}
        tags = choose_tags(words["train"], self.config.tags, self.config.min_images)
        self.info.update(tags=tags, image_size=self.config.image_size, train_examples=len(words["train"]))
        self.labels = {split: tag_labels(words[split], tags) for split in SPLITS}
        self.image_datasets = {split: splits[split][0].batch(self.config.batch_size) for split in SPLITS}
        flip = self.config.flip

        def example(image, labels, train):
            image = tf.cast(image, tf.float32)
            if train and flip:
                image = tf.image.random_flip_left_right(image, seed=self.seed)
            return image, labels

        return {split: self.batch(tf.data.Dataset.zip((splits[split][0],
                                                       tf.data.Dataset.from_tensor_slices(self.labels[split]))),
                                  split, map_example=lambda im, y, t=(split == "train"): example(im, y, t))
                for split in SPLITS}

    # -- model -----------------------------------------------------------------
    def build_model(self):
        """The captioning task's small CNN, dropout (named ``dropout``: captioning cuts the network
        there) and one logit per tag (``logits``)."""
        import keras
        from kerasapps_captioning import models as model_code

        size = self.config.image_size
        image = keras.Input((size, size, 3), name="image")
        x = model_code.small_cnn(image, self.config)
        x = keras.layers.Dropout(self.config.dropout, name="dropout")(x)
        logits = keras.layers.Dense(len(self.info["tags"]), name="logits", dtype="float32")(x)
        model = keras.Model(image, logits, name="tagger")
        model.compile(
            optimizer=keras.optimizers.Adam(self.scheduled_learning_rate(self.info.get("train_examples"))),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=[keras.metrics.AUC(curve="PR", multi_label=False, from_logits=True, name="pr_auc")],
        )
        return model

    # -- evaluation --------------------------------------------------------------
    def _scores(self, model, split) -> np.ndarray:
        import tensorflow as tf

        predict = tf.function(lambda images: tf.sigmoid(model(tf.cast(images, tf.float32), training=False)))
        return np.concatenate([predict(images).numpy() for images in self.image_datasets[split]])

    def evaluate(self, model, dataset, metrics):
        """Adds mean average precision over the tags the split has (``map``), and the share of the
        5 most probable tags that an image's captions use (``precision_at_5``)."""
        scores, labels = self._scores(model, "test"), self.labels["test"]
        metrics["map"] = float(np.nanmean(average_precision(scores, labels)))
        top5 = np.argsort(-scores, axis=1)[:, :5]
        metrics["precision_at_5"] = float(np.take_along_axis(labels, top5, axis=1).mean())
        # What ranking by how often a tag is used in training gives (the image ignored).
        prior = np.broadcast_to(self.labels["train"].mean(axis=0), scores.shape)
        metrics["map_image_blind"] = float(np.nanmean(average_precision(prior, labels)))
        return metrics

    def describe_predictions(self, model, dataset, count=5):
        tags = self.info["tags"]
        scores, labels = self._scores(model, "test")[:count], self.labels["test"][:count]
        lines = []
        for row, truth in zip(scores, labels):
            best = np.argsort(-row)[:6]
            shown = ", ".join(f"{tags[i]}{'*' if truth[i] else ''} {row[i]:.2f}" for i in best)
            lines.append(f"tags: {shown}   (* in its captions)")
        return lines

    # -- serving -----------------------------------------------------------------
    def serving_function(self, model):
        import tensorflow as tf

        size = self.config.image_size
        k = min(self.config.top_k, len(self.info["tags"]))
        names = tf.constant(self.info["tags"])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(image_bytes):
            probabilities = tf.sigmoid(model(decode_images(image_bytes, (size, size)), training=False))
            scores, indices = tf.math.top_k(probabilities, k=k)
            return {"tags": tf.gather(names, indices), "scores": scores}

        return serve

    def tensor_core(self, model):
        """The tagger itself for LiteRT / ONNX: pixels in, one logit per tag out."""
        core = super().tensor_core(model)
        core.classes, core.scores = list(self.info["tags"]), False  # several tags per image: no argmax
        core.postprocessing = ("one logit per tag [N, tags], no sigmoid applied: sigmoid(logit) is the probability "
                               f"that the image shows the tag named in 'classes'; the SavedModel returns the top "
                               f"{self.config.top_k}")
        return core
