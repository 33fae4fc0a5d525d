"""Image captioning, Show and Tell (Vinyals et al. 2015): a CNN encodes the image to a
vector fed to an LSTM as its first input; the LSTM then reads the caption so far
(teacher forcing in training) and predicts the next word. Decoding is greedy or
beam search, as graph code inside the SavedModel.

The task: config, data, model, metrics, serving, in that order; the data readers and
teacher forcing are in ``data.py``, the networks and decoding in ``model.py``.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Literal


from kerasapps.api import (CAPTIONS_FOLDER_LAYOUT, SPLITS, Task, TaskConfig, TrainedRun, UsageError, Vocabulary,
                           build_vocabulary, corpus_bleu, corpus_cider, decode_images, exact_match_rate, field, read_trained_run)
from kerasapps_captioning import data


# Encoders that are the network of another kerasapps run (encoder_weights=RUN), by its task.
RUN_ENCODERS = ("classification", "tagging", "matching")


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
    encoder: Literal["cnn", "mobilenet_v2", "inception_v3", "efficientnet_b0", "classification", "tagging",
                     "matching"] = field(
        "cnn", "image encoder: a small CNN trained from scratch, a keras.applications model, the network of a "
        "kerasapps classification or tagging run (encoder_weights=RUN) without its classifier, or the image encoder "
        "of a matching run below its projection (at the size it was trained on)")
    encoder_weights: str = field(
        "none", "none; imagenet (keras.applications, downloads); a keras.applications weights file; or, with "
        "encoder=classification, tagging or matching, a run of that task: its folder or its best.weights.h5")
    freeze_encoder: bool = field(False, "keep the pretrained encoder's weights fixed")
    cache_features: bool = field(
        False, "with freeze_encoder: compute each image's encoder features once (first epoch) and keep them in memory")
    cnn_filters: tuple[int, ...] = field((16, 32, 64, 128), "small CNN: filters per conv block (each halves the size)",
                                           minimum=1)
    cnn_pooling: Literal["max", "flatten"] = field(
        "max", "small CNN: global max pooling of its last feature map, or the map flattened")
    normalize_features: bool = field(
        False, "batch-normalise the encoder's pooled features before the image embedding (a frozen pretrained "
        "encoder's features differ little between photos next to their mean)")
    decoder: Literal["show_and_tell", "merge"] = field(
        "show_and_tell", "show_and_tell: the image vector is the LSTM's first input; merge: the LSTM reads the "
        "words alone and the image vector joins its output before the word classifier (Mao et al. 2015)")
    embed_dim: int = field(128, "image and word embedding size", minimum=1)
    lstm_units: int = field(256, "LSTM units", minimum=1)
    lstm_layers: int = field(1, "stacked LSTM layers", minimum=1)
    dropout: float = field(0.2, "dropout on the LSTM output", minimum=0, below=1)
    forget_bias: float = field(3.0, "initial LSTM forget-gate bias (Keras's default is 1)")
    max_caption_length: int = field(16, "words per caption (longer ones are cut)", minimum=1)
    min_word_count: int = field(2, "words seen fewer times in training captions become [UNK]", minimum=1)
    objective: Literal["cross_entropy", "self_critical"] = field(
        "cross_entropy", "cross_entropy: teacher forcing on the references; self_critical: fine-tune a trained run "
        "(initial_weights) on the CIDEr-D of its own sampled captions (Rennie et al. 2017), each baselined by the "
        "image's other samples; the last epoch's weights are kept")
    self_critical_samples: int = field(5, "self_critical: captions sampled per image and step", minimum=2)
    initial_weights: str = field(
        "none", "a captioning run to start from (its folder or best.weights.h5; a self-critical run's folder gives its "
        "last epoch), built with the same settings; its vocabulary is kept")
    beam_size: int = field(3, "beam width for evaluation and export (1 = greedy)", minimum=1)
    # Flickr8k dev, recipe flickr8k: 11 of 1,000 captions held "[UNK]" ("a baby in a [UNK] [UNK]").
    emit_unknown: bool = field(
        False, "let decoding and self-critical sampling choose [UNK] (off: the decoder picks its best known word)")
    length_alpha: float = field(0.0, "GNMT length-penalty exponent for beam search (0 = plain log-probability)")
    train_examples: int = field(32000, "shapes: training images generated (each with 5-6 captions)", minimum=1)
    eval_examples: int = field(500, "shapes: validation and test images each", minimum=1)
    skip_bad_examples: bool = field(False, "folder: skip (and count) rows with a missing image or empty caption")

    def xla_problem(self):
        if self.objective == "self_critical":
            return ("objective=self_critical scores its sampled captions with CIDEr-D on the host "
                    "(tf.numpy_function), which XLA cannot compile")
        return None

    def validate(self):
        if self.objective == "self_critical" and self.initial_weights == "none":
            raise UsageError("objective=self_critical fine-tunes a trained captioning run: --set initial_weights="
                             "runs/captioning (captions sampled from an untrained decoder earn no reward)")
        if self.cache_features and (self.encoder == "cnn" or not self.freeze_encoder):
            raise UsageError("cache_features needs a frozen pretrained encoder: "
                             "--set encoder=mobilenet_v2 --set freeze_encoder=true (the small CNN always trains)")
        named = self.encoder_weights in ("none", "imagenet")
        if self.encoder in RUN_ENCODERS and named:
            raise UsageError(f"encoder={self.encoder} starts from a kerasapps {self.encoder} run: "
                             f"--set encoder_weights=runs/{self.encoder} (its folder, or the best.weights.h5 in it)")
        if self.encoder == "cnn" and self.encoder_weights != "none":
            hint = ("a run's weights need --set encoder=classification (or tagging)" if not named
                    else "imagenet weights need a keras.applications encoder, e.g. --set encoder=mobilenet_v2")
            raise UsageError(f"encoder=cnn trains from scratch and takes no encoder_weights "
                             f"({self.encoder_weights!r}): {hint}")
        if self.encoder == "inception_v3" and self.image_size < 75:
            raise UsageError("encoder=inception_v3 needs image_size >= 75")


class CaptioningTask(data.CaptionedImageLoaders, Task):
    """Image captioning (CNN encoder + LSTM decoder, Show and Tell)."""

    name = "captioning"
    Config = CaptioningConfig
    monitor = "val_loss"
    monitor_mode = "min"
    serving_inputs = {"image_bytes": "tf.string [N]: encoded PNG or JPEG images of any size"}
    serving_outputs = {"caption": "tf.string [N]: the generated caption (beam size fixed at export)"}
    folder_layout = CAPTIONS_FOLDER_LAYOUT

    def __init__(self, *args, **kwargs):
        from kerasapps_captioning import models as model_code

        super().__init__(*args, **kwargs)
        if self.config.objective == "self_critical":
            # Validation loss is teacher-forced cross-entropy, which CIDEr-D training gives up on purpose.
            self.monitor = None
        if self.config.initial_weights != "none" and "initial_run" not in self.info:
            self.info["initial_run"] = read_trained_run(self.config.initial_weights, task=self.name).to_json()
        self._read_encoder_run = self.config.encoder in RUN_ENCODERS and "encoder_run" not in self.info
        if self._read_encoder_run:
            # A new run reads the classification run now (before any data) and records it in its
            # info, so that export and evaluation rebuild the encoder without that folder.
            run = read_trained_run(self.config.encoder_weights, task=self.config.encoder)
            self.info["encoder_run"] = run.to_json()
            # Refuse a run that cannot be this encoder now, not after the data is read: build its
            # network and load its weights once and throw them away (the model's own are built later,
            # inside the strategy's scope).
            network = model_code.build_run_network(self.config, run)
            model_code.build_run_features(self.config, network)
            self._load_encoder_weights(run, network)

    # -- data: the loaders (data.CaptionedImageLoaders) give, per split, (images, captions) --
    def prepare_datasets(self, splits):
        """The vocabulary from the training captions, then teacher forcing and batching."""
        import tensorflow as tf

        images = {split: splits[split][0] for split in SPLITS}
        captions = {split: splits[split][1] for split in SPLITS}
        if "initial_run" in self.info:  # its weights are for its words
            words = TrainedRun.from_json(self.info["initial_run"]).info["vocabulary"]
        else:
            words = build_vocabulary((c for caps in captions["train"] for c in caps),
                                     min_count=self.config.min_word_count)
        self.info.update(vocabulary=words, image_size=self.config.image_size,
                         train_images=len(captions["train"]))
        vocab = self.vocabulary
        # References for BLEU, tokenised as the model sees them (standardised words).
        self.references = {split: data.tokenized_references(captions[split]) for split in ("validation", "test")}
        if self.config.objective == "self_critical":
            self.reward_scorer = data.reward_scorer(vocab, captions["train"])
        self.image_datasets = {split: images[split].batch(self.config.batch_size) for split in SPLITS}
        # The model reads images, or with a cached frozen encoder the features it computes from them.
        cache = self.config.cache_features and self._encoder_weights_final()
        inputs = self._cached_features(self.image_datasets) if cache else images
        out = {}
        for split in SPLITS:
            refs = max(len(c) for c in captions[split])
            padded = tf.constant([list(c) + [""] * (refs - len(c)) for c in captions[split]])
            ds = tf.data.Dataset.zip((inputs[split], tf.data.Dataset.from_tensor_slices(padded)))
            out[split] = self.batch(ds, split, map_example=(
                lambda image, caps, train=(split == "train"): data.teacher_forcing(
                    vocab, image, caps, self.config.captions_per_image, train, self.seed,
                    "features" if cache else "image")))
        return out

    def _encoder_weights_final(self) -> bool:
        """Whether the frozen encoder holds its final weights before any training state is built.
        The data pipeline is read before then (the core's sample batch fills the shuffle buffer,
        and with it the whole cache of a small split), so features computed from any other
        weights would be cached and trained on: a run encoder is loaded when it is built, and
        without its folder the images go through the encoder every step instead."""
        self._image_features()
        return self.config.encoder not in RUN_ENCODERS or self._encoder_run_loaded

    def _cached_features(self, image_batches):
        """Per split, each image's frozen-encoder features: computed by the model's own
        backbone on the first full pass, then read from memory (``Dataset.cache``)."""
        import tensorflow as tf

        extractor = self._image_features()
        return {split: ds.map(lambda im: extractor(tf.cast(im, tf.float32), training=False)).unbatch().cache()
                for split, ds in image_batches.items()}

    @property
    def vocabulary(self) -> Vocabulary:
        if getattr(self, "_vocabulary", None) is None:
            self._vocabulary = Vocabulary(self.info["vocabulary"], self.config.max_caption_length)
        return self._vocabulary

    # -- model -----------------------------------------------------------------
    def _encoder(self):
        from kerasapps_captioning import models as model_code

        return model_code.build_encoder(self.config, None if self.config.encoder == "cnn" else self._image_features())

    def _image_features(self):
        """The pretrained backbone, built once per task (cached features and the model share it)."""
        from kerasapps_captioning import models as model_code

        if getattr(self, "_image_features_model", None) is None:
            if self.config.encoder in RUN_ENCODERS:
                self._encoder_network = model_code.build_run_network(
                    self.config, TrainedRun.from_json(self.info["encoder_run"]))
                self._image_features_model = model_code.build_run_features(self.config, self._encoder_network)
                self._encoder_run_loaded = self._load_encoder_run()
            else:
                self._image_features_model = model_code.build_image_features(self.config)
        return self._image_features_model

    def build_model(self):
        import keras
        from kerasapps_captioning import models as model_code

        model = model_code.build_show_and_tell(self.config, self.vocabulary.size, self._encoder())
        run = TrainedRun.from_json(self.info["initial_run"]) if "initial_run" in self.info else None
        # Evaluation, export and resumption restore this run's own weights next: the initial run may be gone.
        if run is not None and run.weights_available:
            try:
                # Before compile: the model has no optimizer yet, so the file's optimizer state is not
                # read and this run starts a fresh Adam (step count and moments).
                run.load_weights(model)
            except UsageError as exc:
                raise UsageError(f"initial_weights={self.config.initial_weights}: {exc}; build this run with that "
                                 f"run's settings") from None
        model.compile(
            optimizer=keras.optimizers.Adam(self.scheduled_learning_rate(self.info.get("train_images")), clipnorm=5.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
        )
        if getattr(self, "reward_scorer", None) is not None:  # training (export and evaluation need no reward)
            model.train_self_critical(self.config, self.reward_scorer, self.config.self_critical_samples)
        return model

    def _load_encoder_run(self) -> bool:
        """The classification or tagging run's weights into the encoder network, as soon as it is
        built (training starts from them; the core later restores this run's own backup or best
        weights over them). False, with a note, when the run's weights file is gone."""
        run = TrainedRun.from_json(self.info["encoder_run"])
        if not self._read_encoder_run and not run.weights_available:
            caching = ("; cache_features is off: those weights are restored after the data is read"
                       if self.config.cache_features else "")
            print(f"note: {run.weights} is gone; the encoder has the weights this captioning run trained{caching}",
                  file=sys.stderr)
            return False
        self._load_encoder_weights(run, self._encoder_network)
        return True

    def _load_encoder_weights(self, run, network):
        try:
            run.load_weights(network)
        except UsageError as exc:
            trained_size = run.info.get("image_size")
            hint = (f"; it was trained on {trained_size}x{trained_size} images: --set image_size={trained_size}"
                    if trained_size != self.config.image_size else "")
            raise UsageError(f"encoder_weights={self.config.encoder_weights}: {exc}{hint}") from None

    # -- decoding --------------------------------------------------------------
    def caption_function(self, model, beam_size: int | None = None, alpha: float | None = None,
                         use_beam: bool | None = None):
        """A graph function: float32 images [N, S, S, 3] (0..255) -> (token ids [N, T], log-prob [N]);
        see :func:`kerasapps_captioning.models.caption_function`."""
        from kerasapps_captioning import models as model_code

        return model_code.caption_function(model, self.config, beam_size, alpha, use_beam)

    def _captions_for(self, model, split):
        import tensorflow as tf

        decode = tf.function(self.caption_function(model))
        texts = []
        for images in self.image_datasets[split]:
            tokens, _ = decode(tf.cast(images, tf.float32))
            texts += [t.decode("utf-8") for t in self.vocabulary.decode(tokens).numpy()]
        return texts

    # -- evaluation --------------------------------------------------------------
    def evaluate(self, model, dataset, metrics):
        hypotheses = [t.split() for t in self._captions_for(model, "test")]
        references = self.references["test"]
        metrics.update(corpus_bleu(hypotheses, references))
        metrics["cider_d"] = corpus_cider(hypotheses, references)
        metrics["exact_match"] = exact_match_rate(hypotheses, references)
        # How many different captions the split's images get: 1 when the model ignores the image.
        metrics["distinct_captions"] = len({tuple(h) for h in hypotheses})
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
        import tensorflow as tf

        size = self.config.image_size
        captions = self.caption_function(model)
        vocab = self.vocabulary

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(image_bytes):
            tokens, _ = captions(decode_images(image_bytes, (size, size)))
            return {"caption": vocab.decode(tokens)}

        return serve


