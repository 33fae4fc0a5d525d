"""Captioning data: images with their reference captions, and teacher forcing.

Each reader returns ``{split: (images, captions)}``: a ``tf.data.Dataset`` of uint8
images and a list of each image's reference captions, in the same order.

Example::

    images, captions = read_shapes(shapes, config, seed=0)["train"]
    inputs, targets, weights = teacher_forcing(vocab, image, references, 1, True, seed=0)
"""

from __future__ import annotations

import numpy as np

from kerasapps.api import (END_ID, SPLITS, START_ID, CiderD, UsageError, load_tfds, read_captions_folder,
                           standardize_texts)


def read_shapes(shapes, config, seed: int):
    """Generated scenes: per split ``(images, captions)``, a dataset of uint8 images and their references."""
    import tensorflow as tf

    counts = {"train": config.train_examples, "validation": config.eval_examples, "test": config.eval_examples}
    out = {}
    for split in SPLITS:
        arrays = shapes.generate_arrays(split, counts[split], seed=seed, image_size=config.image_size)
        out[split] = (tf.data.Dataset.from_tensor_slices(arrays["image"]), arrays["captions"])
    return out

def read_tfds(source, image_size: int):
    """A TFDS captions dataset (coco_captions): images without captions are left out."""
    import tensorflow as tf

    datasets, info = load_tfds(source)
    if "image" not in info.features or "captions" not in info.features:
        raise UsageError(f"TFDS dataset {source.name!r} has no image and captions features")
    size = (image_size, image_size)
    out = {}
    for split, ds in datasets.items():
        texts = [[t.decode("utf-8") for t in ex["captions"]["text"]] for ex in ds.map(lambda e: {"captions": e["captions"]}).as_numpy_iterator()]
        keep = [i for i, caps in enumerate(texts) if any(c.strip() for c in caps)]
        captions = [[c for c in texts[i] if c.strip()] for i in keep]
        resized = ds.map(lambda e: tf.cast(tf.round(tf.image.resize(tf.cast(e["image"], tf.float32), size)), tf.uint8),
                         num_parallel_calls=tf.data.AUTOTUNE)
        keep_set = tf.constant(np.isin(np.arange(len(texts)), keep))
        images = resized.enumerate().filter(lambda i, _: tf.gather(keep_set, i)).map(lambda _, im: im).cache()
        out[split] = (images, captions)
    return out

def read_folder(path, config, info: dict):
    """``folder:PATH`` in Flickr8k's layout (``kerasapps.api.read_captions_folder``); records in
    ``info`` the split scored as the test split (dev, where the copy has no test list)."""
    folder = read_captions_folder(path, skip_bad_examples=config.skip_bad_examples)
    info["scored_split"] = folder.scored_split
    return {split: (folder.image_dataset(split, config.image_size), folder.captions[split]) for split in SPLITS}


class CaptionedImageLoaders:
    """The loaders of a task that reads captioned images (captioning, tagging): each returns,
    per split, ``(images, captions)``; the task's ``prepare_datasets`` turns them into batches."""

    def load_registered(self):  # --dataset shapes
        return read_shapes(self.source.load(), self.config, self.seed)

    def load_tfds(self):
        return read_tfds(self.source, self.config.image_size)

    def load_folder(self):
        return read_folder(self.source.path, self.config, self.info)


def teacher_forcing(vocab, image, captions, captions_per_image: int, random_references: bool, seed: int,
                    input_key: str = "image"):
    """An image (or its cached features) and its references [R] -> captions_per_image (K) of them, each as
    inputs <start> w1..wn, targets w1..wn <end> and weights on the real steps, [K, T + 1].

    Training takes K distinct references at random, evaluation the first K. Slots beyond an
    image's references (K > R) are empty captions with zero weight. ``input_key`` names the
    image input ("features" for cached encoder features).
    """
    import tensorflow as tf

    k = captions_per_image
    captions = tf.pad(captions, [[0, max(0, k - captions.shape[0])]])  # references first, then ""
    count = tf.reduce_sum(tf.cast(tf.strings.length(captions) > 0, tf.int32))
    order = tf.random.shuffle(tf.range(count), seed=seed) if random_references else tf.range(count)
    chosen = tf.gather(captions, tf.concat([order[:k], tf.range(tf.minimum(count, k), k)], axis=0))
    words = tf.cast(vocab.encode(chosen), tf.int32)  # [K, T]
    length = tf.reduce_sum(tf.cast(words > 0, tf.int32), axis=1, keepdims=True)
    inputs = tf.concat([tf.fill([k, 1], START_ID), words], axis=1)
    shifted = tf.pad(words, [[0, 0], [0, 1]])
    positions = tf.range(tf.shape(shifted)[1])[tf.newaxis]
    targets = tf.where(positions == length, END_ID, shifted)
    real = (tf.strings.length(chosen) > 0)[:, tf.newaxis]
    weights = tf.cast((positions <= length) & real, tf.float32)
    return {input_key: tf.cast(image, tf.float32), "tokens": inputs}, targets, weights


def tokenized_references(captions) -> list[list[list[str]]]:
    """Each image's references as word lists, standardised as the model sees them (for BLEU)."""
    flat = standardize_texts(c for caps in captions for c in caps)
    out, i = [], 0
    for caps in captions:
        out.append([flat[j].split() for j in range(i, i + len(caps))])
        i += len(caps)
    return out


def reward_scorer(vocab, captions):
    """CIDEr-D over the training references as the model writes them (token ids, ``<end>`` left
    out): the self-critical reward, with the training corpus's document frequencies."""
    flat = [c for caps in captions for c in caps]
    ids = np.asarray(vocab.encode(flat))
    references, i = [], 0
    for caps in captions:
        references.append([tuple(int(t) for t in row if t > 0) for row in ids[i:i + len(caps)] if row.any()])
        i += len(caps)
    return CiderD(references)
