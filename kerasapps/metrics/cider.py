"""CIDEr-D (Vedantam et al. 2015): consensus of a caption with an image's references, the
variant the COCO caption evaluation code reports as "CIDEr".

For n = 1..4, each sentence is a vector of its n-gram counts weighted by
``log(images / images whose references hold the n-gram)`` (document frequencies from the
references of the corpus being scored); the hypothesis' counts are clipped to each
reference's, the similarity is the cosine times a Gaussian penalty on the length
difference (sigma 6), averaged over references and n, times 10.

Example::

    corpus_cider([["a", "dog", "runs"], ...], [[["a", "dog", "is", "running"], ...], ...])  # 0.53 ...
"""

from __future__ import annotations

import collections
import math

SIGMA = 6.0


def _counts(tokens, max_n):
    return collections.Counter(tuple(tokens[i:i + n]) for n in range(1, max_n + 1)
                               for i in range(len(tokens) - n + 1))


def _tf_idf(counts, document_frequency, log_images, max_n):
    vectors = [{} for _ in range(max_n)]
    for gram, count in counts.items():
        vectors[len(gram) - 1][gram] = count * (log_images - math.log(max(1.0, document_frequency[gram])))
    norms = [math.sqrt(sum(v * v for v in vector.values())) for vector in vectors]
    return vectors, norms


def _similarity(hyp_vectors, hyp_norms, hyp_length, ref_vectors, ref_norms, ref_length, max_n) -> float:
    # The COCO code measures length in bigrams (tokens - 1): the same difference, except for
    # one-word and empty sentences, where it is kept for figures comparable with the field's.
    delta = max(hyp_length - 1, 0) - max(ref_length - 1, 0)
    penalty = math.exp(-delta * delta / (2 * SIGMA * SIGMA))
    total = 0.0
    for n in range(max_n):
        dot = sum(min(v, ref_vectors[n].get(g, 0.0)) * ref_vectors[n].get(g, 0.0) for g, v in hyp_vectors[n].items())
        if hyp_norms[n] and ref_norms[n]:
            dot /= hyp_norms[n] * ref_norms[n]
        total += dot * penalty
    return total


def sentence_cider(hypotheses, references, max_n: int = 4) -> list[float]:
    """CIDEr-D of each hypothesis (a token list) against its references (token lists); document
    frequencies come from all the references given, so the corpus is what is scored.

    Returns one CIDEr-D per hypothesis, in order.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    if not hypotheses:
        return []
    scorer = CiderD(references, max_n)
    return [scorer.score(hyp, refs) for hyp, refs in zip(hypotheses, references)]


class CiderD:
    """CIDEr-D against the document frequencies of a fixed corpus of references, one caption at
    a time: the reward of self-critical training (Rennie et al. 2017), where a sampled caption
    is scored against its image's references with the training corpus's frequencies.

    Any hashable tokens work (words, or token ids). Example::

        scorer = CiderD(training_references)          # per image, its reference token lists
        scorer.score(["a", "dog", "runs"], [["a", "dog", "is", "running"], ["a", "brown", "dog"]])
    """

    def __init__(self, corpus, max_n: int = 4):
        self.max_n = max_n
        self.document_frequency = collections.Counter()
        count = 0
        for refs in corpus:
            self.document_frequency.update({gram for ref in refs for gram in _counts(ref, max_n)})
            count += 1
        self.log_images = math.log(max(count, 1))
        # A reference's tf-idf vector depends on it alone: computed once, reused by every caption
        # scored against it (self-critical training scores several samples per image, every epoch).
        self._reference_vectors = {}

    def _vectors(self, tokens):
        return _tf_idf(_counts(tokens, self.max_n), self.document_frequency, self.log_images, self.max_n)

    def score(self, hypothesis, references) -> float:
        """CIDEr-D of ``hypothesis`` against ``references`` (0 without references)."""
        if not references:
            return 0.0
        hyp_vectors, hyp_norms = self._vectors(hypothesis)
        total = 0.0
        for ref in references:
            key = tuple(ref)
            if key not in self._reference_vectors:
                self._reference_vectors[key] = self._vectors(ref)
            ref_vectors, ref_norms = self._reference_vectors[key]
            total += _similarity(hyp_vectors, hyp_norms, len(hypothesis), ref_vectors, ref_norms, len(ref), self.max_n)
        return 10.0 * total / self.max_n / len(references)


def corpus_cider(hypotheses, references, max_n: int = 4) -> float:
    """Mean CIDEr-D over the corpus (see :func:`sentence_cider`).

    Returns the mean CIDEr-D, a float (0 for a caption sharing no n-gram with its references; about 10 at
    most).
    """
    scores = sentence_cider(hypotheses, references, max_n)
    return sum(scores) / len(scores) if scores else 0.0
