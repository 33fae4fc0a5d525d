"""Translation scores: corpus BLEU as sacreBLEU reports it, BLEU-1 and exact match."""

from __future__ import annotations

from kerasapps.api import corpus_bleu, exact_match_rate


def translation_scores(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU-4 as sacreBLEU reports it (0-100; equals ``sacrebleu.corpus_bleu(hypotheses,
    [references], tokenize="none").score``), BLEU-1 (0-100) and exact-match rate (0-1), on
    space-separated tokens, one reference per sentence."""
    hyps = [h.split() for h in hypotheses]
    refs = [[r.split()] for r in references]
    scores = corpus_bleu(hyps, refs)
    return {"bleu": 100 * scores["bleu4"], "bleu1": 100 * scores["bleu1"], "exact_match": exact_match_rate(hyps, refs)}
