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
import math
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from kerasapps.api import (CAPTIONS_FOLDER_LAYOUT, SPLITS, Task, TaskConfig, Vocabulary, build_vocabulary,
                           decode_images, field, r_precision, recall_at_k)
from kerasapps_captioning import data
from kerasapps_captioning import model as model_code

MAX_LOGIT_SCALE = 100.0  # CLIP's cap on 1 / temperature: a larger scale made its training unstable
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
    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    x = model_code.small_cnn(image, cfg)
    x = keras.layers.Dense(cfg.embedding_dim, name="image_projection", dtype="float32")(x)
    x = keras.layers.UnitNormalization(name="image_unit", dtype="float32")(x)
    return keras.Model(image, x, name="image_encoder")


def build_text_encoder(cfg, vocab_size: int) -> keras.Model:
    """Word ids ``[N, T]`` -> unit vectors ``[N, embedding_dim]``: word embeddings, a bidirectional
    GRU's last states (padding masked: an empty caption gives the projection's bias) and a
    linear projection."""
    tokens = keras.Input((cfg.max_caption_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, cfg.word_dim, mask_zero=True, name="word_embedding")(tokens)
    x = keras.layers.Bidirectional(keras.layers.GRU(cfg.text_units), name="bigru")(x)
    x = keras.layers.Dense(cfg.embedding_dim, name="text_projection", dtype="float32")(x)
    x = keras.layers.UnitNormalization(name="text_unit", dtype="float32")(x)
    return keras.Model(tokens, x, name="text_encoder")


def gather_replicas(local):
    """Every replica's rows of ``local``, in replica order, and where this replica's rows start.

    Under one replica: ``(local, 0)``. The gradient flows back to each replica's own rows
    (``ReplicaContext.all_gather`` sums the replicas' gradients and slices), so a loss over the
    gathered rows trains as if the global batch were on one device.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return local, tf.constant(0)
    gathered = context.all_gather(local, axis=0)
    sizes = context.all_gather(tf.shape(local)[:1], axis=0)
    return gathered, tf.reduce_sum(sizes[:context.replica_id_in_sync_group])


def contrastive_losses(image_embeddings, text_embeddings, logit_scale):
    """Symmetric InfoNCE (CLIP): per local pair, the mean of two cross-entropies, image -> the
    global batch's texts and text -> its images, with logits ``logit_scale * cosine``.

    Returns ``(losses [n], correct [n], pairs)``: each local pair's loss, whether both directions
    rank it first in the global batch, and the global batch's pair count. Inputs are unit
    vectors ``[n, d]`` of this replica.
    """
    all_images, offset = gather_replicas(image_embeddings)
    all_texts, _ = gather_replicas(text_embeddings)
    labels = offset + tf.range(tf.shape(image_embeddings)[0])
    image_to_text = logit_scale * tf.matmul(image_embeddings, all_texts, transpose_b=True)
    text_to_image = logit_scale * tf.matmul(text_embeddings, all_images, transpose_b=True)
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits
    losses = 0.5 * (cross_entropy(labels, image_to_text) + cross_entropy(labels, text_to_image))
    correct = ((tf.argmax(image_to_text, -1, output_type=tf.int32) == labels)
               & (tf.argmax(text_to_image, -1, output_type=tf.int32) == labels))
    return losses, correct, tf.shape(all_texts)[0]


class DualEncoder(keras.Model):
    """An image encoder and a text encoder into one space, and a learnt temperature.

    ``call`` maps ``{"image": [N, S, S, 3] 0..255, "tokens": [N, T]}`` to
    ``{"image_embedding", "text_embedding"}`` (unit vectors); ``train_step`` minimises
    :func:`contrastive_losses` over the global batch (all replicas' pairs are each pair's
    negatives) and logs ``loss``, ``batch_accuracy`` (both directions rank the pair first in the
    batch) and ``temperature``.

    Example::

        model = DualEncoder(build_image_encoder(cfg), build_text_encoder(cfg, vocab.size), vocabulary=vocab)
        model.compile(keras.optimizers.Adam(1e-3))
        model.image_embeddings(uint8_images) @ model.text_embeddings(["a red circle"]).T   # cosines
    """

    def __init__(self, image_encoder, text_encoder, *, vocabulary: Vocabulary | None = None,
                 temperature: float = 0.07, learn_temperature: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.vocabulary = vocabulary  # not a layer: the export tracks its lookup table (serving_resources)
        self.log_logit_scale = self.add_weight(
            name="log_logit_scale", shape=(), initializer=keras.initializers.Constant(math.log(1 / temperature)),
            trainable=learn_temperature)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "batch_accuracy", "temperature")}
        self.built = True  # both encoders are built; the engine must not build it again

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def logit_scale(self):
        return tf.minimum(tf.exp(tf.cast(self.log_logit_scale, tf.float32)), MAX_LOGIT_SCALE)

    def call(self, inputs, training=None):
        return {"image_embedding": self.image_encoder(tf.cast(inputs["image"], tf.float32), training=training),
                "text_embedding": self.text_encoder(inputs["tokens"], training=training)}

    def _step(self, data, training):
        embeddings = self(data, training=training)
        return contrastive_losses(embeddings["image_embedding"], embeddings["text_embedding"], self.logit_scale)

    def _update(self, losses, correct):
        self.trackers["loss"].update_state(losses)
        self.trackers["batch_accuracy"].update_state(tf.cast(correct, tf.float32))
        self.trackers["temperature"].update_state(1.0 / self.logit_scale)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            losses, correct, pairs = self._step(data, training=True)
            # Each replica's share of the global mean: the optimizer sums the replicas' gradients.
            loss = tf.reduce_sum(losses) / tf.cast(tf.maximum(pairs, 1), tf.float32)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._update(losses, correct)

    def test_step(self, data):
        losses, correct, _ = self._step(data, training=False)
        return self._update(losses, correct)

    # -- embeddings for other tasks and for serving ------------------------------
    @property
    def image_size(self) -> int:
        return int(self.image_encoder.input.shape[1])

    def embed_images(self, images):
        """Graph code: images ``[N, H, W, 3]`` in 0..255 (resized when not the model's size) -> unit vectors."""
        images = tf.cast(images, tf.float32)
        size = self.image_size
        if images.shape[1] != size or images.shape[2] != size:
            images = tf.image.resize(images, (size, size), antialias=True)
        return self.image_encoder(images, training=False)

    def embed_texts(self, texts):
        """Graph code: captions ``tf.string [N]`` -> unit vectors (standardised as in training)."""
        return self.text_encoder(tf.cast(self.vocabulary.encode(texts), tf.int32), training=False)

    def image_embeddings(self, images, batch_size: int = 256) -> np.ndarray:
        """uint8 or float images ``[N, H, W, 3]`` (0..255; an array or batches of them) -> float32 ``[N, d]``."""
        embed = tf.function(self.embed_images, reduce_retracing=True)
        batches = ([images[i:i + batch_size] for i in range(0, len(images), batch_size)]
                   if isinstance(images, np.ndarray) else images)
        out = [embed(tf.convert_to_tensor(batch)).numpy() for batch in batches]
        return np.concatenate(out) if out else np.zeros((0, self.image_encoder.output.shape[-1]), np.float32)

    def text_embeddings(self, texts, batch_size: int = 1024) -> np.ndarray:
        """Captions (str) -> float32 ``[N, d]``."""
        texts = list(texts)
        embed = tf.function(self.embed_texts, reduce_retracing=True)
        out = [embed(tf.constant(texts[i:i + batch_size])).numpy() for i in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.text_encoder.output.shape[-1]), np.float32)


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
