"""Translation with GNMT's core at laptop size (Wu et al. 2016): an LSTM encoder whose
first layer is bidirectional, stacked LSTM layers with residual connections from the
third layer up, and an LSTM decoder that attends over the encoder states. Trained with
teacher forcing (optionally label smoothing); decoded greedily or by beam search with
GNMT's length penalty, as graph code inside the SavedModel.

Data, model, metrics, serving, in that order.
"""

from __future__ import annotations

import dataclasses
import gzip
import pathlib
import sys
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from kerasapps.api import (END, END_ID, PAD, SPLITS, START, START_ID, UNK_ID, Task, TaskConfig, UsageError, Vocabulary,
                           corpus_bleu, decode, exact_match_rate, field, load_tfds)

# Languages written without spaces between words: output tokens are joined without them.
UNSPACED_LANGUAGES = {"ja", "zh", "th"}
APOSTROPHE_PLACEHOLDER = "\ue000"  # a private-use character: not punctuation to RE2


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
    min_word_count: int = field(1, "words seen fewer times in the training split become <unk>", minimum=1)
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

    def validate(self):
        if self.units % 2:
            raise UsageError("units must be even (the bidirectional layer splits them)")
        if len(self.folder_splits) != 3:
            raise UsageError("folder_splits needs three stems: train,validation,test (e.g. train,val,test)")


# -- text ----------------------------------------------------------------------
def make_standardize(lowercase: bool, punctuation: str):
    """A graph function ``tf.string -> tf.string``: optional lower-casing, then Unicode
    punctuation and symbols split off as tokens (apostrophes inside words kept),
    stripped, or kept; single spaces."""

    def standardize(texts):
        if lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        if punctuation != "keep":
            texts = tf.strings.regex_replace(texts, r"(\w)'(\w)", r"\1" + APOSTROPHE_PLACEHOLDER + r"\2")
            texts = tf.strings.regex_replace(texts, r"([\pP\pS])", r" \1 " if punctuation == "split" else " ")
            texts = tf.strings.regex_replace(texts, APOSTROPHE_PLACEHOLDER, "'")
        return tf.strings.strip(tf.strings.regex_replace(texts, r"\s+", " "))

    return standardize


def standardize_all(standardize, texts) -> list[str]:
    texts = list(texts)
    out = []
    for start in range(0, len(texts), 8192):
        out += [t.decode("utf-8") for t in standardize(tf.constant(texts[start:start + 8192])).numpy()]
    return out


class LanguageVocabulary(Vocabulary):
    """:class:`kerasapps.text.Vocabulary` with a language's own standardisation.

    Words are looked up by their 64-bit fingerprint in sorted constant tensors rather
    than a ``TextVectorization`` hash table: the serving graph then holds no lookup
    resource that the export would have to track, and needs no extra file.
    """

    def __init__(self, words, max_length: int, standardize):
        self.words = list(words)
        self.max_length = max_length
        self.standardize = standardize
        ids = np.arange(len(self.words), dtype=np.int64) + 2  # after padding and <unk>
        hashes = tf.strings.to_hash_bucket_fast(tf.constant(self.words or [""]), 2**63 - 1).numpy()[:len(self.words)]
        order = np.argsort(hashes, kind="stable")
        self._hashes = tf.constant(hashes[order], tf.int64)
        self._words = tf.constant([self.words[i] for i in order] or [""])
        self._ids = tf.constant(ids[order], tf.int64)
        self.table = tf.constant([PAD, "<unk>"] + self.words)

    def encode(self, texts):
        """``tf.string [N]`` -> ``int64 [N, max_length]`` word ids (0 pads, 1 is <unk>; longer texts are cut)."""
        words = tf.strings.split(self.standardize(tf.convert_to_tensor(texts)))
        flat = words.flat_values
        if not self.words:
            ids = tf.fill(tf.shape(flat), tf.constant(UNK_ID, tf.int64))
        else:
            hashes = tf.strings.to_hash_bucket_fast(flat, 2**63 - 1)
            position = tf.minimum(tf.searchsorted(self._hashes, hashes), tf.size(self._hashes) - 1)
            found = tf.equal(tf.gather(self._words, position), flat)
            ids = tf.where(found, tf.gather(self._ids, position), tf.constant(UNK_ID, tf.int64))
        return words.with_flat_values(ids).to_tensor(0, shape=[None, self.max_length])


def count_words(lines, min_count: int, max_size: int) -> list[str]:
    counts: dict = {}
    for line in lines:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    words = [w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if c >= min_count]
    return [START, END] + words[:max_size]


# -- data ----------------------------------------------------------------------
def read_lines(path: pathlib.Path) -> list[str]:
    """Lines of a plain or gzipped UTF-8 text file; UsageError naming the file and line."""
    try:
        data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    lines = []
    for number, line in enumerate(raw, start=1):
        try:
            lines.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}, line {number}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    return lines


def _find_file(root: pathlib.Path, stem: str, language: str) -> pathlib.Path:
    for name in (f"{stem}.{language}", f"{stem}.{language}.gz"):
        if (root / name).is_file():
            return root / name
    raise UsageError(f"{root}: missing {stem}.{language} (or {stem}.{language}.gz)")


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

    # -- data ------------------------------------------------------------------
    def build_datasets(self):
        cfg = self.config
        kind = self.source.kind
        if kind == "registered":
            texts = self._phrasebook()
        elif kind == "tfds":
            texts = self._tfds()
        else:
            texts = self._folder()
        source_std, target_std = self.standardizers
        tokenized = {split: (standardize_all(source_std, texts[split][0]), standardize_all(target_std, texts[split][1]))
                     for split in SPLITS}
        self.info.update(
            source_vocabulary=count_words(tokenized["train"][0], cfg.min_word_count, cfg.max_vocabulary),
            target_vocabulary=count_words(tokenized["train"][1], cfg.min_word_count, cfg.max_vocabulary),
        )
        self._vocabularies = None
        self.texts = texts
        # BLEU references: the target as the model sees it (standardised tokens).
        self.references = {split: [line.split() for line in tokenized[split][1]] for split in SPLITS}
        source_vocab, target_vocab = self.vocabularies
        self.source_ids = {}
        out = {}
        for split in SPLITS:
            sources = self._encode(source_vocab, texts[split][0])
            targets = self._encode(target_vocab, texts[split][1])
            self.source_ids[split] = sources
            target_in, target_out, weights = teacher_forcing(targets)
            ds = tf.data.Dataset.from_tensor_slices(({"source": sources, "target_in": target_in}, target_out, weights))
            out[split] = self.batch(ds, split, shuffle_buffer=len(sources), map_batch=trim_batch)
        return out

    @staticmethod
    def _encode(vocab, lines) -> np.ndarray:
        parts = [vocab.encode(tf.constant(lines[i:i + 8192])).numpy() for i in range(0, len(lines), 8192)]
        return np.concatenate(parts).astype(np.int32)

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

    def _phrasebook(self):
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

    def _tfds(self):
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

    def _folder(self):
        root = self.source.path
        train_stem = self.config.folder_splits[0]
        available = {p.name[len(train_stem) + 1:].removesuffix(".gz") for p in root.glob(f"{train_stem}.*")}
        source, target = self._languages("", "", available or None)
        texts = {}
        for split, stem in zip(SPLITS, self.config.folder_splits):
            source_file, target_file = _find_file(root, stem, source), _find_file(root, stem, target)
            source_lines, target_lines = read_lines(source_file), read_lines(target_file)
            if len(source_lines) != len(target_lines):
                raise UsageError(f"{source_file} has {len(source_lines)} lines but {target_file} has "
                                 f"{len(target_lines)}: the files must be line-aligned")
            pairs = list(zip(source_lines, target_lines))
            texts[split] = self._drop_empty(pairs, f"{source_file} / {target_file}")
        return texts

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

    @property
    def standardizers(self):
        cfg = self.config
        return (make_standardize(cfg.source_lowercase, cfg.source_punctuation),
                make_standardize(cfg.target_lowercase, cfg.target_punctuation))

    @property
    def vocabularies(self) -> tuple[LanguageVocabulary, LanguageVocabulary]:
        if getattr(self, "_vocabularies", None) is None:
            source_std, target_std = self.standardizers
            self._vocabularies = (
                LanguageVocabulary(self.info["source_vocabulary"], self.config.max_source_length, source_std),
                LanguageVocabulary(self.info["target_vocabulary"], self.config.max_target_length, target_std),
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
        cfg = self.config
        source_vocab, target_vocab = self.vocabularies
        source = keras.Input((None,), dtype="int32", name="source")
        target_in = keras.Input((None,), dtype="int32", name="target_in")
        layers = ModelLayers(cfg, source_vocab.size, target_vocab.size)
        memory, keys, mask, state = layers.encode(source, training=None)
        x = layers.target_embedding(target_in)
        x, _ = layers.decode_layers(x, state, training=None)
        logits = layers.output_logits(x, memory, keys, mask, training=None)
        model = keras.Model({"source": source, "target_in": target_in}, logits, name="gnmt")
        model.compile(
            optimizer=keras.optimizers.Adam(cfg.learning_rate, clipnorm=5.0),
            loss=SmoothedSparseCrossentropy(target_vocab.size, cfg.label_smoothing),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
        )
        return model

    # -- decoding --------------------------------------------------------------
    def translate_function(self, model, beam_size: int | None = None, alpha: float | None = None,
                           use_beam: bool | None = None):
        """A graph function: source ids int32 [N, S] -> (target ids int32 [N, 2S+10], log-prob [N]).

        Beam search when ``beam_size`` > 1 (or ``use_beam``), else greedy decoding.
        """
        cfg = self.config
        beam_size = cfg.beam_size if beam_size is None else beam_size
        alpha = cfg.length_penalty if alpha is None else alpha
        layers = ModelLayers.from_model(cfg, model)

        def step(tokens, state):
            x = layers.target_embedding(tokens[:, tf.newaxis])
            x, decoder = layers.decode_layers(x, state["decoder"], training=False)
            logits = layers.output_logits(x, state["memory"], state["keys"], state["mask"], training=False)
            return tf.nn.log_softmax(tf.cast(logits[:, 0], tf.float32)), dict(state, decoder=decoder)

        def translate(source_ids):
            memory, keys, mask, decoder = layers.encode(source_ids, training=False)
            state = {"memory": memory, "keys": keys, "mask": mask, "decoder": decoder}
            batch = tf.shape(source_ids)[0]
            max_length = 2 * tf.shape(source_ids)[1] + 10
            start = tf.fill([batch], START_ID)
            return decode(step, state, start, END_ID, max_length, beam_size, alpha, use_beam)

        return translate

    def translate_split(self, model, split: str, limit: int | None = None) -> list[str]:
        """Tokenised translations (space-separated, as BLEU sees them) of a split's sources."""
        translate = tf.function(self.translate_function(model), reduce_retracing=True)
        ids = self.source_ids[split][:limit]
        _, target_vocab = self.vocabularies
        out = []
        for start in range(0, len(ids), self.config.batch_size):
            batch = trim_ids(tf.constant(ids[start:start + self.config.batch_size]))
            tokens, _ = translate(batch)
            out += [t.decode("utf-8") for t in target_vocab.decode(tokens).numpy()]
        return out

    def detokenize(self, text: str) -> str:
        return "".join(text.split()) if self.join_without_spaces else text

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
    def serving_function(self, model):
        translate = self.translate_function(model)
        source_vocab, target_vocab = self.vocabularies
        join = self.join_without_spaces

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            ids = trim_ids(tf.cast(source_vocab.encode(text), tf.int32))
            tokens, _ = translate(ids)
            words = target_vocab.decode(tokens)
            return {"translation": tf.strings.regex_replace(words, " ", "") if join else words}

        return serve


def translation_scores(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU-4 as sacreBLEU reports it (0-100; equals ``sacrebleu.corpus_bleu(hypotheses,
    [references], tokenize="none").score``), BLEU-1 (0-100) and exact-match rate (0-1), on
    space-separated tokens, one reference per sentence."""
    hyps = [h.split() for h in hypotheses]
    refs = [[r.split()] for r in references]
    scores = corpus_bleu(hyps, refs)
    return {"bleu": 100 * scores["bleu4"], "bleu1": 100 * scores["bleu1"], "exact_match": exact_match_rate(hyps, refs)}


# -- model pieces ----------------------------------------------------------------
class ModelLayers:
    """The GNMT-style layers, created once and called both by the functional training
    model (teacher forcing) and by the one-step decoder (greedy and beam search)."""

    def __init__(self, cfg, source_vocab_size=None, target_vocab_size=None, get=None):
        self.cfg = cfg
        attention = cfg.attention
        make = get or (lambda name, build: build())
        self.source_embedding = make("source_embedding", lambda: keras.layers.Embedding(
            source_vocab_size, cfg.embed_dim, name="source_embedding"))
        self.target_embedding = make("target_embedding", lambda: keras.layers.Embedding(
            target_vocab_size, cfg.embed_dim, name="target_embedding"))
        half = cfg.units // 2
        self.encoder = [make("encoder1", lambda: keras.layers.Bidirectional(
            keras.layers.LSTM(half, return_sequences=True, return_state=True), name="encoder1"))]
        for i in range(2, cfg.encoder_layers + 1):
            self.encoder.append(make(f"encoder{i}", lambda i=i: keras.layers.LSTM(
                cfg.units, return_sequences=True, return_state=True, name=f"encoder{i}")))
        self.decoder = [make(f"decoder{i}", lambda i=i: keras.layers.LSTM(
            cfg.units, return_sequences=True, return_state=True, name=f"decoder{i}"))
            for i in range(1, cfg.decoder_layers + 1)]
        self.dropouts = [make(f"dropout{i}", lambda i=i: keras.layers.Dropout(cfg.dropout, name=f"dropout{i}"))
                         for i in range(cfg.encoder_layers + cfg.decoder_layers + 1)]
        self.attention = self.keys = None
        if attention != "none":
            self.query = make("attention_query", lambda: keras.layers.Dense(
                cfg.units, use_bias=False, name="attention_query"))
            if attention == "bahdanau":
                self.keys = make("attention_keys", lambda: keras.layers.Dense(
                    cfg.units, use_bias=False, name="attention_keys"))
                self.attention = make("attention", lambda: keras.layers.AdditiveAttention(name="attention"))
            else:
                self.attention = make("attention", lambda: keras.layers.Attention(name="attention"))
            self.combine = make("attention_output", lambda: keras.layers.Dense(
                cfg.units, activation="tanh", name="attention_output"))
        self.logits = make("logits", lambda: keras.layers.Dense(target_vocab_size, name="logits", dtype="float32"))

    @classmethod
    def from_model(cls, cfg, model):
        names = {layer.name for layer in model.layers}
        # A dropout whose output the model never uses (encoder1's, without attention) is not in it.
        return cls(cfg, get=lambda name, build: model.get_layer(name) if name in names else build())

    def encode(self, source, training):
        """-> (memory [N, S, U], attention keys, padding mask [N, S] bool, per-decoder-layer (h, c))."""
        mask = keras.ops.not_equal(source, 0)
        x = self.source_embedding(source)
        x, forward_h, forward_c, backward_h, backward_c = self.encoder[0](x, mask=mask, training=training)
        h = keras.ops.concatenate([forward_h, backward_h], axis=-1)
        c = keras.ops.concatenate([forward_c, backward_c], axis=-1)
        x = self.dropouts[0](x, training=training)
        for i, layer in enumerate(self.encoder[1:], start=2):
            y, h, c = layer(x, mask=mask, training=training)
            y = self.dropouts[i - 1](y, training=training)
            x = x + y if i >= 3 else y  # GNMT: residual connections from the third layer up
        # The decoder starts from the encoder's final state (all layers), so that even
        # without attention it sees the whole sentence.
        state = tuple((h, c) for _ in self.decoder)
        keys = self.keys(x) if self.keys is not None else x
        return x, keys, mask, state

    def decode_layers(self, x, state, training):
        new_state = []
        for i, (layer, (h, c)) in enumerate(zip(self.decoder, state), start=1):
            y, h, c = layer(x, initial_state=[h, c], training=training)
            y = self.dropouts[self.cfg.encoder_layers + i - 1](y, training=training)
            x = x + y if i >= 3 else y
            new_state.append((h, c))
        return x, tuple(new_state)

    def output_logits(self, x, memory, keys, mask, training):
        if self.attention is not None:
            context = self.attention([self.query(x), memory, keys], mask=[None, mask])
            x = self.combine(keras.ops.concatenate([x, context], axis=-1))
        x = self.dropouts[-1](x, training=training)
        return self.logits(x)


class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy on logits with optional label smoothing."""

    def __init__(self, vocab_size: int, label_smoothing: float = 0.0, name="smoothed_crossentropy"):
        super().__init__(name=name)
        self.vocab_size = vocab_size
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        if not self.label_smoothing:
            return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        one_hot = keras.ops.one_hot(keras.ops.cast(y_true, "int32"), self.vocab_size)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        return {"vocab_size": self.vocab_size, "label_smoothing": self.label_smoothing, "name": self.name}


def teacher_forcing(words: np.ndarray):
    """Word ids [N, T] -> decoder inputs ``<start> w1..wn``, targets ``w1..wn <end>`` and
    weights on the real steps, each [N, T + 1]."""
    n, t = words.shape
    lengths = (words > 0).sum(axis=1)
    target_in = np.concatenate([np.full((n, 1), START_ID, np.int32), words], axis=1)
    target_out = np.concatenate([words, np.zeros((n, 1), np.int32)], axis=1)
    positions = np.arange(t + 1)[np.newaxis, :]
    target_out = np.where(positions == lengths[:, np.newaxis], END_ID, target_out).astype(np.int32)
    weights = (positions <= lengths[:, np.newaxis]).astype(np.float32)
    return target_in, target_out, weights


def trim_ids(ids):
    """Drop the padding columns every row has (at least one column is kept)."""
    length = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1)), 1)
    return ids[:, :length]


def trim_batch(inputs, targets, weights):
    """Cut a batch to its longest source and target: LSTMs then run no padding-only steps."""
    target_length = tf.cast(tf.reduce_max(tf.reduce_sum(weights, axis=1)), tf.int32)
    return ({"source": trim_ids(inputs["source"]), "target_in": inputs["target_in"][:, :target_length]},
            targets[:, :target_length], weights[:, :target_length])
