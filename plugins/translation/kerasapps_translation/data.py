"""Translation data: text rules per language, line-aligned files, teacher forcing, batching.

Example::

    standardize = make_standardize(lowercase=False, punctuation="split")
    standardize(tf.constant(["A man in a t-shirt, smiling."]))   # [b"A man in a t-shirt , smiling ."]
    detokenize_spaced(tf.constant(["A man in a t-shirt , smiling ."]))  # [b"A man in a t-shirt, smiling."]
    pairs, files = read_parallel(pathlib.Path("multi30k"), "train", "de", "en")  # [("Ein Hund.", "A dog."), ...]
"""

from __future__ import annotations

import gzip
import pathlib

import numpy as np

from kerasapps.api import END_ID, START_ID, UsageError


# -- text rules ------------------------------------------------------------------
# Punctuation that stays inside a word when the rest is split off: apostrophes and hyphens
# between letters or digits (don't, t-shirt), and decimal/thousands marks between digits
# (1.5, 10,000). sacreBLEU's default 13a tokeniser leaves these attached too, so BLEU on
# the detokenised output sees the same tokens as the model. Private-use placeholders: not
# punctuation to RE2.
INNER_PUNCTUATION = (
    (r"([\p{L}\p{N}])'([\p{L}\p{N}])", "\ue000", "'"),
    (r"([\p{L}\p{N}])-([\p{L}\p{N}])", "\ue001", "-"),
    (r"(\p{N})\.(\p{N})", "\ue002", "."),
    (r"(\p{N}),(\p{N})", "\ue003", ","),
)


def make_standardize(lowercase: bool, punctuation: str):
    """A graph function ``tf.string -> tf.string``: optional lower-casing, then Unicode
    punctuation and symbols split off as tokens (apostrophes and hyphens inside words, and
    marks inside numbers, kept), stripped, or kept; single spaces."""

    import tensorflow as tf

    def standardize(texts):
        if lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        if punctuation != "keep":
            for pattern, placeholder, _ in INNER_PUNCTUATION:
                for _ in range(2):  # a-b-c: the second pass catches the overlapping match
                    texts = tf.strings.regex_replace(texts, pattern, r"\1" + placeholder + r"\2")
            texts = tf.strings.regex_replace(texts, r"([\pP\pS])", r" \1 " if punctuation == "split" else " ")
            for _, placeholder, mark in INNER_PUNCTUATION:
                texts = tf.strings.regex_replace(texts, placeholder, mark)
        return tf.strings.strip(tf.strings.regex_replace(texts, r"\s+", " "))

    return standardize


def detokenize_spaced(texts):
    """Graph code: split-off punctuation joined back for reading (``a man , in a t-shirt .``
    -> ``a man, in a t-shirt.``): no space before closing marks or after opening ones,
    and a pair of straight double quotes hugs what it encloses."""
    import tensorflow as tf

    texts = tf.strings.regex_replace(texts, r" ([.,!?;:%)\]}»”’…])", r"\1")
    texts = tf.strings.regex_replace(texts, r"([(\[{«“‘¿¡]) ", r"\1")
    return tf.strings.regex_replace(texts, r'"\s+([^"]*?)\s+"', r'"\1"')


# -- files -----------------------------------------------------------------------
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


def find_file(root: pathlib.Path, stem: str, language: str) -> pathlib.Path:
    for name in (f"{stem}.{language}", f"{stem}.{language}.gz"):
        if (root / name).is_file():
            return root / name
    raise UsageError(f"{root}: missing {stem}.{language} (or {stem}.{language}.gz)")


def read_parallel(root: pathlib.Path, stem: str, source: str, target: str) -> tuple[list[tuple[str, str]], str]:
    """(source, target) line pairs of ``root/stem.source`` and ``root/stem.target`` (plain
    or .gz), and the two files' names for messages; UsageError when either is missing or
    the two are not line-aligned."""
    source_file, target_file = find_file(root, stem, source), find_file(root, stem, target)
    source_lines, target_lines = read_lines(source_file), read_lines(target_file)
    if len(source_lines) != len(target_lines):
        raise UsageError(f"{source_file} has {len(source_lines)} lines but {target_file} has "
                         f"{len(target_lines)}: the files must be line-aligned")
    return list(zip(source_lines, target_lines)), f"{source_file} / {target_file}"


# -- model inputs ------------------------------------------------------------------
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


def batch_by_length(dataset, batch_size: int, width: int, longest: int, drop_remainder: bool):
    """Batches of (inputs, targets, weights) examples whose longer side (source words or
    target steps) falls in the same ``width``-wide bucket; batches leave each bucket as it
    fills, so a shuffled input gives batches in random order."""

    import tensorflow as tf

    def length(inputs, targets, weights):
        return tf.maximum(tf.reduce_sum(tf.cast(inputs["source"] > 0, tf.int32)),
                          tf.cast(tf.reduce_sum(weights), tf.int32))

    boundaries = list(range(width + 1, longest + 1, width))
    return dataset.bucket_by_sequence_length(length, boundaries, [batch_size] * (len(boundaries) + 1),
                                             drop_remainder=drop_remainder)


def trim_ids(ids):
    """Drop the padding columns every row has (at least one column is kept)."""
    import tensorflow as tf

    length = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1)), 1)
    return ids[:, :length]


def trim_batch(inputs, targets, weights):
    """Cut a batch to its longest source and target: LSTMs then run no padding-only steps."""
    import tensorflow as tf

    target_length = tf.cast(tf.reduce_max(tf.reduce_sum(weights, axis=1)), tf.int32)
    return ({"source": trim_ids(inputs["source"]), "target_in": inputs["target_in"][:, :target_length]},
            targets[:, :target_length], weights[:, :target_length])
