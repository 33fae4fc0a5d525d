"""The captioning model: encoder, LSTM decoder (Show and Tell, Vinyals et al. 2015, or the
merge decoder, Mao et al. 2015), decoding.

Example::

    encoder = build_encoder(config)
    model = build_show_and_tell(config, vocab_size, encoder)
    tokens, log_prob = caption_function(model, config, beam_size=3)(images)
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from kerasapps.api import END_ID, START_ID, ForgetGateBias, FusedBatchNormalization, UsageError, decode

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
    sees the image in grey (ITU-R 601 luma)."""
    names = {layer.name for layer in network.layers}
    if "logits" not in names:
        raise UsageError(f"the {network.name} network has no 'logits' layer to cut its classifier at")
    features = network.get_layer("dropout" if "dropout" in names else "logits").input
    if not any(layer.weights for layer in network.layers if layer.name not in ("logits", "probabilities")):
        raise UsageError(f"the {network.name} network has no trained layers below its classifier to start from "
                         "(a classification run needs --set model=lenet5 or resnet20)")
    backbone = keras.Model(network.input, features, name=f"{network.name}_features")
    backbone.trainable = not cfg.freeze_encoder
    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    x = keras.ops.image.rgb_to_grayscale(image) if network.input.shape[-1] == 1 else image
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


def caption_function(model, cfg, beam_size: int | None = None, alpha: float | None = None,
                     use_beam: bool | None = None):
    """A graph function: float32 images [N, S, S, 3] (0..255) -> (token ids [N, T], log-prob [N]).

    Beam search when ``beam_size`` > 1 (or ``use_beam``), else greedy decoding.
    """
    beam_size = cfg.beam_size if beam_size is None else beam_size
    alpha = cfg.length_alpha if alpha is None else alpha
    encoder = model.get_layer("encoder")
    embedding = model.get_layer("embedding")
    lstms = [model.get_layer(f"lstm{i}") for i in range(1, cfg.lstm_layers + 1)]
    logits_layer = model.get_layer("logits")
    merge = getattr(cfg, "decoder", "show_and_tell") == "merge"
    mix = model.get_layer("merge") if merge else None
    max_length = cfg.max_caption_length + 1

    def run_lstms(x, states):
        new_states = []
        for layer, (h, c) in zip(lstms, states):
            x, h, c = layer(x, initial_state=[h, c], training=False)
            new_states.append((h, c))
        return x, tuple(new_states)

    def step(tokens, state):
        # The state is the LSTMs' (h, c) pairs and, for merge, the image vector (beam search
        # reorders both alike).
        lstm_states, image_vector = state
        x, lstm_states = run_lstms(embedding(tokens)[:, tf.newaxis, :], lstm_states)
        x = x[:, 0]
        if merge:
            x = mix(tf.concat([x, tf.cast(image_vector, x.dtype)], axis=-1))
        return tf.nn.log_softmax(tf.cast(logits_layer(x), tf.float32)), (lstm_states, image_vector)

    def captions(images):
        features = encoder(images, training=False)
        batch = tf.shape(features)[0]
        states = tuple((tf.zeros([batch, cfg.lstm_units], features.dtype),) * 2 for _ in lstms)
        if not merge:
            _, states = run_lstms(features[:, tf.newaxis, :], states)
        start = tf.fill([batch], START_ID)
        return decode(step, (states, features), start, END_ID, max_length, beam_size, alpha, use_beam)

    return captions


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

    def call(self, inputs, training=None, mask=None):
        if "features" in inputs:
            if self.features_head is None:
                raise ValueError("this model was built without cache_features: it takes images")
            return self.features_head(inputs, training=training)
        return super().call(inputs, training=training, mask=mask)
