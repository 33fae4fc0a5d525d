"""Greedy and beam search (kerasapps.modeling.decoding) and corpus BLEU (kerasapps.metrics.bleu), on hand-computed cases."""

import math
import random

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kerasapps.metrics.bleu import corpus_bleu, exact_match_rate  # noqa: E402
from kerasapps.modeling.decoding import beam_search, gnmt_length_penalty, greedy_decode  # noqa: E402

PAD, START, END, A, B = 0, 1, 2, 3, 4


def markov_step(table):
    """step_fn of a decoder whose next-token distribution depends on the last token only."""
    log_table = tf.math.log(tf.constant(table, tf.float32) + 1e-12)

    def step(tokens, state):
        return tf.gather(log_table, tokens), state + 1

    return step


# From <start>: a 0.55, b 0.45. After a: <end> 0.4, a 0.3, b 0.3. After b: <end> 0.95, a 0.05.
HAND = np.zeros((5, 5))
HAND[START, [A, B]] = [0.55, 0.45]
HAND[A, [END, A, B]] = [0.4, 0.3, 0.3]
HAND[B, [END, A]] = [0.95, 0.05]
HAND[END, END] = 1.0
HAND[PAD, END] = 1.0


def test_greedy_takes_the_locally_best_path():
    tokens, log_prob = greedy_decode(markov_step(HAND), tf.zeros([1]), tf.constant([START]), END, max_length=5)
    assert tokens.numpy().tolist() == [[A, END, 0, 0, 0]]
    assert log_prob.numpy()[0] == pytest.approx(math.log(0.55 * 0.4), rel=1e-5)


def test_beam_finds_the_better_sequence_greedy_misses():
    tokens, score, log_prob = beam_search(markov_step(HAND), tf.zeros([1]), tf.constant([START]), END,
                                          beam_size=2, max_length=5)
    assert tokens.numpy().tolist() == [[B, END, 0, 0, 0]]
    assert log_prob.numpy()[0] == pytest.approx(math.log(0.45 * 0.95), rel=1e-5)
    assert score.numpy()[0] == pytest.approx(log_prob.numpy()[0], rel=1e-6)  # alpha 0: no penalty


def test_length_penalty_changes_the_ranking_as_gnmt_defines_it():
    assert float(gnmt_length_penalty(1, 0.0)) == 1.0
    assert float(gnmt_length_penalty(3, 1.0)) == pytest.approx(8 / 6)
    # Same table, alpha large: the penalty divides log-probs by ((5+len)/6)^alpha; both candidates have length 2.
    _, score, log_prob = beam_search(markov_step(HAND), tf.zeros([1]), tf.constant([START]), END, 2, 5, alpha=2.0)
    assert score.numpy()[0] == pytest.approx(log_prob.numpy()[0] / (7 / 6) ** 2, rel=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_beam_of_one_equals_greedy_on_random_decoders(seed):
    rng = np.random.default_rng(seed)
    table = rng.dirichlet(np.ones(12) * 0.3, size=12)
    starts = tf.constant(rng.integers(3, 12, size=16), tf.int32)
    greedy, greedy_lp = greedy_decode(markov_step(table), tf.zeros([16]), starts, END, max_length=9)
    beam, _, beam_lp = beam_search(markov_step(table), tf.zeros([16]), starts, END, beam_size=1, max_length=9)
    np.testing.assert_array_equal(greedy.numpy(), beam.numpy())
    np.testing.assert_allclose(greedy_lp.numpy(), beam_lp.numpy(), rtol=1e-5)


def test_beam_state_follows_its_hypothesis():
    # A decoder that must count: it may only end after exactly 3 tokens (state counts steps).
    def step(tokens, state):
        can_end = tf.equal(state, 3)[:, None]
        logits = tf.where(can_end, tf.constant([[-9.0, -9.0, 0.0, -9.0, -9.0]]),
                          tf.constant([[-9.0, -9.0, -9.0, -0.1, -2.0]]))
        return tf.nn.log_softmax(logits), state + 1

    tokens, _, _ = beam_search(step, tf.zeros([2], tf.int32), tf.constant([START, START]), END, 3, max_length=6)
    assert tokens.numpy().tolist() == [[A, A, A, END, 0, 0]] * 2


def test_bleu_matches_sacrebleu_on_random_sentences():
    sacrebleu = pytest.importorskip("sacrebleu")
    rnd = random.Random(0)
    words = "a the red blue circle square big small left of to is".split()
    hyps = [[rnd.choice(words) for _ in range(rnd.randint(1, 9))] for _ in range(200)]
    refs = [[[rnd.choice(words) for _ in range(rnd.randint(3, 9))] for _ in range(3)] for _ in range(200)]
    ours = corpus_bleu(hyps, refs)
    streams = [[" ".join(r[i]) for r in refs] for i in range(3)]
    for n in range(1, 5):
        metric = sacrebleu.metrics.BLEU(tokenize="none", max_ngram_order=n, smooth_method="none", effective_order=False)
        expected = metric.corpus_score([" ".join(h) for h in hyps], streams).score / 100
        assert ours[f"bleu{n}"] == pytest.approx(expected, abs=1e-9), n
    assert ours["bleu1"] > ours["bleu2"] > ours["bleu3"] > 0


def test_bleu_hand_computed_case():
    hyp = "the cat the cat on the mat".split()
    refs = ["the cat is on the mat".split(), "there is a cat on the mat".split()]
    scores = corpus_bleu([hyp], [refs], max_n=2)
    # unigrams: the(3, max ref 2) cat(2,1) on(1,1) mat(1,1) -> 5/7; bigrams: the cat(2,1) cat the(1,0)
    # cat on(1,1) on the(1,1) the mat(1,1) -> 4/6; hyp 7 > closest ref 7? closest is 7 ("there ... mat"), BP = 1.
    assert scores["bleu1"] == pytest.approx(5 / 7)
    assert scores["bleu2"] == pytest.approx(math.sqrt(5 / 7 * 4 / 6))
    assert exact_match_rate([hyp, refs[0]], [refs, refs]) == 0.5
