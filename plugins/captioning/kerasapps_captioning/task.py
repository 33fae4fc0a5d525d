"""Image captioning, Show and Tell (Vinyals et al. 2015): a CNN encodes the image to a
vector fed to an LSTM as its first input; the LSTM then reads the caption so far
(teacher forcing in training) and predicts the next word. Decoding is greedy or
beam search, as graph code inside the SavedModel.

Data, model, metrics, serving, in that order.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from kerasapps.bleu import corpus_bleu, exact_match_rate
from kerasapps.captions import LAYOUT as CAPTIONS_FOLDER_LAYOUT
from kerasapps.captions import read_captions_folder
from kerasapps.config import TaskConfig, field
from kerasapps.data import load_tfds
from kerasapps.decoding import decode
from kerasapps.errors import UsageError
from kerasapps.images import decode_images
from kerasapps.layers import ForgetGateBias, FusedBatchNormalization
from kerasapps.task import SPLITS, Task
from kerasapps.text import END_ID, START_ID, Vocabulary, build_vocabulary, standardize_texts

# keras.applications encoders: constructor and the preprocessing its weights expect.
APPLICATIONS = {
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2"),
    "inception_v3": ("InceptionV3", "inception_v3"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet"),
}


@dataclasses.dataclass
class CaptioningConfig(TaskConfig):
    epochs: int = field(12, "training epochs")
    batch_size: int = field(64, "global batch size (images)")
    captions_per_image: int = field(
        1, "reference captions trained per image and step (taken at random); the image is encoded once for all",
        minimum=1)
    learning_rate: float = field(2e-3, "Adam learning rate (the peak, with lr_schedule=cosine)")
    lr_schedule: Literal["constant", "cosine"] = field(
        "cosine", "constant: keep the learning rate; cosine: decay it to 5% over the whole run")
    image_size: int = field(64, "input side in pixels", minimum=16, maximum=4096)
    encoder: Literal["cnn", "mobilenet_v2", "inception_v3", "efficientnet_b0"] = field(
        "cnn", "image encoder: a small CNN trained from scratch, or a keras.applications model")
    encoder_weights: Literal["none", "imagenet"] = field("none", "keras.applications weights (imagenet downloads)")
    freeze_encoder: bool = field(False, "keep the keras.applications encoder's weights fixed")
    cache_features: bool = field(
        False, "with freeze_encoder: compute each image's encoder features once (first epoch) and keep them in memory")
    cnn_filters: tuple[int, ...] = field((16, 32, 64, 128), "small CNN: filters per conv block (each halves the size)",
                                           minimum=1)
    cnn_pooling: Literal["max", "flatten"] = field(
        "max", "small CNN: global max pooling of its last feature map, or the map flattened")
    embed_dim: int = field(128, "image and word embedding size", minimum=1)
    lstm_units: int = field(256, "LSTM units", minimum=1)
    lstm_layers: int = field(1, "stacked LSTM layers", minimum=1)
    dropout: float = field(0.2, "dropout on the LSTM output", minimum=0, below=1)
    forget_bias: float = field(3.0, "initial LSTM forget-gate bias (Keras's default is 1)")
    max_caption_length: int = field(16, "words per caption (longer ones are cut)", minimum=1)
    min_word_count: int = field(2, "words seen fewer times in training captions become <unk>", minimum=1)
    beam_size: int = field(3, "beam width for evaluation and export (1 = greedy)", minimum=1)
    length_alpha: float = field(0.0, "GNMT length-penalty exponent for beam search (0 = plain log-probability)")
    train_examples: int = field(32000, "shapes: training images generated (each with 5-6 captions)", minimum=1)
    eval_examples: int = field(500, "shapes: validation and test images each", minimum=1)
    skip_bad_examples: bool = field(False, "folder: skip (and count) rows with a missing image or empty caption")

    def validate(self):
        if self.cache_features and (self.encoder == "cnn" or not self.freeze_encoder):
            raise UsageError("cache_features needs a frozen keras.applications encoder: "
                             "--set encoder=mobilenet_v2 --set freeze_encoder=true (the small CNN always trains)")
        if self.encoder == "inception_v3" and self.image_size < 75:
            raise UsageError("encoder=inception_v3 needs image_size >= 75")


class CaptioningTask(Task):
    """Image captioning (CNN encoder + LSTM decoder, Show and Tell)."""

    name = "captioning"
    Config = CaptioningConfig
    monitor = "val_loss"
    monitor_mode = "min"
    serving_inputs = {"image_bytes": "tf.string [N]: encoded PNG or JPEG images of any size"}
    serving_outputs = {"caption": "tf.string [N]: the generated caption (beam size fixed at export)"}
    folder_layout = CAPTIONS_FOLDER_LAYOUT

    # -- data ------------------------------------------------------------------
    def build_datasets(self):
        kind = self.source.kind
        if kind == "registered":
            images, captions = self._shapes()
        elif kind == "tfds":
            images, captions = self._tfds()
        else:
            images, captions = self._folder()
        words = build_vocabulary(
            (c for caps in captions["train"] for c in caps), min_count=self.config.min_word_count
        )
        self.info.update(vocabulary=words, image_size=self.config.image_size,
                         train_images=len(captions["train"]))
        vocab = self.vocabulary
        # References for BLEU, tokenised as the model sees them (standardised words).
        self.references = {split: _tokenized_references(captions[split]) for split in ("validation", "test")}
        self.image_datasets = {split: images[split].batch(self.config.batch_size) for split in SPLITS}
        # The model reads images, or with a cached frozen encoder the features it computes from them.
        inputs = self._cached_features(self.image_datasets) if self.config.cache_features else images
        out = {}
        for split in SPLITS:
            refs = max(len(c) for c in captions[split])
            padded = tf.constant([list(c) + [""] * (refs - len(c)) for c in captions[split]])
            ds = tf.data.Dataset.zip((inputs[split], tf.data.Dataset.from_tensor_slices(padded)))
            if split == "train":
                ds = ds.shuffle(10_000, seed=self.seed, reshuffle_each_iteration=True)
            ds = ds.map(
                lambda image, caps, train=(split == "train"): self._teacher_forcing(vocab, image, caps, train),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            out[split] = ds.batch(self.config.batch_size, drop_remainder=self.drop_remainder).prefetch(tf.data.AUTOTUNE)
        return out

    def _cached_features(self, image_batches):
        """Per split, each image's frozen-encoder features: computed by the model's own
        backbone on the first full pass, then read from memory (``Dataset.cache``)."""
        extractor = self._image_features()
        return {split: ds.map(lambda im: extractor(tf.cast(im, tf.float32), training=False)).unbatch().cache()
                for split, ds in image_batches.items()}

    def _teacher_forcing(self, vocab, image, captions, random_references):
        """An image (or its cached features) and its references [R] -> captions_per_image (K) of them, each as
        inputs <start> w1..wn, targets w1..wn <end> and weights on the real steps, [K, T + 1].

        Training takes K distinct references at random, evaluation the first K. Slots beyond an
        image's references (K > R) are empty captions with zero weight.
        """
        k = self.config.captions_per_image
        captions = tf.pad(captions, [[0, max(0, k - captions.shape[0])]])  # references first, then ""
        count = tf.reduce_sum(tf.cast(tf.strings.length(captions) > 0, tf.int32))
        order = tf.random.shuffle(tf.range(count), seed=self.seed) if random_references else tf.range(count)
        chosen = tf.gather(captions, tf.concat([order[:k], tf.range(tf.minimum(count, k), k)], axis=0))
        words = tf.cast(vocab.encode(chosen), tf.int32)  # [K, T]
        length = tf.reduce_sum(tf.cast(words > 0, tf.int32), axis=1, keepdims=True)
        inputs = tf.concat([tf.fill([k, 1], START_ID), words], axis=1)
        shifted = tf.pad(words, [[0, 0], [0, 1]])
        positions = tf.range(tf.shape(shifted)[1])[tf.newaxis]
        targets = tf.where(positions == length, END_ID, shifted)
        real = (tf.strings.length(chosen) > 0)[:, tf.newaxis]
        weights = tf.cast((positions <= length) & real, tf.float32)
        key = "features" if self.config.cache_features else "image"
        return {key: tf.cast(image, tf.float32), "tokens": inputs}, targets, weights

    def _shapes(self):
        shapes = self.source.load()
        counts = {"train": self.config.train_examples, "validation": self.config.eval_examples,
                  "test": self.config.eval_examples}
        images, captions = {}, {}
        for split in SPLITS:
            arrays = shapes.generate_arrays(split, counts[split], seed=self.seed, image_size=self.config.image_size)
            images[split] = tf.data.Dataset.from_tensor_slices(arrays["image"])
            captions[split] = arrays["captions"]
        return images, captions

    def _tfds(self):
        datasets, info = load_tfds(self.source)
        if "image" not in info.features or "captions" not in info.features:
            raise UsageError(f"TFDS dataset {self.source.name!r} has no image and captions features")
        size = (self.config.image_size, self.config.image_size)
        images, captions = {}, {}
        for split, ds in datasets.items():
            texts = [[t.decode("utf-8") for t in ex["captions"]["text"]] for ex in ds.map(lambda e: {"captions": e["captions"]}).as_numpy_iterator()]
            keep = [i for i, caps in enumerate(texts) if any(c.strip() for c in caps)]
            captions[split] = [[c for c in texts[i] if c.strip()] for i in keep]
            resized = ds.map(lambda e: tf.cast(tf.round(tf.image.resize(tf.cast(e["image"], tf.float32), size)), tf.uint8),
                             num_parallel_calls=tf.data.AUTOTUNE)
            keep_set = tf.constant(np.isin(np.arange(len(texts)), keep))
            images[split] = (resized.enumerate().filter(lambda i, _: tf.gather(keep_set, i)).map(lambda _, im: im)
                             .cache())
        return images, captions

    def _folder(self):
        folder = read_captions_folder(self.source.path, skip_bad_examples=self.config.skip_bad_examples)
        images = {split: folder.image_dataset(split, self.config.image_size) for split in SPLITS}
        return images, folder.captions

    @property
    def vocabulary(self) -> Vocabulary:
        if getattr(self, "_vocabulary", None) is None:
            self._vocabulary = Vocabulary(self.info["vocabulary"], self.config.max_caption_length)
        return self._vocabulary

    # -- model -----------------------------------------------------------------
    def _encoder(self):
        cfg = self.config
        size = cfg.image_size
        image = keras.Input((size, size, 3), name="image")
        if cfg.encoder == "cnn":
            x = keras.layers.Rescaling(1 / 255.0, name="rescale")(image)
            for i, filters in enumerate(cfg.cnn_filters, start=1):
                x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
                x = FusedBatchNormalization(name=f"bn{i}")(x)
                x = keras.layers.ReLU(name=f"relu{i}")(x)
                x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
            if cfg.cnn_pooling == "max":
                # One set of weights for what is seen wherever it is. Flattened, each position
                # has its own, and the small objects' shapes were never learnt (the positions
                # the captions need survive pooling: zero padding lets the filters see them).
                x = keras.layers.GlobalMaxPooling2D(name="global_max")(x)
            else:
                x = keras.layers.Flatten(name="flatten")(x)
        else:
            x = self._image_features()(image)
        x = keras.layers.Dense(cfg.embed_dim, activation="relu", name="image_embedding")(x)
        return keras.Model(image, x, name="encoder")

    def _image_features(self):
        """The keras.applications backbone with its preprocessing: images (0..255) -> pooled
        features. Built once per task, so cached features and the model share its weights."""
        if getattr(self, "_image_features_model", None) is not None:
            return self._image_features_model
        cfg = self.config
        size = cfg.image_size
        class_name, module = APPLICATIONS[cfg.encoder]
        weights = None if cfg.encoder_weights == "none" else cfg.encoder_weights
        try:
            backbone = getattr(keras.applications, class_name)(
                include_top=False, weights=weights, input_shape=(size, size, 3), pooling="avg")
        except Exception as exc:  # offline: a plain Exception wrapping the URL error
            raise UsageError(
                f"could not load {cfg.encoder} weights {cfg.encoder_weights!r} (no network?): "
                f"{str(exc).splitlines()[0]}. Offline: --set encoder_weights=none, or put the weights file "
                "in ~/.keras/models/"
            ) from None
        backbone.trainable = not cfg.freeze_encoder
        preprocess = getattr(keras.applications, module).preprocess_input
        image = keras.Input((size, size, 3), name="image")
        features = backbone(preprocess(image), training=False if cfg.freeze_encoder else None)
        self._image_features_model = keras.Model(image, features, name="image_features")
        return self._image_features_model

    def build_model(self):
        cfg = self.config
        vocab_size = self.vocabulary.size
        image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
        steps, k = cfg.max_caption_length + 1, cfg.captions_per_image
        tokens = keras.Input((k, steps), dtype="int32", name="tokens")
        encoder = self._encoder()
        image_step = keras.layers.Reshape((1, cfg.embed_dim), name="image_step")
        embedding = keras.layers.Embedding(vocab_size, cfg.embed_dim, mask_zero=True, name="embedding")
        concatenate = keras.layers.Concatenate(axis=1, name="image_then_words")
        lstms = [keras.layers.LSTM(cfg.lstm_units, return_sequences=True, return_state=True, name=f"lstm{i}",
                                   unit_forget_bias=False, bias_initializer=ForgetGateBias(cfg.forget_bias))
                 for i in range(1, cfg.lstm_layers + 1)]
        dropout = keras.layers.Dropout(cfg.dropout, name="dropout")
        to_logits = keras.layers.Dense(vocab_size, name="logits", dtype="float32")

        def next_word_logits(image_vectors):
            # Each image is encoded once and its vector reused for its K captions (rows b*K .. b*K+K-1).
            x = image_step(keras.ops.repeat(image_vectors, k, axis=0))
            words = embedding(keras.ops.reshape(tokens, (-1, steps)))
            # Show and Tell: the image is the LSTM's input at step -1, then the words.
            x = concatenate([x, words])
            for lstm in lstms:
                x = lstm(x)[0]
            x = dropout(x[:, 1:])  # the output at the image step predicts nothing
            return keras.ops.reshape(to_logits(x), (-1, k, steps, vocab_size))

        features_head = None
        if cfg.cache_features:  # the same layers from the frozen backbone's features on
            features = keras.Input(encoder.get_layer("image_features").output.shape[1:], name="features")
            features_head = keras.Model({"features": features, "tokens": tokens},
                                        next_word_logits(encoder.get_layer("image_embedding")(features)),
                                        name="features_head")
        model = ShowAndTell({"image": image, "tokens": tokens}, next_word_logits(encoder(image)),
                            features_head=features_head, name="show_and_tell")
        model.compile(
            optimizer=keras.optimizers.Adam(self._learning_rate(), clipnorm=5.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
        )
        return model

    def _learning_rate(self):
        """The peak rate, decayed along a cosine over all training steps (the schedule reads
        the optimizer's step count, so a resumed run continues where it stopped)."""
        cfg = self.config
        images = self.info.get("train_images")
        if cfg.lr_schedule == "constant" or not images:  # no data built (export, predict): no training
            return cfg.learning_rate
        steps = cfg.steps_per_epoch or max(1, images // cfg.batch_size)
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=cfg.epochs * steps, alpha=0.05)

    # -- decoding --------------------------------------------------------------
    def caption_function(self, model, beam_size: int | None = None, alpha: float | None = None,
                         use_beam: bool | None = None):
        """A graph function: float32 images [N, S, S, 3] (0..255) -> (token ids [N, T], log-prob [N]).

        Beam search when ``beam_size`` > 1 (or ``use_beam``), else greedy decoding.
        """
        cfg = self.config
        beam_size = cfg.beam_size if beam_size is None else beam_size
        alpha = cfg.length_alpha if alpha is None else alpha
        encoder = model.get_layer("encoder")
        embedding = model.get_layer("embedding")
        lstms = [model.get_layer(f"lstm{i}") for i in range(1, cfg.lstm_layers + 1)]
        logits_layer = model.get_layer("logits")
        max_length = cfg.max_caption_length + 1

        def run_lstms(x, states):
            new_states = []
            for layer, (h, c) in zip(lstms, states):
                x, h, c = layer(x, initial_state=[h, c], training=False)
                new_states.append((h, c))
            return x, tuple(new_states)

        def step(tokens, states):
            x, states = run_lstms(embedding(tokens)[:, tf.newaxis, :], states)
            return tf.nn.log_softmax(tf.cast(logits_layer(x[:, 0]), tf.float32)), states

        def captions(images):
            features = encoder(images, training=False)
            batch = tf.shape(features)[0]
            zeros = tuple((tf.zeros([batch, cfg.lstm_units], features.dtype),) * 2 for _ in lstms)
            _, states = run_lstms(features[:, tf.newaxis, :], zeros)
            start = tf.fill([batch], START_ID)
            return decode(step, states, start, END_ID, max_length, beam_size, alpha, use_beam)

        return captions

    def _captions_for(self, model, split):
        decode = tf.function(self.caption_function(model))
        texts = []
        for images in self.image_datasets[split]:
            tokens, _ = decode(tf.cast(images, tf.float32))
            texts += [t.decode("utf-8") for t in self.vocabulary.decode(tokens).numpy()]
        return texts

    # -- evaluation --------------------------------------------------------------
    def evaluate(self, trainer, dataset):
        metrics = trainer.evaluate(dataset)
        hypotheses = [t.split() for t in self._captions_for(trainer.model, "test")]
        references = self.references["test"]
        metrics.update(corpus_bleu(hypotheses, references))
        metrics["exact_match"] = exact_match_rate(hypotheses, references)
        return metrics

    def describe_predictions(self, model, dataset, count=5):
        captions = self._captions_for(model, "test")[:count]
        lines = []
        for caption, refs in zip(captions, self.references["test"]):
            exact = "=" if caption.split() in refs else " "
            lines.append(f"{exact} predicted: {caption}\n      reference: {' '.join(refs[0])}")
        return lines

    # -- serving -----------------------------------------------------------------
    def serving_function(self, model):
        size = self.config.image_size
        captions = self.caption_function(model)
        vocab = self.vocabulary

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(image_bytes):
            tokens, _ = captions(decode_images(image_bytes, (size, size)))
            return {"caption": vocab.decode(tokens)}

        return serve


class ShowAndTell(keras.Model):
    """The captioning model: ``{"image", "tokens"}`` -> next-word logits ``[N, K, T + 1, vocab]``.

    With a cached frozen encoder (``features_head``) it also takes ``{"features", "tokens"}``,
    the backbone's pooled features in place of the image, so training skips the backbone;
    ``fit``, ``train_step`` and the checkpoints (which hold the backbone too) stay Keras's own.

        model({"image": images, "tokens": tokens})      # always
        model({"features": features, "tokens": tokens})  # with features_head
    """

    def __init__(self, inputs, outputs, features_head=None, **kwargs):
        super().__init__(inputs, outputs, **kwargs)
        self.features_head = features_head
        if features_head is not None:
            self.input_spec = None  # two input structures: each path checks its own in call()

    def call(self, inputs, training=None, mask=None):
        if "features" in inputs:
            if self.features_head is None:
                raise ValueError("this model was built without cache_features: it takes images")
            return self.features_head(inputs, training=training)
        return super().call(inputs, training=training, mask=mask)


def _tokenized_references(captions) -> list[list[list[str]]]:
    flat = standardize_texts(c for caps in captions for c in caps)
    out, i = [], 0
    for caps in captions:
        out.append([flat[j].split() for j in range(i, i + len(caps))])
        i += len(caps)
    return out
