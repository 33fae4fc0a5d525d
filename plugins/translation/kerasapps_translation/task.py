"""Translation with GNMT's core at laptop size (Wu et al. 2016): an LSTM encoder whose
first layer is bidirectional, stacked LSTM layers with residual connections from the
third layer up, and an LSTM decoder that attends over the encoder states. Trained with
teacher forcing (optionally label smoothing); decoded greedily or by beam search with
GNMT's length penalty, as graph code inside the SavedModel.

The task wires the pieces together: text rules, files and batching live in ``data``,
the network and its decoder in ``model``; vocabularies are kerasapps' own
(:mod:`kerasapps.data.text`) with each language's standardisation.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import sys
from typing import Literal

import numpy as np

from kerasapps.api import (SPLITS, UNK, Task, TaskConfig, UsageError, Vocabulary,
                           build_vocabulary, field, load_tfds, standardize_texts)
from kerasapps_translation.data import (batch_by_length, detokenize_spaced, make_standardize, read_parallel,
                                        teacher_forcing, trim_batch, trim_ids)
from kerasapps_translation.metrics import translation_scores

# Languages written without spaces between words: output tokens are joined without them.
UNSPACED_LANGUAGES = {"ja", "zh", "th"}


@dataclasses.dataclass
class TranslationConfig(TaskConfig):
    epochs: int = field(10, "training epochs")
    batch_size: int = field(64, "global batch size")
    learning_rate: float = field(2e-3, "Adam learning rate")
    source: str = field("", "source language (file suffix or TFDS feature); default: the dataset's (phrasebook: en)")
    target: str = field("", "target language; default: the dataset's (phrasebook: ja)")
    embed_dim: int = field(128, "word embedding size", minimum=1)
    units: int = field(256, "LSTM units per layer (the bidirectional layer uses half per direction)",
                       minimum=2)
    encoder_layers: int = field(2, "encoder LSTM layers (the first is bidirectional; residual from the third)",
                                minimum=1)
    decoder_layers: int = field(2, "decoder LSTM layers (residual from the third)", minimum=1)
    attention: Literal["luong", "bahdanau", "none"] = field(
        "luong", "attention score over encoder states: luong (multiplicative), bahdanau (additive), none")
    dropout: float = field(0.2, "dropout on LSTM layer outputs and before the output layer", minimum=0, below=1)
    label_smoothing: float = field(0.1, "label smoothing of the training targets (0 = none)", minimum=0, below=1)
    beam_size: int = field(4, "beam width for evaluation and export (1 = greedy)", minimum=1)
    length_penalty: float = field(0.6, "GNMT length-penalty exponent alpha for beam search (0 = none)")
    max_source_length: int = field(50, "source words kept (longer inputs are truncated, also when serving)",
                                  minimum=1)
    max_target_length: int = field(60, "target words kept in training; decoding stops at 2 x source length + 10",
                                  minimum=1)
    min_word_count: int = field(1, "words seen fewer times in the training split become [UNK]", minimum=1)
    max_vocabulary: int = field(30000, "most frequent words kept per language", minimum=1)
    source_lowercase: bool = field(True, "lower-case the source text")
    target_lowercase: bool = field(True, "lower-case the target text (and the BLEU references)")
    source_punctuation: Literal["split", "strip", "keep"] = field(
        "split", "source punctuation: its own token (split), removed (strip) or left attached (keep)")
    target_punctuation: Literal["split", "strip", "keep"] = field("split", "target punctuation, as above")
    target_spacing: Literal["auto", "spaces", "none"] = field(
        "auto", "join output words with spaces, or without (auto: none for ja/zh/th targets)")
    train_examples: int = field(12000, "phrasebook: training pairs generated", minimum=1)
    eval_examples: int = field(1000, "phrasebook: validation and test pairs each", minimum=1)
    folder_splits: tuple[str, ...] = field(
        ("train", "val", "test"), "folder: file stems of the train, validation and test files")
    skip_bad_examples: bool = field(False, "folder/tfds: skip (and count) pairs with an empty side")
    length_buckets: int = field(
        0, "training batches drawn from sentences of similar length, buckets this many words wide "
        "(fewer padded steps; 0 = batches of random lengths)")
    validation_bleu: bool = field(
        False, "after each epoch, decode the validation split greedily and log its BLEU as val_bleu "
        "(also to validation_bleu.csv in the workdir, with the wall time: a learning curve)")
    train_minutes: float = field(
        0.0, "stop after the epoch that would otherwise overrun this many minutes of training (0 = no limit)")

    def validate(self):
        if self.units % 2:
            raise UsageError("units must be even (the bidirectional layer splits them)")
        if len(self.folder_splits) != 3:
            raise UsageError("folder_splits needs three stems: train,validation,test (e.g. train,val,test)")


class TranslationTask(Task):
    """Translation (LSTM encoder-decoder with attention, GNMT's core)."""

    name = "translation"
    Config = TranslationConfig
    default_dataset = "phrasebook"
    registered_datasets = ("phrasebook",)
    monitor = "val_loss"
    monitor_mode = "min"
    serving_inputs = {"text": "tf.string [N]: source sentences (empty or over-long ones are fine)"}
    serving_outputs = {"translation": "tf.string [N]: detokenised translations (beam size fixed at export)"}
    folder_layout = (
        "PATH/train.SRC, PATH/train.TGT, PATH/val.SRC, PATH/val.TGT, PATH/test.SRC, PATH/test.TGT: one sentence "
        "per line, lines aligned between the two languages, UTF-8, plain or .gz (Multi30k's layout); choose the "
        "languages with --set source=SRC target=TGT and other stems with --set folder_splits=train,val,test_2016_flickr"
    )

    # -- data: each loader returns (sources, targets) lists of sentences per split ---------
    def load_registered(self):  # --dataset phrasebook
        phrasebook = self.source.load()
        self._languages("en", "ja", set(phrasebook.LANGUAGES))
        if (self.info["source_language"], self.info["target_language"]) != ("en", "ja"):
            raise UsageError("phrasebook translates English to Japanese: --set source=en target=ja")
        counts = {"train": self.config.train_examples, "validation": self.config.eval_examples,
                  "test": self.config.eval_examples}
        texts = {}
        for split in SPLITS:
            pairs = phrasebook.generate(split, counts[split], seed=self.seed)
            texts[split] = ([e for e, _ in pairs], [j for _, j in pairs])
        return texts

    def load_tfds(self):
        import tensorflow as tf

        datasets, info = load_tfds(self.source)
        text_features = [k for k, v in info.features.items() if getattr(v, "dtype", None) == tf.string]
        default = tuple(info.supervised_keys or ()) if info.supervised_keys else ("", "")
        source, target = self._languages(*(list(default) + ["", ""])[:2], available=set(text_features))
        texts = {}
        for split, ds in datasets.items():
            pairs = [(ex[source].decode("utf-8"), ex[target].decode("utf-8"))
                     for ex in ds.map(lambda e: {source: e[source], target: e[target]}).as_numpy_iterator()]
            texts[split] = self._drop_empty(pairs, f"TFDS {self.source.name} {split}")
        return texts

    def load_folder(self):
        root = self.source.path
        train_stem = self.config.folder_splits[0]
        available = {p.name[len(train_stem) + 1:].removesuffix(".gz") for p in root.glob(f"{train_stem}.*")}
        source, target = self._languages("", "", available or None)
        texts = {}
        for split, stem in zip(SPLITS, self.config.folder_splits):
            texts[split] = self._drop_empty(*read_parallel(root, stem, source, target))
        return texts

    def _languages(self, default_source, default_target, available=None):
        source = self.config.source or default_source
        target = self.config.target or default_target
        if not source or not target:
            found = f" (found: {', '.join(sorted(available))})" if available else ""
            raise UsageError(f"--dataset {self.source.spec}: say which languages to translate with "
                             f"--set source=SRC target=TGT{found}")
        if available is not None:
            for language in (source, target):
                if language not in available:
                    raise UsageError(f"--dataset {self.source.spec} has no language {language!r} "
                                     f"(has: {', '.join(sorted(available))})")
        self.info.update(source_language=source, target_language=target)
        return source, target

    def _drop_empty(self, pairs, where):
        kept = [(s, t) for s, t in pairs if s.strip() and t.strip()]
        if len(kept) != len(pairs):
            if not self.config.skip_bad_examples:
                line = next(i for i, (s, t) in enumerate(pairs, start=1) if not (s.strip() and t.strip()))
                raise UsageError(f"{where}, line {line}: empty sentence (--set skip_bad_examples=true skips such pairs)")
            print(f"translation: skipped {len(pairs) - len(kept)} pairs with an empty side in {where}",
                  file=sys.stderr)
        if not kept:
            raise UsageError(f"{where}: no sentence pairs")
        return [s for s, _ in kept], [t for _, t in kept]

    def prepare_datasets(self, texts):
        """Vocabularies from the training split, then teacher forcing and batching."""
        import tensorflow as tf

        cfg = self.config
        source_std, target_std = self.standardizers
        self.info.update(
            source_vocabulary=build_vocabulary(texts["train"][0], cfg.min_word_count, cfg.max_vocabulary, source_std),
            target_vocabulary=build_vocabulary(texts["train"][1], cfg.min_word_count, cfg.max_vocabulary, target_std),
        )
        self._vocabularies = None
        self.texts = texts
        # BLEU references: the target as the model sees it (standardised tokens).
        self.references = {split: [line.split() for line in standardize_texts(texts[split][1], target_std)]
                           for split in SPLITS}
        source_vocab, target_vocab = self.vocabularies
        self.source_ids = {}
        out = {}
        for split in SPLITS:
            sources = self._encode(source_vocab, texts[split][0])
            targets = self._encode(target_vocab, texts[split][1])
            self.source_ids[split] = sources
            target_in, target_out, weights = teacher_forcing(targets)
            ds = tf.data.Dataset.from_tensor_slices(({"source": sources, "target_in": target_in}, target_out, weights))
            if split == "train" and cfg.length_buckets:  # the core's batching, but by sentence length
                ds = ds.shuffle(len(sources), seed=self.seed, reshuffle_each_iteration=True)
                ds = batch_by_length(ds, cfg.batch_size, cfg.length_buckets, cfg.max_target_length + 1,
                                     self.drop_remainder)
                out[split] = ds.map(trim_batch).prefetch(tf.data.AUTOTUNE)
            else:
                out[split] = self.batch(ds, split, shuffle_buffer=len(sources), map_batch=trim_batch)
        return out

    @staticmethod
    def _encode(vocab, lines) -> np.ndarray:
        import tensorflow as tf

        parts = [vocab.encode(tf.constant(lines[i:i + 8192])).numpy() for i in range(0, len(lines), 8192)]
        return np.concatenate(parts).astype(np.int32)

    @property
    def standardizers(self):
        cfg = self.config
        return (make_standardize(cfg.source_lowercase, cfg.source_punctuation),
                make_standardize(cfg.target_lowercase, cfg.target_punctuation))

    @property
    def vocabularies(self) -> tuple[Vocabulary, Vocabulary]:
        if getattr(self, "_vocabularies", None) is None:
            source_std, target_std = self.standardizers
            self._vocabularies = (
                Vocabulary(self.info["source_vocabulary"], self.config.max_source_length, source_std),
                Vocabulary(self.info["target_vocabulary"], self.config.max_target_length, target_std),
            )
        return self._vocabularies

    @property
    def join_without_spaces(self) -> bool:
        spacing = self.config.target_spacing
        if spacing == "auto":
            return self.info.get("target_language", "") in UNSPACED_LANGUAGES
        return spacing == "none"

    # -- model -----------------------------------------------------------------
    def build_model(self):
        import keras
        from kerasapps_translation.models import SmoothedSparseCrossentropy, build_model

        cfg = self.config
        source_vocab, target_vocab = self.vocabularies
        model = build_model(cfg, source_vocab.size, target_vocab.size)
        model.compile(
            optimizer=keras.optimizers.Adam(cfg.learning_rate, clipnorm=5.0),
            loss=SmoothedSparseCrossentropy(target_vocab.size, cfg.label_smoothing),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
        )
        return model

    # -- decoding --------------------------------------------------------------
    def translate_function(self, model, beam_size: int | None = None, alpha: float | None = None,
                           use_beam: bool | None = None):
        """:func:`kerasapps_translation.models.translator` with the config's beam size and
        length penalty unless given."""
        from kerasapps_translation.models import translator

        cfg = self.config
        return translator(cfg, model, cfg.beam_size if beam_size is None else beam_size,
                          cfg.length_penalty if alpha is None else alpha, use_beam)

    def translate_split(self, model, split: str, limit: int | None = None, beam_size: int | None = None) -> list[str]:
        """Tokenised translations (space-separated, as BLEU sees them) of a split's sources."""
        import tensorflow as tf

        translate = tf.function(self.translate_function(model, beam_size=beam_size), reduce_retracing=True)
        ids = self.source_ids[split][:limit]
        _, target_vocab = self.vocabularies
        out = []
        for start in range(0, len(ids), self.config.batch_size):
            batch = trim_ids(tf.constant(ids[start:start + self.config.batch_size]))
            tokens, _ = translate(batch)
            out += [t.decode("utf-8") for t in target_vocab.decode(tokens).numpy()]
        return out

    def detokenize_graph(self, texts):
        """Graph code: space-separated output tokens -> the text a user reads (words the
        target vocabulary lacks, ``UNK``, are left out)."""
        import tensorflow as tf

        known = tf.strings.regex_replace(texts, re.escape(UNK), "")
        texts = tf.strings.strip(tf.strings.regex_replace(known, " +", " "))
        if self.join_without_spaces:
            return tf.strings.regex_replace(texts, " ", "")
        return detokenize_spaced(texts) if self.config.target_punctuation == "split" else texts

    def detokenize(self, text: str) -> str:
        import tensorflow as tf

        return self.detokenize_graph(tf.constant([text]))[0].numpy().decode("utf-8")

    # -- training ----------------------------------------------------------------
    def training_callbacks(self, model, datasets, workdir):
        from kerasapps_translation.callbacks import TrainingTimeBudget, ValidationBleu

        callbacks = []
        if self.config.validation_bleu:
            callbacks.append(ValidationBleu(self, pathlib.Path(workdir) / "validation_bleu.csv"))
        if self.config.train_minutes:
            callbacks.append(TrainingTimeBudget(60 * self.config.train_minutes))
        return callbacks

    # -- evaluation ------------------------------------------------------------
    def evaluate(self, model, dataset, metrics):
        """Compiled metrics, plus corpus BLEU (sacreBLEU's figure, 0-100, on the standardised
        tokens, one reference) and the exact-match rate (0-1) of the decoded test split."""
        references = [" ".join(r) for r in self.references["test"]]
        metrics.update(translation_scores(self.translate_split(model, "test"), references))
        return metrics

    def describe_predictions(self, model, dataset, count=5):
        outputs = self.translate_split(model, "test", limit=count)
        lines = []
        for source, reference, output in zip(self.texts["test"][0], self.texts["test"][1], outputs):
            mark = "=" if output.split() == self.references["test"][len(lines)] else " "
            lines.append(f"{mark} source:    {source}\n    reference: {self.detokenize(' '.join(reference.split()))}"
                         f"\n    output:    {self.detokenize(output)}")
        return lines

    # -- serving ---------------------------------------------------------------
    def serving_resources(self):
        return [vocabulary.vectorizer for vocabulary in self.vocabularies]

    def serving_function(self, model):
        import tensorflow as tf

        translate = self.translate_function(model)
        source_vocab, target_vocab = self.vocabularies

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            ids = trim_ids(tf.cast(source_vocab.encode(text), tf.int32))
            tokens, _ = translate(ids)
            words = target_vocab.decode(tokens)
            return {"translation": self.detokenize_graph(words)}

        return serve


