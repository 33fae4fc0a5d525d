"""Width compression: the spectral selection and the closed-form re-fit on constructed features
(NumPy only), the weight surgery on a tiny Keras model, and ``kerasapps compress``'s refusals on the
fake task (which names no prunable layers)."""

import itertools

import numpy as np
import pytest

from kerasapps.compression.spectral import (covariance_of, kept_width, l1_selection, random_selection,
                                            reconstruction_error, reconstruction_map, refit_consumer_kernel,
                                            selection_map, spectral_selection)


def dependent_features(samples=4000, seed=0):
    """8 channels: 3 independent ones (at shuffled positions) and 5 exact linear combinations of
    them with small weights. Returns (features [samples, 8], the 3 independent channels)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(samples, 3)) * np.array([3.0, 2.0, 1.5])
    mixed = base @ rng.uniform(-0.3, 0.3, size=(3, 5))
    order = rng.permutation(8)
    features = np.concatenate([base, mixed], axis=1)[:, np.argsort(order)]
    return features, np.sort(order[:3])


def test_spectral_selection_keeps_the_channels_the_others_are_combinations_of():
    features, independent = dependent_features()
    sigma = covariance_of(features)
    # Any 3 channels spanning the same space reconstruct it exactly; a small ridge (the paper's lambda)
    # breaks that tie towards the independent channels, whose larger variance the ridge shrinks least.
    kept = spectral_selection(sigma, 3, ridge=1e-8)
    assert kept.tolist() == independent.tolist()
    A = reconstruction_map(sigma, kept, ridge=1e-8)
    reconstructed = features[:, kept] @ A.T
    np.testing.assert_allclose(reconstructed, features, rtol=0, atol=1e-6 * np.abs(features).max())
    exact = features[:, kept] @ reconstruction_map(sigma, kept, ridge=0.0).T
    np.testing.assert_allclose(exact, features, rtol=0, atol=1e-12 * np.abs(features).max())
    assert abs(reconstruction_error(sigma, kept, ridge=0.0)) < 1e-12 * np.trace(sigma)
    wrong = sorted(set(range(8)) - set(independent.tolist()))[:3]  # three of the combinations cannot
    assert reconstruction_error(sigma, wrong, ridge=0.0) > 1e-3 * np.trace(sigma) or np.linalg.matrix_rank(
        features[:, wrong]) == 3
    # fewer channels than the rank cannot reconstruct it; greedy is not exhaustive search, but its pair
    # comes within 5% of the best of all 28 here
    pair = spectral_selection(sigma, 2, ridge=0.0)
    errors = {p: reconstruction_error(sigma, p, ridge=0.0) for p in itertools.combinations(range(8), 2)}
    assert reconstruction_error(sigma, pair, ridge=0.0) <= 1.05 * min(errors.values())
    assert min(errors.values()) > 1e-3 * np.trace(sigma)


def test_greedy_step_gain_is_the_drop_of_the_criterion():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    sigma = covariance_of(features)
    weighting = (lambda w: w @ w.T)(rng.normal(size=(6, 4)))
    for k in range(1, 6):
        kept = spectral_selection(sigma, k, ridge=1e-3, weighting=weighting)
        previous = spectral_selection(sigma, k - 1, ridge=1e-3, weighting=weighting) if k > 1 else []
        assert set(previous) <= set(kept)  # greedy: each step adds one channel
        best = min(reconstruction_error(sigma, sorted(set(previous) | {j}), 1e-3, weighting)
                   for j in set(range(6)) - set(previous))
        assert reconstruction_error(sigma, kept, 1e-3, weighting) == pytest.approx(best, rel=1e-9)


def test_a_tied_group_at_ridge_zero_keeps_channels_one_layer_sees_as_duplicates():
    """A stream read by two layers: channels 0 and 1 are one signal where the first reads them and
    independent where the second does. The joint choice keeps both (the second needs them); the
    first layer's re-fit then solves a singular system, which at ridge 0 is the least-squares
    solution of least norm, not an error."""
    from kerasapps.compression.spectral import joint_spectral_selection

    rng = np.random.default_rng(4)
    base = rng.normal(size=(2000, 4)) * np.array([3.0, 2.5, 0.1, 0.1])
    first = np.concatenate([base[:, :1], base[:, :1], base[:, 2:]], axis=1)   # channel 1 repeats channel 0
    second = base * np.array([1.0, 1.0, 0.01, 0.01])
    sigmas = [covariance_of(first), covariance_of(second)]
    kept = joint_spectral_selection(sigmas, 2, ridge=0.0)
    assert kept.tolist() == [0, 1]
    A = reconstruction_map(sigmas[0], kept, ridge=0.0)
    assert np.isfinite(A).all() and np.abs(A).max() < 10
    np.testing.assert_allclose(first[:, kept] @ A.T[:, :2], first[:, :2], atol=1e-9)
    # the criterion is what least squares leaves of the first layer's channels (the weak ones, mostly)
    residual = first - first[:, kept] @ np.linalg.lstsq(first[:, kept], first, rcond=None)[0]
    assert reconstruction_error(sigmas[0], kept, ridge=0.0) == pytest.approx(
        (residual ** 2).sum() / len(first), rel=1e-6)


@pytest.mark.parametrize("ridge", [0.0, 1e-2])
def test_closed_form_refit_is_the_least_squares_solve(ridge):
    rng = np.random.default_rng(2)
    features = np.maximum(rng.normal(size=(300, 7)) @ rng.normal(size=(7, 7)), 0)  # ReLU-like
    sigma = covariance_of(features)
    kept = np.array([0, 2, 5])
    A = reconstruction_map(sigma, kept, ridge)
    # min ||features - features_J X||^2 + n * lambda ||X||^2: lstsq with sqrt(n lambda) I rows appended
    lam = ridge * np.mean(np.diag(sigma)) * len(features)
    design = np.vstack([features[:, kept], np.sqrt(lam) * np.eye(3)])
    target = np.vstack([features, np.zeros((3, 7))])
    X = np.linalg.lstsq(design, target, rcond=None)[0]  # [3, 7] = A^T
    np.testing.assert_allclose(A, X.T, rtol=1e-8, atol=1e-10)
    # folded into a Dense consumer, the narrow layer computes the least-squares output
    W = rng.normal(size=(7, 4))
    np.testing.assert_allclose(features[:, kept] @ refit_consumer_kernel(W, A), features[:, kept] @ X @ W,
                               rtol=1e-8, atol=1e-8)


def test_refit_of_conv_and_flattened_dense_kernels_is_per_tap_and_per_position():
    rng = np.random.default_rng(3)
    mapping = rng.normal(size=(4, 2))
    conv = rng.normal(size=(3, 3, 4, 5))
    narrow = refit_consumer_kernel(conv, mapping)
    assert narrow.shape == (3, 3, 2, 5)
    np.testing.assert_allclose(narrow[1, 2], mapping.T @ conv[1, 2])
    flat = rng.normal(size=(2 * 2 * 4, 5))  # Dense after Flatten of a [2, 2, 4] map
    narrow = refit_consumer_kernel(flat, mapping)
    assert narrow.shape == (2 * 2 * 2, 5)
    np.testing.assert_allclose(narrow.reshape(4, 2, 5)[3], mapping.T @ flat.reshape(4, 4, 5)[3])
    np.testing.assert_array_equal(refit_consumer_kernel(conv, selection_map(4, [1, 3])), conv[:, :, [1, 3]])


def test_baseline_selections_and_widths():
    kernel = np.zeros((3, 3, 2, 5))
    kernel[..., 3] = 1.0
    kernel[..., 1] = -0.5
    kernel[0, 0, 0, 4] = 0.1
    assert l1_selection(kernel, 2).tolist() == [1, 3]
    drawn = random_selection(10, 4, seed=3)
    assert len(set(drawn.tolist())) == 4 and drawn.tolist() == sorted(drawn.tolist())
    assert random_selection(10, 4, seed=3).tolist() == drawn.tolist()
    assert [kept_width(84, keep) for keep in (1.0, 0.75, 0.5, 0.25, 0.001)] == [84, 63, 42, 21, 1]
    np.testing.assert_array_equal(reconstruction_map(np.eye(3), [0, 1, 2]), np.eye(3))


# -- the weight surgery on a tiny Keras model ---------------------------------------
def tiny_chain(filters=(4, 6), units=8, bn=False):
    """16x16 -> conv -> [BN] -> relu -> pool -> conv -> relu -> pool (2x2) -> flatten -> dense -> relu -> dense(3)."""
    import keras

    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(filters[0], 3, name="conv1")(inputs)
    if bn:
        x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(filters[1], 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(units, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, outputs)


def tiny_plan(bn=False):
    from kerasapps.compression.plan import CompressionPlan, PrunableGroup

    return CompressionPlan((PrunableGroup("conv1", "conv2", channelwise=("bn1",) if bn else ()),
                            PrunableGroup("conv2", "fc1", features="pool2"), PrunableGroup("fc1", "logits")),
                           lambda widths: widths)


def duplicate_second_half(layer):
    """Make the second half of ``layer``'s filters copies of the first half (its outputs too)."""
    kernel, bias = layer.get_weights()
    half = kernel.shape[-1] // 2
    kernel[..., half:], bias[half:] = kernel[..., :half], bias[:half]
    layer.set_weights([kernel, bias])


@pytest.mark.parametrize("bn", [False, True])
def test_spectral_compression_of_duplicated_filters_keeps_the_network_function(bn):
    import keras
    import tensorflow as tf

    from kerasapps.compression.surgery import (check_plan, choose_channels, count_multiply_adds,
                                               measure_feature_covariances, narrow_weights, transfer_weights)

    keras.utils.set_random_seed(0)
    model = tiny_chain(bn=bn)
    for name in ("conv1", "conv2", "fc1"):
        duplicate_second_half(model.get_layer(name))
    if bn:  # per-channel statistics of the copies equal too, and not the identity
        gamma, beta, mean, var = model.get_layer("bn1").get_weights()
        model.get_layer("bn1").set_weights([np.tile(gamma[:2] + 0.5, 2), np.tile(beta[:2] + 0.1, 2),
                                            np.tile(mean[:2] + 0.2, 2), np.tile(var[:2] + 0.3, 2)])
    plan = tiny_plan(bn)
    check_plan(model, plan)
    images = np.random.default_rng(0).uniform(0, 1, (64, 16, 16, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(64))).batch(16)
    covariances = measure_feature_covariances(model, plan, data, samples=40)
    assert covariances["conv2"].samples == 40 * 2 * 2 and covariances["fc1"].samples == 40
    choices = choose_channels(model, plan, covariances, keep=0.5, method="spectral", ridge=1e-6)
    assert [choices[g].width for g in ("conv1", "conv2", "fc1")] == [2, 3, 4]
    for g in ("conv1", "conv2", "fc1"):  # one of each pair of copies (of each live pair: a dead ReLU's are 0)
        assert choices[g].relative_error < 1e-5
    narrow = tiny_chain(filters=(2, 3), units=4, bn=bn)
    transfer_weights(model, narrow, narrow_weights(model, plan, choices))
    np.testing.assert_allclose(narrow.predict_on_batch(images), model.predict_on_batch(images), rtol=1e-4,
                               atol=1e-4)
    assert count_multiply_adds(model) == 14 * 14 * 9 * 4 + 5 * 5 * 9 * 4 * 6 + 2 * 2 * 6 * 8 + 8 * 3
    assert count_multiply_adds(narrow) == 14 * 14 * 9 * 2 + 5 * 5 * 9 * 2 * 3 + 2 * 2 * 3 * 4 + 4 * 3
    # the baselines drop the copies' contribution instead: the function changes
    for method in ("l1", "random"):
        choices = choose_channels(model, plan, covariances, keep=0.5, method=method)
        transfer_weights(model, narrow, narrow_weights(model, plan, choices))
        assert np.abs(narrow.predict_on_batch(images) - model.predict_on_batch(images)).max() > 1e-3
    with pytest.raises(ValueError, match="layer 'conv1' of the narrow model takes weights shaped"):
        transfer_weights(model, tiny_chain(filters=(3, 3), units=4, bn=bn), narrow_weights(model, plan, choices))


def test_recalibration_sets_batch_normalization_statistics_to_the_average_of_the_batches():
    import keras
    import tensorflow as tf

    from kerasapps.compression.surgery import recalibrate_batch_normalization

    keras.utils.set_random_seed(0)
    model = tiny_chain(bn=True)
    images = np.random.default_rng(0).uniform(0, 1, (64, 16, 16, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(64))).batch(16)
    assert recalibrate_batch_normalization(model, data, samples=40) == 1
    conv1 = keras.Model(model.inputs, model.get_layer("conv1").output)
    batches = [conv1.predict_on_batch(images[start:end]) for start, end in ((0, 16), (16, 32), (32, 40))]
    bn = model.get_layer("bn1")
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([b.mean(axis=(0, 1, 2)) for b in batches], axis=0),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([b.var(axis=(0, 1, 2)) for b in batches], axis=0),
                               rtol=1e-4, atol=1e-6)
    assert bn.momentum == 0.99


# -- kerasapps compress refuses in one line and writes nothing -----------------------
def invoke(*args):
    from click.testing import CliRunner

    from kerasapps.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def refused(*args) -> str:
    result = invoke(*args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
    return lines[0]


@pytest.mark.slow
def test_compress_refuses_bad_inputs_in_one_line_and_writes_nothing(tmp_path):
    import sys

    import kerasapps
    from tests.conftest import FAKE, ROOT

    sys.path.insert(0, str(ROOT / "tests" / "plugins"))
    kerasapps.train("fake", plugins=["kerasapps_fake"], workdir=tmp_path / "run", verbose=0, epochs=1,
                    batch_size=32, train_examples=64, eval_examples=32)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    compress = [*FAKE, "compress", "fake", "--workdir", tmp_path / "run", "--out", tmp_path / "out"]
    assert "--keep 0: keep a fraction of the channels, 0 < keep <= 1" in refused(*compress, "--keep", "0")
    assert "--keep 1.5: keep a fraction" in refused(*compress, "--keep", "1.5")
    assert "--keep: expected a fraction" in refused(*compress, "--keep", "half")
    assert "--method magnitude: choose one of spectral, l1, random" in refused(*compress, "--keep", "0.5",
                                                                             "--method", "magnitude")
    assert "--fine-tune-epochs -1" in refused(*compress, "--keep", "0.5", "--fine-tune-epochs", "-1")
    assert "compress runs in one process" in refused(*compress, "--keep", "0.5", "--strategy", "multi-worker")
    missing = tmp_path / "no_run"
    assert "holds no trained fake run" in refused(*FAKE, "compress", "fake", "--workdir", missing, "--keep", "0.5")
    assert ("task 'fake' cannot be compressed: it names no prunable layer groups"
            in refused(*compress, "--keep", "0.5"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"task": "segmentation", "params": {}}')
    assert "is for task 'segmentation', not 'fake'" in refused(*FAKE, "compress", "fake", "--workdir",
                                                               tmp_path / "other", "--keep", "0.5")
    (tmp_path / "other" / "config.json").unlink()
    (tmp_path / "other").rmdir()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_multiply_adds_of_a_model_for_any_size_are_counted_at_the_size_given():
    import keras

    from kerasapps.compression.surgery import count_multiply_adds

    def fully_convolutional(size):
        inputs = keras.Input((size, size, 3))
        x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
        x = keras.layers.MaxPooling2D(name="pool")(x)
        inner_in = keras.Input((None, None, 4))  # a nested model: its layers are counted too
        inner = keras.Model(inner_in, keras.layers.Conv2D(5, 3, padding="valid", name="c2")(inner_in), name="inner")
        sequential = keras.Sequential([keras.Input((None, None, 5)), keras.layers.Conv2D(6, 1, name="c3")], name="seq")
        return keras.Model(inputs, keras.layers.Dense(2, name="head")(sequential(inner(x))))

    expected = 24 * 24 * 9 * 3 * 4 + 10 * 10 * 9 * 4 * 5 + 10 * 10 * 5 * 6 + 10 * 10 * 6 * 2
    assert count_multiply_adds(fully_convolutional(24)) == expected
    any_size = fully_convolutional(None)
    assert count_multiply_adds(any_size, example_shape=(24, 24, 3)) == expected
    assert count_multiply_adds(any_size, example_shape=(48, 48, 3)) > 4 * expected - 1
    with pytest.raises(ValueError, match="takes inputs of any size"):
        count_multiply_adds(any_size)
    assert len(any_size.get_layer("c1")._inbound_nodes) == 1  # counting built no new graph
