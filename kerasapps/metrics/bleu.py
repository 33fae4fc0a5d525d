"""Corpus BLEU (Papineni et al. 2002) over tokenised sentences, several references each.

Clipped n-gram precisions summed over the corpus, geometric mean with uniform
weights, brevity penalty against the reference length closest to each
hypothesis (shortest on ties), as NLTK's ``corpus_bleu`` and sacreBLEU compute it.
BLEU-n is the cumulative score over 1..n-grams, the figure papers report.

Example::

    corpus_bleu([["a", "red", "circle"]], [[["a", "red", "circle"], ["the", "red", "circle"]]])
    # {"bleu1": 1.0, "bleu2": 1.0, "bleu3": 1.0, "bleu4": 0.0}
"""

from __future__ import annotations

import collections
import math


def _ngrams(tokens, n):
    return collections.Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu_statistics(hypotheses, references, max_n: int = 4):
    """Corpus sums: matches[n], totals[n], hypothesis length, effective reference length."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        hyp_len += len(hyp)
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
        for n in range(1, max_n + 1):
            counts = _ngrams(hyp, n)
            max_ref = collections.Counter()
            for ref in refs:
                max_ref |= _ngrams(ref, n)
            matches[n - 1] += sum(min(c, max_ref[g]) for g, c in counts.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    return matches, totals, hyp_len, ref_len


def corpus_bleu(hypotheses, references, max_n: int = 4) -> dict:
    """BLEU-1..``max_n`` in [0, 1] for token lists ``hypotheses[i]`` against ``references[i]`` (a list of token lists).

    Returns ``{"bleu1": ..., "bleu4": ...}`` (one key per n up to ``max_n``), each in [0, 1].
    """
    matches, totals, hyp_len, ref_len = bleu_statistics(hypotheses, references, max_n)
    if hyp_len == 0:
        return {f"bleu{n}": 0.0 for n in range(1, max_n + 1)}
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    scores, log_sum = {}, 0.0
    for n in range(1, max_n + 1):
        if matches[n - 1] == 0 or totals[n - 1] == 0:
            log_sum = -math.inf
        else:
            log_sum += math.log(matches[n - 1] / totals[n - 1])
        scores[f"bleu{n}"] = 0.0 if log_sum == -math.inf else brevity * math.exp(log_sum / n)
    return scores


def exact_match_rate(hypotheses, references) -> float:
    """Share of hypotheses equal to one of their references.

    Returns a float in [0, 1].
    """
    if not hypotheses:
        return 0.0
    return sum(any(list(h) == list(r) for r in refs) for h, refs in zip(hypotheses, references)) / len(hypotheses)
