"""Text vocabularies shared by text tasks: standardisation, ``TextVectorization``, detokenisation.

Ids: 0 is padding, 1 is ``[UNK]`` (``TextVectorization``'s reserved entries), then
``<start>``, ``<end>`` and the words by falling frequency. The vocabulary is adapted
on training text only, by the task, and travels in ``task.info``, so export and
prediction need no training data. A task with its own text rules (case, punctuation,
a language's script) passes its own graph-code ``standardize`` to every function here.

Example::

    words = build_vocabulary(["A red circle.", "a blue square"], min_count=1)
    vocab = Vocabulary(words, max_length=8)
    vocab.encode(tf.constant(["a red square"]))   # [[4, 7, 8, 0, ...]] (ids of a, red, square)
    vocab.decode(tf.constant([[2, 4, 7, 3, 0]]))  # [b"a red"]
"""

from __future__ import annotations

import collections


PAD, UNK, START, END = "", "[UNK]", "<start>", "<end>"
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3


def standardize(texts):
    """Lower-case, punctuation to spaces (apostrophes kept), single spaces: graph code.

    Returns a string tensor of the same shape.
    """
    import tensorflow as tf

    lowered = tf.strings.lower(texts, encoding="utf-8")
    # RE2's \w is ASCII-only: name the Unicode classes so accented and CJK text survive.
    spaced = tf.strings.regex_replace(lowered, r"[^\p{L}\p{M}\p{N}_\s']", " ")
    return tf.strings.strip(tf.strings.regex_replace(spaced, r"\s+", " "))


def standardize_texts(texts, standardize=standardize) -> list[str]:
    """``standardize`` (default :func:`standardize`) for a Python list of strings (batched, eager).

    Returns a list of strings, one per text.
    """
    import tensorflow as tf

    texts = list(texts)
    out = []
    for start in range(0, len(texts), 4096):
        out += [t.decode("utf-8") for t in standardize(tf.constant(texts[start:start + 4096])).numpy()]
    return out


def build_vocabulary(texts, min_count: int = 1, max_size: int | None = None, standardize=standardize) -> list[str]:
    """``[<start>, <end>, words...]``: words seen at least ``min_count`` times, most frequent first,
    after ``standardize`` (default :func:`standardize`).

    Returns the vocabulary's words, ``<start>`` and ``<end>`` first (padding and ``[UNK]`` are added by
    :class:`Vocabulary`).
    """
    counts: collections.Counter = collections.Counter()
    for line in standardize_texts(texts, standardize):
        counts.update(line.split())
    words = [w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if c >= min_count]
    return [START, END] + words[:max_size]


class Vocabulary:
    """Tokenise (``encode``) and detokenise (``decode``) with one word list.

    ``words`` comes from :func:`build_vocabulary` (with the same ``standardize``);
    ``max_length`` pads/truncates encodings. An export that calls ``encode`` must track
    ``vectorizer`` (its lookup table), e.g. through ``Task.serving_resources``.
    """

    def __init__(self, words, max_length: int, standardize=standardize):
        import keras
        import tensorflow as tf

        self.words = list(words)
        self.max_length = max_length
        self.standardize = standardize
        self.vectorizer = keras.layers.TextVectorization(
            standardize=standardize, split="whitespace", vocabulary=self.words, output_sequence_length=max_length
        )
        self.vectorizer(tf.constant([""]))  # built, so that an export can track it
        # The same entries as the vectorizer's vocabulary, so decode prints UNK as TextVectorization names it.
        self.table = tf.constant([PAD, UNK] + self.words)

    @property
    def size(self) -> int:
        return len(self.words) + 2

    def encode(self, texts):
        """``tf.string [N]`` -> ``int64 [N, max_length]`` word ids (no start/end)."""
        return self.vectorizer(texts)

    def decode(self, ids):
        """``int [N, T]`` -> ``tf.string [N]``: words up to the first ``<end>``, special ids dropped."""
        import tensorflow as tf

        ids = tf.cast(ids, tf.int32)
        after_end = tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=1) > 0
        keep = ((ids > END_ID) | tf.equal(ids, UNK_ID)) & ~after_end
        words = tf.where(keep, tf.gather(self.table, ids), "")
        joined = tf.strings.reduce_join(words, axis=1, separator=" ")
        return tf.strings.strip(tf.strings.regex_replace(joined, r"\s+", " "))
