"""The GNMT-style network: layers shared by the teacher-forced training model and the
one-step decoder that greedy and beam search run inside the SavedModel.

Example::

    model = build_model(config, source_vocab_size=8000, target_vocab_size=6000)
    translate = translator(config, model, beam_size=4, alpha=0.6)
    target_ids, log_probs = translate(tf.constant([[5, 9, 4]]))  # int32 [1, 16], float32 [1]
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasapps.api import END_ID, START_ID, decode


def build_model(cfg, source_vocab_size: int, target_vocab_size: int) -> keras.Model:
    """The teacher-forced training model ``{source, target_in}`` int32 ids -> logits (not compiled)."""
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    layers = ModelLayers(cfg, source_vocab_size, target_vocab_size)
    memory, keys, mask, state = layers.encode(source, training=None)
    x = layers.target_embedding(target_in)
    x, _ = layers.decode_layers(x, state, training=None)
    logits = layers.output_logits(x, memory, keys, mask, training=None)
    return keras.Model({"source": source, "target_in": target_in}, logits, name="gnmt")


def translator(cfg, model, beam_size: int, alpha: float, use_beam: bool | None = None):
    """A graph function: source ids int32 [N, S] -> (target ids int32 [N, 2S+10], log-prob [N]).

    Beam search when ``beam_size`` > 1 (or ``use_beam``), else greedy decoding.
    """
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
