"""The captioning model: encoder, LSTM decoder (Show and Tell, Vinyals et al. 2015, or the
merge decoder, Mao et al. 2015), decoding.

Example::

    encoder = build_encoder(config)
    model = build_show_and_tell(config, vocab_size, encoder)
    tokens, log_prob = caption_function(model, config, beam_size=3)(images)
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import tensorflow as tf

from kerasapps.api import (END_ID, START_ID, UNK_ID, ForgetGateBias, FusedBatchNormalization, UsageError, Vocabulary,
                           decode)

# keras.applications encoders: constructor and the preprocessing its weights expect.
APPLICATIONS = {
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2"),
    "inception_v3": ("InceptionV3", "inception_v3"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet"),
}


def build_encoder(cfg, image_features=None):
    """Images (0..255) -> an ``embed_dim`` vector: the small CNN, or ``image_features`` (a
    keras.applications backbone from :func:`build_image_features`, or a kerasapps run's
    network from :func:`build_run_features`) and a dense layer."""
    size = cfg.image_size
    image = keras.Input((size, size, 3), name="image")
    x = small_cnn(image, cfg) if cfg.encoder == "cnn" else image_features(image)
    return keras.Model(image, embed_features(cfg, x), name="encoder")


def embed_features(cfg, features, encoder=None):
    """Pooled image features -> the ``embed_dim`` image vector: batch-normalised first with
    ``cfg.normalize_features``, then a dense ReLU layer. With ``encoder`` its layers are reused
    (the cached-features head)."""
    layer = (lambda name, make: encoder.get_layer(name)) if encoder is not None else (lambda name, make: make())
    if getattr(cfg, "normalize_features", False):
        # Pooled features of a frozen encoder differ little between photos next to their
        # common mean: unscaled, the decoder learns the captions' language and ignores the image.
        # Momentum 0.9: the moving statistics that evaluation uses settle within the first epoch
        # (at Keras's 0.99 a Flickr8k epoch of 94 steps left them far off, and validation loss rose).
        features = layer("feature_norm", lambda: keras.layers.BatchNormalization(momentum=0.9, name="feature_norm"))(
            features)
    return layer("image_embedding",
                 lambda: keras.layers.Dense(cfg.embed_dim, activation="relu", name="image_embedding"))(features)


def small_cnn(image, cfg):
    """The small CNN trained from scratch: images (0..255) -> a feature vector; conv blocks of
    ``cfg.cnn_filters`` (each conv + batch norm + ReLU + 2x2 max pooling), then ``cfg.cnn_pooling``;
    batch norm's moving averages use ``cfg.batch_norm_momentum`` where the config has it (0.99 else)."""
    momentum = getattr(cfg, "batch_norm_momentum", 0.99)
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(image)
    for i, filters in enumerate(cfg.cnn_filters, start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = FusedBatchNormalization(momentum=momentum, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    if cfg.cnn_pooling == "max":
        # One set of weights for what is seen wherever it is. Flattened, each position
        # has its own, and the small objects' shapes were never learnt (the positions
        # the captions need survive pooling: zero padding lets the filters see them).
        return keras.layers.GlobalMaxPooling2D(name="global_max")(x)
    return keras.layers.Flatten(name="flatten")(x)


def build_image_features(cfg):
    """The keras.applications backbone with its preprocessing: images (0..255) -> pooled
    features (the task builds it once, so cached features and the model share its weights)."""
    size = cfg.image_size
    class_name, module = APPLICATIONS[cfg.encoder]
    weights = None if cfg.encoder_weights == "none" else cfg.encoder_weights
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise UsageError(f"encoder_weights={weights}: no such file (none, imagenet, or a {class_name} weights file)")
    try:
        backbone = getattr(keras.applications, class_name)(
            include_top=False, weights=weights, input_shape=(size, size, 3), pooling="avg")
    except Exception as exc:  # offline: a plain Exception wrapping the URL error
        if weights != "imagenet":
            raise UsageError(f"encoder_weights={weights} do not fit {class_name} without its top at "
                             f"{size}x{size}: {str(exc).splitlines()[0]}") from None
        raise UsageError(
            f"could not load {cfg.encoder} weights {cfg.encoder_weights!r} (no network?): "
            f"{str(exc).splitlines()[0]}. Offline: --set encoder_weights=none, or put the weights file "
            "in ~/.keras/models/"
        ) from None
    backbone.trainable = not cfg.freeze_encoder
    preprocess = getattr(keras.applications, module).preprocess_input
    image = keras.Input((size, size, 3), name="image")
    features = backbone(preprocess(image), training=False if cfg.freeze_encoder else None)
    return keras.Model(image, features, name="image_features")


def build_run_network(cfg, run):
    """A kerasapps classification or tagging run's whole network (its task builds it from the run's
    recorded config), for ``cfg.image_size`` images; the run's weights are not loaded yet."""
    return run.build_model(load_weights=False, info_overrides={"image_size": cfg.image_size})


def build_run_features(cfg, network):
    """A classification or tagging ``network`` without its classifier: images (0..255, RGB) -> the
    features its ``logits`` layer reads (before its dropout). A grayscale network (MNIST)
    sees the image in grey (ITU-R 601 luma). A matching run's network (:class:`DualEncoder`)
    gives its image encoder's features below the projection into the shared space, at the size
    it was trained on (images are resized to it)."""
    if isinstance(network, DualEncoder):
        source, name = network.image_encoder, "matching_image_features"
        features = source.get_layer("image_projection").input
    else:
        names = {layer.name for layer in network.layers}
        if "logits" not in names:
            raise UsageError(f"the {network.name} network has no 'logits' layer to cut its classifier at")
        if not any(layer.weights for layer in network.layers if layer.name not in ("logits", "probabilities")):
            raise UsageError(f"the {network.name} network has no trained layers below its classifier to start "
                             "from (a classification run needs --set model=lenet5 or resnet20)")
        source, name = network, f"{network.name}_features"
        features = network.get_layer("dropout" if "dropout" in names else "logits").input
    backbone = keras.Model(source.input, features, name=name)
    backbone.trainable = not cfg.freeze_encoder
    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    x = keras.ops.image.rgb_to_grayscale(image) if source.input.shape[-1] == 1 else image
    trained_size = tuple(source.input.shape[1:3])  # a run network is rebuilt at image_size; a matching one is not
    if trained_size != (cfg.image_size,) * 2:
        # Its filters learnt objects at that scale; max pooling would take any size, but not the same features.
        x = keras.layers.Resizing(*trained_size, name="to_trained_size")(x)
    return keras.Model(image, backbone(x, training=False if cfg.freeze_encoder else None), name="image_features")


def build_show_and_tell(cfg, vocab_size: int, encoder):
    """The captioning model (not compiled). ``cfg.decoder``: ``show_and_tell``, the encoder's
    vector is the LSTM's first input, then the caption's words (Vinyals et al. 2015); ``merge``,
    the LSTM reads the words alone and the image vector joins its output in a dense layer before
    the word classifier (Mao et al. 2015; Tanti et al. 2018). With ``cfg.cache_features`` also a
    head from cached features."""
    merge = getattr(cfg, "decoder", "show_and_tell") == "merge"
    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    steps, k = cfg.max_caption_length + 1, cfg.captions_per_image
    tokens = keras.Input((k, steps), dtype="int32", name="tokens")
    image_step = keras.layers.Reshape((1, cfg.embed_dim), name="image_step")
    embedding = keras.layers.Embedding(vocab_size, cfg.embed_dim, mask_zero=True, name="embedding")
    concatenate = keras.layers.Concatenate(axis=1, name="image_then_words")
    lstms = [keras.layers.LSTM(cfg.lstm_units, return_sequences=True, return_state=True, name=f"lstm{i}",
                               unit_forget_bias=False, bias_initializer=ForgetGateBias(cfg.forget_bias))
             for i in range(1, cfg.lstm_layers + 1)]
    dropout = keras.layers.Dropout(cfg.dropout, name="dropout")
    to_logits = keras.layers.Dense(vocab_size, name="logits", dtype="float32")
    if merge:
        image_at_steps = keras.layers.RepeatVector(steps, name="image_at_steps")
        words_and_image = keras.layers.Concatenate(name="words_and_image")
        mix = keras.layers.Dense(cfg.embed_dim, activation="relu", name="merge")

    def next_word_logits(image_vectors):
        # Each image is encoded once and its vector reused for its K captions (rows b*K .. b*K+K-1).
        image_vectors = keras.ops.repeat(image_vectors, k, axis=0)
        words = embedding(keras.ops.reshape(tokens, (-1, steps)))
        if merge:
            x = words
            for lstm in lstms:
                x = lstm(x)[0]
            x = mix(words_and_image([dropout(x), image_at_steps(image_vectors)]))
        else:
            # Show and Tell: the image is the LSTM's input at step -1, then the words.
            x = concatenate([image_step(image_vectors), words])
            for lstm in lstms:
                x = lstm(x)[0]
            x = dropout(x[:, 1:])  # the output at the image step predicts nothing
        return keras.ops.reshape(to_logits(x), (-1, k, steps, vocab_size))

    features_head = None
    if cfg.cache_features:  # the same layers from the frozen backbone's features on
        features = keras.Input(encoder.get_layer("image_features").output.shape[1:], name="features")
        features_head = keras.Model({"features": features, "tokens": tokens},
                                    next_word_logits(embed_features(cfg, features, encoder)),
                                    name="features_head")
    model = ShowAndTell({"image": image, "tokens": tokens}, next_word_logits(encoder(image)),
                        features_head=features_head, name="show_and_tell")
    return model


def decoder_steps(model, cfg):
    """The trained decoder one word at a time, for decoding and for self-critical sampling.

    Returns ``(start, step)``: ``start(image_vectors)`` -> the decoder's state before the first
    word (the LSTMs' ``(h, c)`` pairs and the image vector; Show and Tell has read the image
    already), and ``step(tokens [N], state)`` -> (next-word log-probabilities [N, vocab], state).
    """
    embedding = model.get_layer("embedding")
    lstms = [model.get_layer(f"lstm{i}") for i in range(1, cfg.lstm_layers + 1)]
    logits_layer = model.get_layer("logits")
    merge = getattr(cfg, "decoder", "show_and_tell") == "merge"
    mix = model.get_layer("merge") if merge else None
    # Added to the logits before the softmax: the distribution is renormalised over the known words.
    forbidden = None if getattr(cfg, "emit_unknown", True) else tf.one_hot(UNK_ID, logits_layer.units, on_value=-1e9)

    def run_lstms(x, states):
        new_states = []
        for layer, (h, c) in zip(lstms, states):
            x, h, c = layer(x, initial_state=[h, c], training=False)
            new_states.append((h, c))
        return x, tuple(new_states)

    def start(image_vectors):
        batch = tf.shape(image_vectors)[0]
        states = tuple((tf.zeros([batch, cfg.lstm_units], image_vectors.dtype),) * 2 for _ in lstms)
        if not merge:
            _, states = run_lstms(image_vectors[:, tf.newaxis, :], states)
        return states, image_vectors

    def step(tokens, state):
        # The image vector travels in the state: beam search reorders it with the LSTMs' states.
        lstm_states, image_vector = state
        x, lstm_states = run_lstms(embedding(tokens)[:, tf.newaxis, :], lstm_states)
        x = x[:, 0]
        if merge:
            x = mix(tf.concat([x, tf.cast(image_vector, x.dtype)], axis=-1))
        logits = tf.cast(logits_layer(x), tf.float32)
        if forbidden is not None:
            logits += forbidden
        return tf.nn.log_softmax(logits), (lstm_states, image_vector)

    return start, step


def caption_function(model, cfg, beam_size: int | None = None, alpha: float | None = None,
                     use_beam: bool | None = None):
    """A graph function: float32 images [N, S, S, 3] (0..255) -> (token ids [N, T], log-prob [N]).

    Beam search when ``beam_size`` > 1 (or ``use_beam``), else greedy decoding.
    """
    beam_size = cfg.beam_size if beam_size is None else beam_size
    alpha = cfg.length_alpha if alpha is None else alpha
    encoder = model.get_layer("encoder")
    start, step = decoder_steps(model, cfg)

    def captions(images):
        state = start(encoder(images, training=False))
        first = tf.fill([tf.shape(images)[0]], START_ID)
        return decode(step, state, first, END_ID, cfg.max_caption_length + 1, beam_size, alpha, use_beam)

    return captions


def sample_captions(step, state, max_length: int):
    """Graph code: one caption per row of ``state`` drawn word by word from the decoder's
    distribution (differentiable in its log-probabilities).

    Returns ``(tokens [N, max_length], log_probs [N, max_length], mask [N, max_length])``: the
    words up to and including ``<end>`` have mask 1, what follows it 0.
    """
    tokens = tf.fill([tf.shape(state[1])[0]], START_ID)
    words, log_probs = [], []
    for _ in range(max_length):  # unrolled: max_length is small and the gradient flows through every step
        scores, state = step(tokens, state)
        tokens = tf.random.categorical(scores, 1, dtype=tf.int32)[:, 0]
        words.append(tokens)
        log_probs.append(tf.gather(scores, tokens, batch_dims=1))
    words, log_probs = tf.stack(words, axis=1), tf.stack(log_probs, axis=1)
    ended_before = tf.cumsum(tf.cast(words == END_ID, tf.int32), axis=1, exclusive=True) > 0
    return words, log_probs, tf.cast(~ended_before, tf.float32)


def self_critical_rewards(scorer, samples: int, words, targets, weights) -> np.ndarray:
    """Host code: each sampled caption's CIDEr-D against its image's references.

    ``words`` [N * samples, T]: the sampled token ids, image by image (rows ``i * samples`` ..
    ``i * samples + samples - 1`` are image ``i``'s), cut at the first ``<end>``; ``targets`` and
    ``weights`` [N, K, T + 1]: the teacher-forcing targets of each image's K references (their
    words, then ``<end>``), weight 0 past the end and for empty slots. ``scorer`` is a
    :class:`kerasapps.api.CiderD`. Returns float32 [N * samples].
    """
    references = [[tuple(int(t) for t, w in zip(row, row_weights) if w > 0 and t != END_ID)
                   for row, row_weights in zip(image_targets, image_weights) if row_weights.any()]
                  for image_targets, image_weights in zip(targets, weights)]
    rewards = []
    for i, row in enumerate(words):
        end = np.flatnonzero(row == END_ID)
        caption = tuple(int(t) for t in row[:end[0] if len(end) else len(row)])
        rewards.append(scorer.score(caption, references[i // samples]))
    return np.asarray(rewards, np.float32)


class ShowAndTell(keras.Model):
    """The captioning model: ``{"image", "tokens"}`` -> next-word logits ``[N, K, T + 1, vocab]``.

    With a cached frozen encoder (``features_head``) it also takes ``{"features", "tokens"}``,
    the backbone's pooled features in place of the image, so training skips the backbone;
    ``fit``, ``train_step`` and the checkpoints (which hold the backbone too) stay Keras's own.

        model({"image": images, "tokens": tokens})      # always
        model({"features": features, "tokens": tokens})  # with features_head
    """

    def __init__(self, inputs, outputs, features_head=None, **kwargs):
        super().__init__(inputs, outputs, **kwargs)
        self.features_head = features_head
        if features_head is not None:
            self.input_spec = None  # two input structures: each path checks its own in call()
        self.self_critical = None

    def call(self, inputs, training=None, mask=None):
        if "features" in inputs:
            if self.features_head is None:
                raise ValueError("this model was built without cache_features: it takes images")
            return self.features_head(inputs, training=training)
        return super().call(inputs, training=training, mask=mask)

    def train_self_critical(self, cfg, scorer, samples: int):
        """From now on ``train_step`` is self-critical sequence training (Rennie et al. 2017):
        ``samples`` captions drawn per image, each rewarded by ``scorer`` (a
        :class:`kerasapps.api.CiderD` over the training references' token ids) against the
        image's references in the batch, less the mean reward of the image's other samples
        (Luo 2020), which needs no greedy pass. Logs ``reward`` (the samples' mean CIDEr-D) and
        ``policy_loss``; validation keeps the cross-entropy metrics. Call before the first step.
        """
        self._steps = decoder_steps(self, cfg)
        self._max_length = cfg.max_caption_length + 1
        self._config = cfg
        self.self_critical = (scorer, samples)
        self.self_critical_trackers = {"policy_loss": keras.metrics.Mean(name="policy_loss"),
                                       "reward": keras.metrics.Mean(name="reward")}

    def train_step(self, data):
        if self.self_critical is None:
            return super().train_step(data)
        inputs, targets, weights = data
        scorer, samples = self.self_critical
        start, step = self._steps
        with tf.GradientTape() as tape:
            encoder = self.get_layer("encoder")
            if "features" in inputs:  # cached features: the encoder's own layers above its backbone
                vectors = embed_features(self._config, inputs["features"], encoder)
            else:
                vectors = encoder(inputs["image"], training=False)
            state = start(tf.repeat(vectors, samples, axis=0))
            words, log_probs, mask = sample_captions(step, state, self._max_length)
            rewards = tf.numpy_function(lambda *arrays: self_critical_rewards(scorer, samples, *arrays),
                                        [words, targets, weights], tf.float32, stateful=False)
            rewards = tf.reshape(rewards, [-1, samples])
            baseline = (tf.reduce_sum(rewards, axis=1, keepdims=True) - rewards) / max(samples - 1, 1)
            advantage = tf.stop_gradient(tf.reshape(rewards - baseline, [-1]))
            losses = -advantage * tf.reduce_sum(log_probs * mask, axis=1)
            # Each replica's share of the global mean: the optimizer sums the replicas' gradients.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            loss = self.optimizer.scale_loss(tf.reduce_mean(losses) / replicas)
        variables = self.trainable_variables
        self.optimizer.apply_gradients((g, v) for g, v in zip(tape.gradient(loss, variables), variables) if g is not None)
        self.self_critical_trackers["policy_loss"].update_state(losses)
        self.self_critical_trackers["reward"].update_state(rewards)
        return {name: tracker.result() for name, tracker in self.self_critical_trackers.items()}

    def test_step(self, data):
        logs = super().test_step(data)
        # Validation is teacher-forced cross-entropy: the self-critical trackers have nothing to say there.
        return {name: value for name, value in logs.items() if name not in ("policy_loss", "reward")}


MAX_LOGIT_SCALE = 100.0  # CLIP's cap on 1 / temperature: a larger scale made its training unstable


def gather_replicas(local):
    """Every replica's rows of ``local``, in replica order, and where this replica's rows start.

    Under one replica: ``(local, 0)``. The gradient flows back to each replica's own rows
    (``ReplicaContext.all_gather`` sums the replicas' gradients and slices), so a loss over the
    gathered rows trains as if the global batch were on one device.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return local, tf.constant(0)
    gathered = context.all_gather(local, axis=0)
    sizes = context.all_gather(tf.shape(local)[:1], axis=0)
    return gathered, tf.reduce_sum(sizes[:context.replica_id_in_sync_group])


def contrastive_losses(image_embeddings, text_embeddings, logit_scale):
    """Symmetric InfoNCE (CLIP): per local pair, the mean of two cross-entropies, image -> the
    global batch's texts and text -> its images, with logits ``logit_scale * cosine``.

    Returns ``(losses [n], correct [n], pairs)``: each local pair's loss, whether both directions
    rank it first in the global batch, and the global batch's pair count. Inputs are unit
    vectors ``[n, d]`` of this replica.
    """
    all_images, offset = gather_replicas(image_embeddings)
    all_texts, _ = gather_replicas(text_embeddings)
    labels = offset + tf.range(tf.shape(image_embeddings)[0])
    image_to_text = logit_scale * tf.matmul(image_embeddings, all_texts, transpose_b=True)
    text_to_image = logit_scale * tf.matmul(text_embeddings, all_images, transpose_b=True)
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits
    losses = 0.5 * (cross_entropy(labels, image_to_text) + cross_entropy(labels, text_to_image))
    correct = ((tf.argmax(image_to_text, -1, output_type=tf.int32) == labels)
               & (tf.argmax(text_to_image, -1, output_type=tf.int32) == labels))
    return losses, correct, tf.shape(all_texts)[0]


class DualEncoder(keras.Model):
    """An image encoder and a text encoder into one space, and a learnt temperature.

    ``call`` maps ``{"image": [N, S, S, 3] 0..255, "tokens": [N, T]}`` to
    ``{"image_embedding", "text_embedding"}`` (unit vectors); ``train_step`` minimises
    :func:`contrastive_losses` over the global batch (all replicas' pairs are each pair's
    negatives) and logs ``loss``, ``batch_accuracy`` (both directions rank the pair first in the
    batch) and ``temperature``.

    Example::

        model = DualEncoder(build_image_encoder(cfg), build_text_encoder(cfg, vocab.size), vocabulary=vocab)
        model.compile(keras.optimizers.Adam(1e-3))
        model.image_embeddings(uint8_images) @ model.text_embeddings(["a red circle"]).T   # cosines
    """

    def __init__(self, image_encoder, text_encoder, *, vocabulary: Vocabulary | None = None,
                 temperature: float = 0.07, learn_temperature: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.vocabulary = vocabulary  # not a layer: the export tracks its lookup table (serving_resources)
        self.log_logit_scale = self.add_weight(
            name="log_logit_scale", shape=(), initializer=keras.initializers.Constant(math.log(1 / temperature)),
            trainable=learn_temperature)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "batch_accuracy", "temperature")}
        self.built = True  # both encoders are built; the engine must not build it again

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def logit_scale(self):
        return tf.minimum(tf.exp(tf.cast(self.log_logit_scale, tf.float32)), MAX_LOGIT_SCALE)

    def call(self, inputs, training=None):
        return {"image_embedding": self.image_encoder(tf.cast(inputs["image"], tf.float32), training=training),
                "text_embedding": self.text_encoder(inputs["tokens"], training=training)}

    def _step(self, data, training):
        embeddings = self(data, training=training)
        return contrastive_losses(embeddings["image_embedding"], embeddings["text_embedding"], self.logit_scale)

    def _update(self, losses, correct):
        self.trackers["loss"].update_state(losses)
        self.trackers["batch_accuracy"].update_state(tf.cast(correct, tf.float32))
        self.trackers["temperature"].update_state(1.0 / self.logit_scale)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            losses, correct, pairs = self._step(data, training=True)
            # Each replica's share of the global mean: the optimizer sums the replicas' gradients.
            loss = tf.reduce_sum(losses) / tf.cast(tf.maximum(pairs, 1), tf.float32)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._update(losses, correct)

    def test_step(self, data):
        losses, correct, _ = self._step(data, training=False)
        return self._update(losses, correct)

    # -- embeddings for other tasks and for serving ------------------------------
    @property
    def image_size(self) -> int:
        return int(self.image_encoder.input.shape[1])

    def embed_images(self, images):
        """Graph code: images ``[N, H, W, 3]`` in 0..255 (resized when not the model's size) -> unit vectors."""
        images = tf.cast(images, tf.float32)
        size = self.image_size
        if images.shape[1] != size or images.shape[2] != size:
            images = tf.image.resize(images, (size, size), antialias=True)
        return self.image_encoder(images, training=False)

    def embed_texts(self, texts):
        """Graph code: captions ``tf.string [N]`` -> unit vectors (standardised as in training)."""
        return self.text_encoder(tf.cast(self.vocabulary.encode(texts), tf.int32), training=False)

    def image_embeddings(self, images, batch_size: int = 256) -> np.ndarray:
        """uint8 or float images ``[N, H, W, 3]`` (0..255; an array or batches of them) -> float32 ``[N, d]``."""
        embed = tf.function(self.embed_images, reduce_retracing=True)
        batches = ([images[i:i + batch_size] for i in range(0, len(images), batch_size)]
                   if isinstance(images, np.ndarray) else images)
        out = [embed(tf.convert_to_tensor(batch)).numpy() for batch in batches]
        return np.concatenate(out) if out else np.zeros((0, self.image_encoder.output.shape[-1]), np.float32)

    def text_embeddings(self, texts, batch_size: int = 1024) -> np.ndarray:
        """Captions (str) -> float32 ``[N, d]``."""
        texts = list(texts)
        embed = tf.function(self.embed_texts, reduce_retracing=True)
        out = [embed(tf.constant(texts[i:i + batch_size])).numpy() for i in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.text_encoder.output.shape[-1]), np.float32)
