"""Image-text matching: an image encoder and a text encoder map into one embedding space,
trained with CLIP's symmetric contrastive loss (Radford et al. 2021) at small scale.

It reads the captioning task's data (shapes, a TFDS captions dataset, Flickr8k's folder
layout). A trained run is a reusable piece: text-to-image scores its generated images with it
(R-precision, a Frechet distance in its image features)::

    kerasapps run matching --dataset folder:flickr8k --workdir runs/matching
    kerasapps run text-to-image --dataset folder:flickr8k --set matching_run=runs/matching

The model a run rebuilds (``read_trained_run(path, task="matching").build_model()``) is a
:class:`DualEncoder`; ``image_embeddings(images)`` and ``text_embeddings(captions)`` give unit
vectors, whose dot products are cosines::

    matcher = read_trained_run("runs/matching", task="matching").build_model()
    cosine = matcher.image_embeddings(uint8_images) @ matcher.text_embeddings(["a dog runs"]).T
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import keras

from kerasapps.api import (CAPTIONS_FOLDER_LAYOUT, SPLITS, Task, TaskConfig, Vocabulary, build_vocabulary,
                           decode_images, field, r_precision, recall_at_k)
from kerasapps_captioning import data

RECALL_KS = (1, 5, 10)
R_PRECISION_DISTRACTORS = 99  # AttnGAN's: the true caption among 100


@dataclasses.dataclass
class MatchingConfig(TaskConfig):
    epochs: int = field(20, "training epochs")
    batch_size: int = field(64, "global batch size: each pair's negatives are the batch's other pairs", minimum=2)
    learning_rate: float = field(1e-3, "Adam learning rate (the peak, with lr_schedule=cosine)", above=0)
    lr_schedule: Literal["constant", "cosine"] = field(
        "cosine", "constant: keep the learning rate; cosine: decay it to 5% over the whole run")
    image_size: int = field(64, "input side in pixels", minimum=16, maximum=4096)
    cnn_filters: tuple[int, ...] = field((32, 64, 128, 256), "filters per conv block (each halves the size)",
                                           minimum=1)
    cnn_pooling: Literal["max", "flatten"] = field(
        "max", "global max pooling of the last feature map, or the map flattened")
    # At Keras's 0.99 the moving averages lagged the fast-changing features of short runs (shapes, 6 epochs
    # of 2000 at 32x32): validation loss 5.6 in inference mode against 1.3 with batch statistics; 0.9: 2.0 vs 1.7.
    batch_norm_momentum: float = field(0.9, "momentum of the CNN's batch norm moving averages", minimum=0, below=1)
    embedding_dim: int = field(128, "size of the shared embedding space", minimum=1)
    word_dim: int = field(128, "word embedding size", minimum=1)
    text_units: int = field(128, "units of each direction of the text encoder's bidirectional GRU", minimum=1)
    max_caption_length: int = field(24, "words per caption (longer ones are cut)", minimum=1)
    min_word_count: int = field(2, "words seen fewer times in training captions become [UNK]", minimum=1)
    temperature: float = field(0.07, "initial softmax temperature (CLIP's)", above=0, maximum=1)
    learn_temperature: bool = field(True, "learn the temperature with the encoders (CLIP); false: keep it fixed")
    flip: bool = field(False, "random horizontal flips in training (off: captions say left and right)")
    train_examples: int = field(6000, "shapes: training images generated", minimum=1)
    eval_examples: int = field(500, "shapes: validation and test images each", minimum=1)
    skip_bad_examples: bool = field(False, "folder: skip (and count) rows with a missing image or empty caption")


def build_image_encoder(cfg) -> keras.Model:
    """Images (0..255) ``[N, S, S, 3]`` -> unit vectors ``[N, embedding_dim]``: the captioning
    task's small CNN and a linear projection."""
    import keras
    from kerasapps_captioning import models as model_code

    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    x = model_code.small_cnn(image, cfg)
    x = keras.layers.Dense(cfg.embedding_dim, name="image_projection", dtype="float32")(x)
    x = keras.layers.UnitNormalization(name="image_unit", dtype="float32")(x)
    return keras.Model(image, x, name="image_encoder")


def build_text_encoder(cfg, vocab_size: int) -> keras.Model:
    """Word ids ``[N, T]`` -> unit vectors ``[N, embedding_dim]``: word embeddings, a bidirectional
    GRU's last states (padding masked: an empty caption gives the projection's bias) and a
    linear projection."""
    import keras

    tokens = keras.Input((cfg.max_caption_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, cfg.word_dim, mask_zero=True, name="word_embedding")(tokens)
    x = keras.layers.Bidirectional(keras.layers.GRU(cfg.text_units), name="bigru")(x)
    x = keras.layers.Dense(cfg.embedding_dim, name="text_projection", dtype="float32")(x)
    x = keras.layers.UnitNormalization(name="text_unit", dtype="float32")(x)
    return keras.Model(tokens, x, name="text_encoder")


class MatchingTask(data.CaptionedImageLoaders, Task):
    """Image-text matching: two encoders into one space, CLIP's contrastive loss, retrieval recall."""

    name = "matching"
    Config = MatchingConfig
    monitor = "val_loss"
    monitor_mode = "min"
    serving_inputs = {"image_bytes": "tf.string [N]: encoded PNG or JPEG images of any size",
                      "text": "tf.string [N]: captions, row i scored against image i"}
    serving_outputs = {"image_embedding": "float32 [N, embedding_dim]: unit vectors",
                       "text_embedding": "float32 [N, embedding_dim]: unit vectors",
                       "score": "float32 [N]: cosine of row i's image and text (-1..1)"}
    folder_layout = CAPTIONS_FOLDER_LAYOUT
    data_fields = ("train_examples", "eval_examples", "skip_bad_examples")

    # -- data: the loaders (data.CaptionedImageLoaders) give, per split, (images, captions) --
    def prepare_datasets(self, splits):
        """The vocabulary from the training captions; batches of ``{"image", "tokens"}`` pairs.

        Training pairs each image with one of its captions, drawn again every epoch;
        evaluation splits use caption ``i % count`` of image ``i``.
        """
        captions = {split: splits[split][1] for split in SPLITS}
        words = build_vocabulary((c for caps in captions["train"] for c in caps), min_count=self.config.min_word_count)
        self.info.update(vocabulary=words, image_size=self.config.image_size, train_examples=len(captions["train"]))
        self.captions = captions
        self.image_datasets = {split: splits[split][0].batch(self.config.batch_size) for split in SPLITS}
        return {split: self._pairs(splits[split][0], captions[split], split) for split in SPLITS}

    def _pairs(self, images, captions, split):
        import tensorflow as tf

        vocab, train, flip = self.vocabulary, split == "train", self.config.flip
        refs = max(len(c) for c in captions)
        padded = tf.constant([list(c) + [""] * (refs - len(c)) for c in captions])
        counts = tf.constant([len(c) for c in captions], tf.int64)
        # One random number per image and epoch (rerandomised at each pass, unlike a seeded op in map).
        draws = tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((images, tf.data.Dataset.from_tensor_slices((padded, counts)), draws)).enumerate()

        def pair(index, example):
            image, (caps, count), draw = example
            pick = draw % count if train else index % count
            image = tf.cast(image, tf.float32)
            if train and flip:
                image = tf.image.random_flip_left_right(image, seed=self.seed)
            return {"image": image, "tokens": tf.cast(vocab.encode(caps[pick][tf.newaxis])[0], tf.int32)}

        return self.batch(ds, split, map_example=pair)

    @property
    def vocabulary(self) -> Vocabulary:
        if getattr(self, "_vocabulary", None) is None:
            self._vocabulary = Vocabulary(self.info["vocabulary"], self.config.max_caption_length)
        return self._vocabulary

    # -- model -----------------------------------------------------------------
    def build_model(self):
        import keras
        from kerasapps_captioning.models import DualEncoder

        cfg = self.config
        model = DualEncoder(build_image_encoder(cfg), build_text_encoder(cfg, self.vocabulary.size),
                            vocabulary=self.vocabulary, temperature=cfg.temperature,
                            learn_temperature=cfg.learn_temperature, name="dual_encoder")
        model.compile(optimizer=keras.optimizers.Adam(self.scheduled_learning_rate(self.info.get("train_examples"))))
        model.optimizer.build(model.trainable_variables)  # weights files hold its slots
        return model

    def build_training_state(self, model, batch) -> None:
        # The optimizer is built already; only the metrics are left.
        for metric in model.metrics:
            metric.reset_state()

    # -- evaluation --------------------------------------------------------------
    def evaluate(self, model, dataset, metrics):
        """Adds retrieval on the whole test split, each image against all its captions:

        - ``image_to_text_recall_at_K``: an image finds one of its captions among the K best
          of all the split's captions; ``text_to_image_recall_at_K``: a caption finds its image;
        - ``r_precision``: an image's caption (``i % count``) ranked first among itself and
          99 captions of other images (AttnGAN's measure, here of the real photos: the
          ceiling a generator's images can reach with this model); ``r_precision_chance``.
        """
        captions = self.captions["test"]
        image_vectors = model.image_embeddings(self.image_datasets["test"])
        flat = [c for caps in captions for c in caps]
        owner = np.repeat(np.arange(len(captions)), [len(caps) for caps in captions])
        text_vectors = model.text_embeddings(flat)
        scores = image_vectors @ text_vectors.T
        relevant = owner[None, :] == np.arange(len(captions))[:, None]
        for k, value in recall_at_k(scores, relevant, RECALL_KS).items():
            metrics[f"image_to_text_recall_at_{k}"] = value
        for k, value in recall_at_k(scores.T, relevant.T, RECALL_KS).items():
            metrics[f"text_to_image_recall_at_{k}"] = value
        distractors = min(R_PRECISION_DISTRACTORS, len(captions) - 1)
        first = np.cumsum([0] + [len(caps) for caps in captions[:-1]])
        chosen = first + np.arange(len(captions)) % np.array([len(caps) for caps in captions])
        metrics["r_precision"] = r_precision(image_vectors, text_vectors[chosen], distractors, seed=self.seed)
        metrics["r_precision_chance"] = 1.0 / (distractors + 1)
        return metrics

    def describe_predictions(self, model, dataset, count=5):
        """Each of a few test images with its best caption among all the split's captions."""
        captions = self.captions["test"]
        flat = [c for caps in captions for c in caps]
        owner = np.repeat(np.arange(len(captions)), [len(caps) for caps in captions])
        images = next(iter(self.image_datasets["test"])).numpy()[:count]
        scores = model.image_embeddings(images) @ model.text_embeddings(flat).T
        lines = []
        for i, row in enumerate(scores):
            best = int(np.argmax(row))
            mark = "=" if owner[best] == i else " "
            lines.append(f"{mark} image {i}: {flat[best]!r} (cosine {row[best]:.2f}; its own: {captions[i][0]!r})")
        return lines

    # -- serving -----------------------------------------------------------------
    def serving_function(self, model):
        import tensorflow as tf

        size = self.config.image_size

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes"),
                                      tf.TensorSpec([None], tf.string, name="text")])
        def serve(image_bytes, text):
            images = model.embed_images(decode_images(image_bytes, (size, size)))
            texts = model.embed_texts(text)
            return {"image_embedding": images, "text_embedding": texts, "score": tf.reduce_sum(images * texts, -1)}

        return serve

    def serving_resources(self):
        return [self.vocabulary.vectorizer]
