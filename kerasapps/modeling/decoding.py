"""Sequence decoding for text-producing tasks: greedy and beam search, as graph code.

Both work on any decoder through one function, ``step_fn(tokens, state) ->
(log_probs, new_state)``: ``tokens`` is ``int32 [N]`` (the last token of each
sequence), ``state`` any nest of ``[N, ...]`` tensors, ``log_probs`` is
``float32 [N, vocab]``. They run inside ``tf.function`` and SavedModels.

Example::

    tokens, log_prob = greedy_decode(step_fn, state, start_ids, end_id=3, max_length=20)
    tokens, log_prob = decode(step_fn, state, start_ids, end_id=3, max_length=20, beam_size=4)
    tokens, score, log_prob = beam_search(step_fn, state, start_ids, end_id=3,
                                          beam_size=4, max_length=20, alpha=0.6)
"""

from __future__ import annotations

import tensorflow as tf

NEG_INF = -1e9


def gnmt_length_penalty(length, alpha: float):
    """GNMT's length penalty ``((5 + |Y|) / 6) ** alpha`` (Wu et al. 2016); 1 when alpha = 0."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def _without_padding(log_probs):
    """Padding (id 0) is never a word: a decoder that chose it mid-sentence would give a token
    sequence its own readers cut there (untrained models do)."""
    return tf.concat([tf.fill([tf.shape(log_probs)[0], 1], tf.cast(NEG_INF, log_probs.dtype)), log_probs[:, 1:]],
                     axis=-1)


def greedy_decode(step_fn, state, start_ids, end_id: int, max_length: int):
    """Pick the most likely token at every step.

    Returns ``(tokens int32 [B, max_length], log_prob float32 [B])``: tokens after
    ``end_id`` are 0; ``log_prob`` sums the chosen tokens' log-probabilities up to
    and including ``end_id``.
    """
    batch = tf.shape(start_ids)[0]
    tokens = tf.zeros([batch, max_length], tf.int32)
    positions = tf.range(max_length)[tf.newaxis, :]

    def body(t, last, state, tokens, log_prob, done):
        log_probs, state = step_fn(last, state)
        log_probs = _without_padding(log_probs)
        chosen = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        chosen_log_prob = tf.gather(log_probs, chosen, batch_dims=1)
        log_prob += tf.where(done, 0.0, chosen_log_prob)
        chosen = tf.where(done, 0, chosen)
        tokens = tf.where(positions == t, chosen[:, tf.newaxis], tokens)
        done = done | tf.equal(chosen, end_id)
        return t + 1, chosen, state, tokens, log_prob, done

    def not_finished(t, last, state, tokens, log_prob, done):
        return (t < max_length) & ~tf.reduce_all(done)

    _, _, _, tokens, log_prob, _ = tf.while_loop(
        not_finished, body,
        (tf.constant(0), tf.cast(start_ids, tf.int32), state, tokens, tf.zeros([batch]), tf.zeros([batch], tf.bool)),
    )
    return tokens, log_prob


def _tile_beams(tensor, beam_size):
    """[B, ...] -> [B * K, ...], each row repeated K times."""
    return tf.repeat(tensor, beam_size, axis=0)


def _gather_beams(tensor, beam_indices, batch, beam_size):
    """Pick rows of a [B * K, ...] tensor by per-batch beam indices [B, K']."""
    shape = tf.shape(tensor)
    split = tf.reshape(tensor, tf.concat([[batch, beam_size], shape[1:]], axis=0))
    gathered = tf.gather(split, beam_indices, batch_dims=1)
    return tf.reshape(gathered, tf.concat([[-1], shape[1:]], axis=0))


def beam_search(step_fn, state, start_ids, end_id: int, beam_size: int, max_length: int, alpha: float = 0.0):
    """Batched beam search with GNMT's length penalty.

    A hypothesis ends when it emits ``end_id`` (counted in its length) or reaches
    ``max_length``. Finished hypotheses are ranked by ``log_prob / lp(length)``.
    Returns ``(tokens int32 [B, max_length], score [B], log_prob [B])`` for the best
    hypothesis of each batch element; tokens after ``end_id`` are 0.
    """
    batch = tf.shape(start_ids)[0]
    k = beam_size
    state = tf.nest.map_structure(lambda s: _tile_beams(s, k), state)
    last = _tile_beams(tf.cast(start_ids, tf.int32), k)
    positions = tf.range(max_length)[tf.newaxis, tf.newaxis, :]
    alive_seq = tf.zeros([batch, k, max_length], tf.int32)
    # Only the first beam is live at the start, so the K beams do not start as copies.
    alive_log_prob = tf.tile(tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], 0)[tf.newaxis], [batch, 1])
    finished_seq = tf.zeros([batch, k, max_length], tf.int32)
    finished_score = tf.fill([batch, k], NEG_INF)
    finished_log_prob = tf.fill([batch, k], NEG_INF)

    def body(t, last, state, alive_seq, alive_log_prob, finished_seq, finished_score, finished_log_prob):
        log_probs, state = step_fn(last, state)
        log_probs = _without_padding(log_probs)
        vocab = tf.shape(log_probs)[-1]
        candidates = alive_log_prob[:, :, tf.newaxis] + tf.reshape(log_probs, [batch, k, vocab])
        flat = tf.reshape(candidates, [batch, k * vocab])
        # 2K candidates leave K that do not end, even if K of them end here.
        top_log_prob, top_index = tf.math.top_k(flat, k=2 * k)
        beam_of = top_index // vocab
        token = top_index % vocab
        seq = tf.gather(alive_seq, beam_of, batch_dims=1)
        seq = tf.where(positions == t, token[:, :, tf.newaxis], seq)
        ends = tf.equal(token, end_id) | tf.equal(t + 1, max_length)
        # A hypothesis finishes only if it is among the K best extensions (classic
        # beam semantics; with K = 1 this is exactly greedy decoding).
        in_beam = tf.range(2 * k)[tf.newaxis, :] < k
        finishing = ends & in_beam
        new_score = tf.where(finishing, top_log_prob / gnmt_length_penalty(t + 1, alpha), NEG_INF)
        all_seq = tf.concat([finished_seq, seq], axis=1)
        all_score = tf.concat([finished_score, new_score], axis=1)
        all_log_prob = tf.concat([finished_log_prob, tf.where(finishing, top_log_prob, NEG_INF)], axis=1)
        finished_score, keep = tf.math.top_k(all_score, k=k)
        finished_seq = tf.gather(all_seq, keep, batch_dims=1)
        finished_log_prob = tf.gather(all_log_prob, keep, batch_dims=1)
        # Alive: the K best candidates that did not end.
        alive_candidates = tf.where(ends, NEG_INF, top_log_prob)
        alive_log_prob, keep = tf.math.top_k(alive_candidates, k=k)
        alive_seq = tf.gather(seq, keep, batch_dims=1)
        source_beam = tf.gather(beam_of, keep, batch_dims=1)
        state = tf.nest.map_structure(lambda s: _gather_beams(s, source_beam, batch, k), state)
        last = tf.reshape(tf.gather(token, keep, batch_dims=1), [-1])
        return t + 1, last, state, alive_seq, alive_log_prob, finished_seq, finished_score, finished_log_prob

    def not_finished(t, last, state, alive_seq, alive_log_prob, finished_seq, finished_score, finished_log_prob):
        # Stop once no live hypothesis can beat the worst kept finished one: with
        # alpha >= 0 its best possible score is log_prob / lp(max_length).
        best_alive = tf.reduce_max(alive_log_prob, axis=1) / gnmt_length_penalty(max_length, alpha)
        worst_finished = tf.reduce_min(finished_score, axis=1)
        return (t < max_length) & tf.reduce_any(best_alive > worst_finished)

    loop_vars = (tf.constant(0), last, state, alive_seq, alive_log_prob, finished_seq, finished_score,
                 finished_log_prob)
    shapes = tf.nest.map_structure(lambda v: tf.TensorShape([None] * v.shape.rank), loop_vars)
    outputs = tf.while_loop(not_finished, body, loop_vars, shape_invariants=shapes)
    finished_seq, finished_score, finished_log_prob = outputs[5:]
    best = tf.argmax(finished_score, axis=1, output_type=tf.int32)
    tokens = tf.gather(finished_seq, best, batch_dims=1)
    # Zero everything after the first end token.
    ended = tf.cumsum(tf.cast(tf.equal(tokens, end_id), tf.int32), axis=1, exclusive=True) > 0
    tokens = tf.where(ended, 0, tokens)
    return tokens, tf.gather(finished_score, best, batch_dims=1), tf.gather(finished_log_prob, best, batch_dims=1)


def decode(step_fn, state, start_ids, end_id: int, max_length, beam_size: int = 1, alpha: float = 0.0,
           use_beam: bool | None = None):
    """Greedy decoding for ``beam_size`` 1, else beam search (``use_beam`` forces either).

    Returns ``(tokens int32 [B, max_length], log_prob float32 [B])``.
    """
    if not (beam_size > 1 if use_beam is None else use_beam):
        return greedy_decode(step_fn, state, start_ids, end_id, max_length)
    tokens, _score, log_prob = beam_search(step_fn, state, start_ids, end_id, beam_size, max_length, alpha)
    return tokens, log_prob
