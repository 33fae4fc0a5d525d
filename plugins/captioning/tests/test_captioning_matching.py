"""Image-text matching and the scores built on paired embeddings: recall, R-precision, the Frechet
distance, the contrastive loss (one device and two replicas), the matching task end to end, and
text-to-image scored by (and captioning encoded by) a matching run on Flickr8k-layout folder data."""

import json
import math
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kerasapps
from kerasapps.metrics.retrieval import frechet_distance, r_precision, recall_at_k
from kerasapps.testing import check_export, write_scene_images

# Runs in this process (kerasapps.train/run/evaluate): no TensorFlow import per command.
TINY_MATCHING = dict(batch_size=16, image_size=32, cnn_filters=(8, 16), word_dim=8, text_units=8, embedding_dim=8)


# -- recall and R-precision ---------------------------------------------------------------
def test_recall_at_k_by_hand_and_ties_count_against_the_query():
    scores = [[0.9, 0.1, 0.5], [0.8, 0.7, 0.9], [0.2, 0.2, 0.2]]
    relevant = [[True, False, False], [False, True, False], [False, False, True]]
    # Query 0 ranks its item first; query 1 third (0.9 and 0.8 beat 0.7); query 2 ties with both
    # others, which counts as third too.
    assert recall_at_k(scores, relevant, ks=(1, 2, 3)) == {1: pytest.approx(1 / 3), 2: pytest.approx(1 / 3),
                                                           3: 1.0}
    # Any one of several relevant items (an image's five captions) is enough.
    assert recall_at_k([[0.1, 0.9, 0.5]], [[True, False, True]], ks=(1, 2)) == {1: 0.0, 2: 1.0}


def test_r_precision_perfect_and_constructed_cases():
    n = 200
    identity = np.eye(n)
    assert r_precision(identity, identity) == 1.0
    # The first k images' captions point their way; the others' point away (cosine -1 vs 0 for
    # every distractor): exactly k of n rank their caption first, whatever distractors are drawn.
    k = 37
    captions = np.concatenate([identity[:k], -identity[k:]])
    for seed in (0, 1):
        assert r_precision(identity, captions, seed=seed) == pytest.approx(k / n)
    # Cosine, not dot product: scaling a caption changes nothing.
    assert r_precision(identity, captions * 5.0) == pytest.approx(k / n)
    # A distractor scoring the same as the true caption beats it: constant embeddings earn nothing.
    assert r_precision(np.ones((n, 3)), np.ones((n, 3))) == 0.0
    # Every other image's caption is a distractor when there are n - 1 of them.
    near = identity[:10] + 0.1 * np.roll(identity[:10], 1, axis=0)
    captions = identity[:10].copy()
    captions[3] = near[4]  # image 4 now matches image 3's caption exactly; image 3's points elsewhere
    assert r_precision(near, captions, distractors=9) == pytest.approx(0.8)  # images 3 and 4 miss
    with pytest.raises(ValueError, match="99 distractors need at least 100 images"):
        r_precision(np.eye(50), np.eye(50))


def test_r_precision_of_unrelated_embeddings_is_chance():
    rng = np.random.default_rng(3)
    images, captions = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    assert abs(r_precision(images, captions, distractors=9) - 0.1) < 0.025


# -- Frechet distance ---------------------------------------------------------------------
def samples_with(mean, covariance, count=500, seed=0):
    """Samples whose sample mean and covariance are exactly ``mean`` and ``covariance``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, len(mean)))
    x -= x.mean(0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T  # sample covariance I
    return x @ np.linalg.cholesky(covariance).T + mean


def test_frechet_distance_by_hand():
    a = samples_with([0.0, 0.0], np.eye(2))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # Same covariance: the squared distance between the means.
    assert frechet_distance(a, a + [3.0, 4.0]) == pytest.approx(25.0)
    # Diagonal covariances: sum of (sqrt(var_a) - sqrt(var_b))^2.
    b = samples_with([1.0, 0.0], np.diag([4.0, 9.0]), seed=1)
    assert frechet_distance(a, b) == pytest.approx(1.0 + (1 - 2) ** 2 + (1 - 3) ** 2)
    # I against [[2, 1], [1, 2]] (eigenvalues 3 and 1): 2 + 4 - 2 (sqrt(3) + 1).
    c = samples_with([0.0, 0.0], np.array([[2.0, 1.0], [1.0, 2.0]]), seed=2)
    assert frechet_distance(a, c) == pytest.approx(4 - 2 * math.sqrt(3))
    assert frechet_distance(c, a) == pytest.approx(4 - 2 * math.sqrt(3))
    # Fewer samples than dimensions (singular covariances) still give a finite, non-negative figure.
    few = np.random.default_rng(4).normal(size=(5, 32))
    assert 0 <= frechet_distance(few, few + 1.0) == pytest.approx(32.0)
    with pytest.raises(ValueError, match="same dims"):
        frechet_distance(a, np.zeros((10, 3)))


# -- the contrastive loss -------------------------------------------------------------
def test_contrastive_loss_by_hand():
    import tensorflow as tf
    from kerasapps_captioning.models import contrastive_losses

    # Two orthogonal pairs, scale s: each direction's cross-entropy is log(1 + e^-s).
    vectors = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    losses, correct, pairs = contrastive_losses(vectors, vectors, 10.0)
    np.testing.assert_allclose(losses.numpy(), [math.log1p(math.exp(-10.0))] * 2, rtol=0, atol=1e-7)
    assert correct.numpy().tolist() == [True, True] and int(pairs) == 2
    # Swapped texts: every pair is ranked last, the loss is s + log(1 + e^-s).
    losses, correct, _ = contrastive_losses(vectors, tf.reverse(vectors, [0]), 10.0)
    np.testing.assert_allclose(losses.numpy(), [10.0 + math.log1p(math.exp(-10.0))] * 2, rtol=1e-5)
    assert not correct.numpy().any()


TWO_REPLICAS = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from kerasapps_captioning.models import DualEncoder

    def encoder(name, width):
        x = keras.Input((width,))
        return keras.Model(x, keras.layers.UnitNormalization()(keras.layers.Dense(4, name=name + "_dense")(x)))

    def trained(strategy, batch):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            model = DualEncoder(encoder("image", 6), encoder("text", 5), temperature=0.5)
            model.compile(keras.optimizers.SGD(1.0))
            model.optimizer.build(model.trainable_variables)
        data = tf.data.Dataset.from_tensors(batch)
        step = tf.function(lambda b: strategy.run(model.train_step, args=(b,)))
        step(next(iter(strategy.experimental_distribute_dataset(data))))
        # Read in cross-replica context, as the engine logs it: the replicas' shares summed.
        return [v.numpy() for v in model.trainable_variables], float(model.trackers["loss"].result())

    rng = np.random.default_rng(0)
    # 7 pairs: the replicas get 4 and 3, so the offsets of uneven shares are checked too.
    batch = {"image": tf.constant(rng.normal(size=(7, 6)), tf.float32),
             "tokens": tf.constant(rng.normal(size=(7, 5)), tf.float32)}
    one, one_loss = trained(tf.distribute.get_strategy(), batch)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two, two_loss = trained(mirrored, batch)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(one, two))
    print("RESULT", mirrored.num_replicas_in_sync, moved, one_loss, two_loss)
""")


@pytest.mark.slow
def test_two_replicas_take_the_same_step_as_one_device(tmp_path):
    # Each pair's negatives are the whole global batch: the replicas gather each other's embeddings.
    result = subprocess.run([sys.executable, "-c", TWO_REPLICAS], capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    line = next((line for line in result.stdout.splitlines() if line.startswith("RESULT")), None)
    assert line, result.stderr[-3000:]
    replicas, moved, one_loss, two_loss = line.split()[1:]
    assert int(replicas) == 2
    assert float(moved) < 1e-5
    # The logged loss is the global batch's mean either way (each replica's Mean counts its share).
    assert float(two_loss) == pytest.approx(float(one_loss), rel=1e-5)


# -- the task end to end ----------------------------------------------------------------
@pytest.mark.slow
def test_matching_trains_scores_retrieval_and_serves(tmp_path):
    from kerasapps.serving.predict import predict_inputs

    images = write_scene_images(tmp_path / "inputs", count=2)
    texts = ["a big red circle", "a small blue square to the left of a large green cross"]
    run = kerasapps.run("matching", epochs=1, **TINY_MATCHING, train_examples=128, eval_examples=48, samples=0,
                        workdir=tmp_path / "run", export_dir=tmp_path / "saved_models", verbose=0)
    metrics = run.metrics
    assert all(np.isfinite(v) for v in metrics.values() if isinstance(v, float)), metrics
    # check_export: serving_default in a process that imports only tensorflow (never kerasapps), then predict.
    result = check_export(run.export_path, images, out=tmp_path / "predictions", calls=[{"text": texts}],
                          predict_args=["--with", "text=a big red circle"])
    for direction in ("image_to_text", "text_to_image"):
        recalls = [metrics[f"{direction}_recall_at_{k}"] for k in (1, 5, 10)]
        assert 0 <= recalls[0] <= recalls[1] <= recalls[2] <= 1
    assert 0 <= metrics["r_precision"] <= 1 and metrics["r_precision_chance"] == pytest.approx(1 / 48)
    served = result.serving
    assert served["image_embedding"]["shape"] == [2, 8] and served["text_embedding"]["shape"] == [2, 8]
    image_vectors = np.array(served["image_embedding"]["values"])
    text_vectors = np.array(served["text_embedding"]["values"])
    np.testing.assert_allclose(np.linalg.norm(image_vectors, axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(text_vectors, axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(served["score"]["values"], (image_vectors * text_vectors).sum(1), atol=1e-5)
    # predict scores every image against the one --with text; the first image's text is the same.
    assert [p["input"] for p in result.predictions] == [str(i) for i in images]
    assert float(np.ravel(result.predictions[0]["score"])[0]) == pytest.approx(served["score"]["values"][0], abs=1e-3)
    with pytest.raises(kerasapps.UsageError, match=r"takes image_bytes, text \(give all but one with --with NAME=TEXT\)"):
        next(predict_inputs(run.export_path, [str(images[0])], tmp_path / "refused"))  # what `kerasapps predict` runs


def write_caption_folder(root, train=40, dev=8, test=12, size=48):
    """Flickr8k's layout with its split lists: shapes scenes as photos, three captions each."""
    import tensorflow as tf

    from kerasapps.data import shapes

    (root / "Images").mkdir(parents=True)
    rows, names = ["image,caption"], {}
    for split, count in (("train", train), ("dev", dev), ("test", test)):
        names[split] = []
        for i in range(count):
            scene = shapes.generate_scene(i, "train" if split == "train" else "test", seed=len(names),
                                          image_size=size)
            name = f"{split}{i}.jpg"
            (root / "Images" / name).write_bytes(tf.io.encode_jpeg(scene["image"], quality=95).numpy())
            rows += [f'{name},"{caption.capitalize()}."' for caption in scene["captions"][:3]]
            names[split].append(name)
        (root / f"Flickr_8k.{split}Images.txt").write_text("\n".join(names[split]) + "\n")
    (root / "captions.txt").write_text("\n".join(rows) + "\n")
    return root


def check_frozen_matching_text_encoder(tmp_path, dataset, small_gan):
    """text_encoder=matching: the generator is conditioned on the matching run's text encoder,
    frozen, with its vocabulary; the export holds it."""
    with pytest.raises(kerasapps.UsageError, match=r"text_encoder=matching takes the text encoder of a matching "
                                                   r"run: give --set matching_run=RUN"):
        kerasapps.train("text-to-image", dataset=dataset, **small_gan, text_encoder="matching",
                        workdir=tmp_path / "refused", verbose=0)
    run = kerasapps.run("text-to-image", dataset=dataset, **small_gan, matching_run=str(tmp_path / "match"),
                        text_encoder="matching", workdir=tmp_path / "frozen", export_dir=tmp_path / "saved",
                        samples=0, verbose=0)
    match_info = json.loads((tmp_path / "match" / "task_info.json").read_text())
    assert json.loads((tmp_path / "frozen" / "task_info.json").read_text())["vocabulary"] == match_info["vocabulary"]
    from kerasapps.training.transfer import read_trained_run

    matcher = read_trained_run(tmp_path / "match", task="matching").build_model()
    trained = kerasapps.evaluate("text-to-image", workdir=tmp_path / "frozen", verbose=0).model
    # Frozen: after training, the GAN's text encoder is still the matching run's, weight for weight.
    assert trained.text_encoder.trainable is False and trained.text_encoder.input.shape[-1] == 12
    expected = matcher.text_encoder.get_weights()
    assert len(expected) > 0 and len(trained.text_encoder.get_weights()) == len(expected)
    for got, want in zip(trained.text_encoder.get_weights(), expected):
        np.testing.assert_array_equal(got, want)
    assert trained.discriminator.input[1].shape[-1] == 8  # the matching embedding's size (embedding_dim)
    result = check_export(run.export_path, ["a big red circle", "a small blue square"], out=tmp_path / "served",
                          calls=[{"seed": [3]}])
    assert [png["image_shape"] for png in result.serving["png_bytes"]["values"]] == [[32, 32, 3]] * 2


@pytest.mark.slow
def check_captioning_on_the_matching_image_encoder(tmp_path, dataset):
    """encoder=matching: the captioner's features are the matching run's image encoder below its
    projection, on the photos resized to the size it was trained on (32; the captioner reads 48)."""
    import keras
    import tensorflow as tf

    from kerasapps.training.transfer import read_trained_run

    kerasapps.train("captioning", dataset=dataset, epochs=1, batch_size=8, image_size=48, encoder="matching",
                    encoder_weights=str(tmp_path / "match"), freeze_encoder=True, cache_features=True,
                    normalize_features=True, decoder="merge", embed_dim=8, lstm_units=8, max_caption_length=8,
                    beam_size=1, workdir=tmp_path / "captioner", verbose=0)
    matcher = read_trained_run(tmp_path / "match", task="matching").build_model()
    below_projection = keras.Model(matcher.image_encoder.input,
                                   matcher.image_encoder.get_layer("image_projection").input)
    captioner = read_trained_run(tmp_path / "captioner", task="captioning").build_model()
    images = tf.random.uniform([2, 48, 48, 3], 0, 255, seed=2)
    np.testing.assert_allclose(captioner.get_layer("encoder").get_layer("image_features")(images),
                               below_projection(tf.image.resize(images, (32, 32))), rtol=1e-5, atol=1e-5)


def test_text_to_image_scored_by_a_matching_run_on_folder_data(tmp_path, capsys):
    data = write_caption_folder(tmp_path / "flickr")
    dataset = f"folder:{data}"
    kerasapps.train("matching", dataset=dataset, epochs=1, **TINY_MATCHING, max_caption_length=12,
                    workdir=tmp_path / "match", verbose=0)
    small_gan = dict(epochs=1, batch_size=16, image_size=32, generator_filters=16, lstm_units=8, embed_dim=8, z_dim=8,
                     cond_dim=8)
    check_frozen_matching_text_encoder(tmp_path, dataset, small_gan)
    check_captioning_on_the_matching_image_encoder(tmp_path, dataset)
    run = tmp_path / "t2i"
    kerasapps.train("text-to-image", dataset=dataset, **small_gan, matching_run=str(tmp_path / "match"), workdir=run,
                    verbose=0)
    info = json.loads((run / "task_info.json").read_text())
    assert info["matching_run"]["task"] == "matching" and info["matching_run"]["info"]["image_size"] == 32
    # Evaluation rebuilds the matching model from the record: the run's JSON files may go.
    for name in ("config.json", "task_info.json"):
        (tmp_path / "match" / name).unlink()
    kerasapps.evaluate("text-to-image", workdir=run, verbose=0)
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert metrics["r_precision_chance"] == pytest.approx(1 / 12)  # the 12 test photos, 11 distractors each
    for name in ("r_precision", "real_r_precision", "text_blind_r_precision"):
        assert 0 <= metrics[name] <= 1, name
    assert metrics["frechet_matching_distance"] >= 0 and metrics["frechet_matching_distance_real"] >= 0
    assert "semantic_accuracy" not in metrics  # the shapes judge reads no folder data
    # A copy without a test list scores dev as the test split: real-vs-real compares its halves, not
    # the split with itself (which gave 0).
    (data / "Flickr_8k.testImages.txt").unlink()
    kerasapps.evaluate("text-to-image", workdir=run, verbose=0)
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert metrics["r_precision_chance"] == pytest.approx(1 / 8)  # the 8 dev photos
    assert np.isfinite(metrics["frechet_matching_distance_real"]) and metrics["frechet_matching_distance_real"] > 0
    assert np.isfinite(metrics["frechet_matching_distance"]) and metrics["frechet_matching_distance"] > 0
    # Without the weights, evaluation says so and leaves the matching metrics out.
    shutil.rmtree(tmp_path / "match")
    capsys.readouterr()
    kerasapps.evaluate("text-to-image", workdir=run, verbose=0)
    assert "best.weights.h5 is gone: no matching-model metrics" in capsys.readouterr().err
    assert "r_precision" not in json.loads((run / "metrics.json").read_text())["metrics"]
    with pytest.raises(kerasapps.UsageError, match="expected a kerasapps matching run"):
        kerasapps.train("text-to-image", dataset=dataset, **small_gan, matching_run=str(tmp_path / "match"),
                        workdir=tmp_path / "t2", verbose=0)

