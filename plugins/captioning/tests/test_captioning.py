"""The captioning task: vocabulary, data loaders, decoding on a trained model, export and serving."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import kerasapps
from kerasapps.testing import run_cli as cli
from kerasapps.api import UNK, UsageError
from kerasapps.testing import check_export
from kerasapps.training.transfer import read_trained_run

tf = pytest.importorskip("tensorflow")

# A constant rate: decayed over these 24 steps, the model still says nothing, and the export
# tests need words to compare.
TINY = ["--epochs", "2", "--batch-size", "32", "--set", "train_examples=400", "--set", "eval_examples=48",
        "--set", "image_size=32", "--set", "cnn_filters=16,32,32", "--set", "lstm_units=64", "--set", "embed_dim=32",
        "--set", "lr_schedule=constant"]
# The same settings for runs in this process (kerasapps.train/run/evaluate/export).
SMALL = dict(epochs=2, batch_size=32, train_examples=400, eval_examples=48, image_size=32, cnn_filters=(16, 32, 32),
             lstm_units=64, embed_dim=32, lr_schedule="constant")


def test_vocabulary_round_trip_and_min_count():
    from kerasapps.data.text import END_ID, START_ID, UNK_ID, Vocabulary, build_vocabulary

    words = build_vocabulary(["A red circle.", "a red square", "a rare, odd thing"], min_count=2)
    assert words == ["<start>", "<end>", "a", "red"]
    vocab = Vocabulary(words, max_length=5)
    ids = vocab.encode(tf.constant(["a red square", "RED!"])).numpy()
    assert ids.tolist() == [[4, 5, 1, 0, 0], [5, 0, 0, 0, 0]]  # square is [UNK] (id 1)
    decoded = vocab.decode(tf.constant([[START_ID, 4, 5, 1, END_ID, 4], [5, END_ID, 5, 5, 0, 0]])).numpy()
    assert decoded.tolist() == [b"a red [UNK]", b"red"]
    # One spelling of the unknown word: kerasapps.api's, TextVectorization's and the decoded text's.
    assert vocab.vectorizer.get_vocabulary()[UNK_ID] == UNK == "[UNK]"


def write_flickr_folder(root, images=12, bad_row=None, size=40):
    from kerasapps.data import shapes

    (root / "Images").mkdir(parents=True)
    rows = ["image,caption"]
    for i in range(images):
        scene = shapes.generate_scene(i, "train", image_size=size)
        name = f"img{i}.png"
        (root / "Images" / name).write_bytes(tf.io.encode_png(scene["image"]).numpy())
        rows += [f"{name},{caption.capitalize()} ." for caption in scene["captions"][:3]]
    if bad_row:
        rows.insert(3, bad_row)
    (root / "captions.txt").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.slow
def test_folder_loader_and_its_errors(tmp_path, capsys):
    from kerasapps.data.sources import DatasetSource
    from kerasapps_captioning.task import CaptioningTask

    # One run on a folder with a bad row, skipped: the loader, the vocabulary and skip_bad_examples.
    folder = write_flickr_folder(tmp_path / "empty", images=30, bad_row="img0.png,")
    kerasapps.train("captioning", dataset=f"folder:{folder}", **{**SMALL, "epochs": 1}, skip_bad_examples=True,
                    workdir=tmp_path / "run", verbose=0)
    assert "skipped 1 bad rows" in capsys.readouterr().err
    info = json.loads((tmp_path / "run" / "task_info.json").read_text())
    assert "circle" in info["vocabulary"] or "square" in info["vocabulary"], info["vocabulary"]
    # Without skipping, the same folder is one error (the command line's one line): how every loader
    # error reaches the user.
    with pytest.raises(UsageError, match="row 4: empty caption"):
        kerasapps.train("captioning", dataset=f"folder:{folder}", workdir=tmp_path / "r2", verbose=0)

    def load(root):
        source = DatasetSource(f"folder:{root}", "folder", str(root))
        return CaptioningTask(CaptioningTask.Config(image_size=32), source).build_datasets()

    with pytest.raises(UsageError, match="captions.txt, row 4: image 'nowhere.png' not found"):
        load(write_flickr_folder(tmp_path / "missing", bad_row="nowhere.png,a caption"))
    corrupt = write_flickr_folder(tmp_path / "corrupt")
    (corrupt / "Images" / "img1.png").write_bytes(b"not a png")
    with pytest.raises(UsageError, match="img1.png is not a PNG"):
        load(corrupt)


def test_mocked_tfds_coco_captions_builds_batches():
    tfds = pytest.importorskip("tensorflow_datasets")
    from kerasapps.data.sources import DatasetSource
    from kerasapps_captioning.task import CaptioningTask

    config = CaptioningTask.Config(batch_size=4, image_size=32, min_word_count=1)
    task = CaptioningTask(config, DatasetSource("tfds:coco_captions", "tfds", "coco_captions"))
    with tfds.testing.mock_data(num_examples=8):
        datasets = task.build_datasets()
        inputs, targets, weights = next(iter(datasets["train"]))
    steps = config.max_caption_length + 1
    assert inputs["image"].shape[1:] == (32, 32, 3)
    assert inputs["tokens"].shape[1:] == (config.captions_per_image, steps)
    tokens, targets, weights = (t.numpy().reshape(-1, steps) for t in (inputs["tokens"], targets, weights))
    real = weights.sum(axis=1) > 0
    assert real.any()
    assert np.all(tokens[real, 0] == 2)  # <start>
    lengths = weights[real].sum(axis=1).astype(int)
    assert np.all(targets[real][np.arange(len(lengths)), lengths - 1] == 3)  # <end> at the last weighted step
    assert len(task.info["vocabulary"]) > 2


def _decoded(task, tokens):
    """Caption strings of one image's teacher-forcing inputs [K, T + 1] (the <start> dropped)."""
    return [t.decode() for t in task.vocabulary.decode(tokens[:, 1:]).numpy()]


@pytest.mark.parametrize("per_image", [3, 8])
def test_each_image_trains_on_distinct_references_of_its_own(per_image):
    from kerasapps.data.sources import DatasetSource
    from kerasapps.data import shapes
    from kerasapps.data.text import standardize_texts
    from kerasapps_captioning.task import CaptioningTask

    config = CaptioningTask.Config(batch_size=8, image_size=32, train_examples=16, eval_examples=8,
                                   captions_per_image=per_image, min_word_count=1)
    source = DatasetSource("shapes", "registered", "shapes", factory="kerasapps.data.shapes")
    task = CaptioningTask(config, source)
    datasets = task.build_datasets()
    scenes = {split: shapes.generate_arrays(split, 16 if split == "train" else 8, seed=0, image_size=32)
              for split in ("train", "validation")}
    for split in ("train", "validation"):
        inputs, _, weights = next(iter(datasets[split]))
        assert inputs["tokens"].shape[1] == per_image
        for image, tokens, weight in zip(inputs["image"].numpy(), inputs["tokens"].numpy(), weights.numpy()):
            # Which scene this is: shuffling moves images, never splits them from their captions.
            index = int(np.flatnonzero((scenes[split]["image"] == image.astype(np.uint8)).all(axis=(1, 2, 3)))[0])
            known = set(task.info["vocabulary"])  # built on the training captions only
            references = [" ".join(w if w in known else UNK for w in r.split())
                          for r in standardize_texts(scenes[split]["captions"][index])]
            real = weight.sum(axis=1) > 0
            assert real.sum() == min(per_image, len(references))  # slots beyond the references weigh nothing
            chosen = _decoded(task, tokens[real])
            assert len(set(chosen)) == len(chosen) and set(chosen) <= set(references)
            if split == "validation":  # evaluation is deterministic: the first references
                assert chosen == references[:per_image]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("captioning")
    result = cli("run", "captioning", *TINY, cwd=root, check=0)
    return root, result


@pytest.mark.slow
def test_run_reports_bleu_and_exports(trained):
    root, result = trained
    assert "bleu4" in result.stdout and "predicted:" in result.stdout
    metrics = json.loads((root / "runs/captioning/metrics.json").read_text())["metrics"]
    assert set(metrics) >= {"bleu1", "bleu2", "bleu3", "bleu4", "exact_match", "distinct_captions", "loss",
                            "token_accuracy"}
    assert 1 <= metrics["distinct_captions"] <= 48  # eval_examples
    assert 0 <= metrics["bleu4"] <= metrics["bleu1"] <= 1
    assert (root / "saved_models/captioning/1/saved_model.pb").exists()


@pytest.mark.slow
def test_export_of_weights_that_do_not_fit_the_recorded_config_is_one_message(trained, tmp_path):
    root, _ = trained
    workdir = tmp_path / "run"
    shutil.copytree(root / "runs/captioning", workdir)
    saved = json.loads((workdir / "config.json").read_text())
    # A config.json from before an option existed: the option takes its (different) default.
    del saved["params"]["lstm_units"]
    (workdir / "config.json").write_text(json.dumps(saved))
    with pytest.raises(UsageError, match="do not fit the captioning model") as refused:
        kerasapps.export("captioning", workdir=workdir, export_dir=tmp_path / "out", verbose=0)
    assert "does not record lstm_units=256" in str(refused.value)
    kerasapps.export("captioning", workdir=workdir, export_dir=tmp_path / "out", lstm_units=64, verbose=0)
    assert (tmp_path / "out/captioning/1/saved_model.pb").exists()


def trained_task(root):
    from kerasapps.data.sources import DatasetSource
    from kerasapps.registry import discover
    from kerasapps.training.runner import RunOptions, resolve_config

    _, resolved, config = resolve_config(discover(), RunOptions(task="captioning", config_file=str(
        root / "runs/captioning/config.json")))
    from kerasapps_captioning.task import CaptioningTask

    info = json.loads((root / "runs/captioning/task_info.json").read_text())
    task = CaptioningTask(config, DatasetSource("shapes", "registered", "shapes", factory="kerasapps.data.shapes"),
                          info=info)
    model = task.build_model()
    model.load_weights(str(root / "runs/captioning/best.weights.h5"))
    return task, model


def test_cosine_learning_rate_decays_over_the_whole_run_and_constant_stays():
    from kerasapps_captioning.task import CaptioningConfig, CaptioningTask

    info = {"vocabulary": ["a", "red", "circle"], "image_size": 32, "train_images": 400}
    small = dict(image_size=32, cnn_filters=(8,), lstm_units=8, embed_dim=8, epochs=3, batch_size=32)
    steps = 3 * (400 // 32)

    def rate_at(config, step):
        optimizer = CaptioningTask(config, info=info).build_model().optimizer
        optimizer.iterations.assign(step)  # the schedule reads the step count, as after a resume
        return float(optimizer.learning_rate)

    cosine = CaptioningConfig(lr_schedule="cosine", **small)
    assert rate_at(cosine, 0) == pytest.approx(2e-3)
    assert rate_at(cosine, steps // 2) == pytest.approx(2e-3 * (0.05 + 0.95 * 0.5), rel=1e-3)
    assert rate_at(cosine, steps) == pytest.approx(2e-3 * 0.05)
    assert rate_at(CaptioningConfig(lr_schedule="constant", **small), steps) == pytest.approx(2e-3)


def test_decoder_starts_with_the_configured_forget_bias_and_the_encoder_pools_as_configured():
    from kerasapps_captioning.task import CaptioningConfig, CaptioningTask

    info = {"vocabulary": ["a", "red", "circle"], "image_size": 32}
    small = dict(image_size=32, cnn_filters=(8, 8), lstm_units=4, embed_dim=8)
    for pooling, forget_bias in (("max", 3.0), ("flatten", 1.0)):
        model = CaptioningTask(CaptioningConfig(cnn_pooling=pooling, forget_bias=forget_bias, **small),
                               info=info).build_model()
        bias = model.get_layer("lstm1").cell.bias.numpy()
        np.testing.assert_array_equal(bias[4:8], [forget_bias] * 4)
        np.testing.assert_array_equal(np.delete(bias, range(4, 8)), 0)
        pooled = model.get_layer("encoder").get_layer("pool2").output.shape[1:]  # 8 x 8 x 8
        image_input = model.get_layer("encoder").get_layer("image_embedding").input.shape[-1]
        assert image_input == (pooled[-1] if pooling == "max" else int(np.prod(pooled)))


@pytest.mark.slow
def test_beam_one_is_greedy_and_wider_beams_score_no_worse(trained):
    from kerasapps.data import shapes

    root, _ = trained
    task, model = trained_task(root)
    images = tf.constant(shapes.generate_arrays("test", 24, seed=5, image_size=32)["image"], tf.float32)
    greedy, greedy_log_prob = task.caption_function(model, beam_size=1)(images)
    beam1, beam1_log_prob = task.caption_function(model, beam_size=1, alpha=0.0, use_beam=True)(images)
    np.testing.assert_array_equal(beam1.numpy(), greedy.numpy())
    np.testing.assert_allclose(beam1_log_prob.numpy(), greedy_log_prob.numpy(), rtol=1e-4, atol=1e-4)
    for width in (3, 5):
        _, log_prob = task.caption_function(model, beam_size=width, alpha=0.0)(images)
        assert np.all(log_prob.numpy() >= greedy_log_prob.numpy() - 1e-4), width


@pytest.mark.slow
def test_saved_model_captions_png_with_only_tensorflow_and_saved_model_cli(trained, tmp_path):
    from kerasapps.data import shapes

    root, _ = trained
    export = root / "saved_models/captioning/1"
    png = tmp_path / "scene.png"
    png.write_bytes(tf.io.encode_png(shapes.generate_scene(3, "test", image_size=50)["image"]).numpy())
    # check_export: serving_default in a process that imports only tensorflow (never kerasapps), then predict.
    served = check_export(export, [png], out=tmp_path / "preds")
    caption = served.serving["caption"]["values"][0]
    assert caption and set(caption) <= set("abcdefghijklmnopqrstuvwxyz <>"), caption
    assert served.predictions[0]["caption"] == caption
    npy = tmp_path / "in.npy"
    np.save(npy, np.array([png.read_bytes()], dtype=object), allow_pickle=True)
    cli_out = subprocess.run(["saved_model_cli", "run", "--dir", str(export), "--tag_set", "serve",
                              "--signature_def", "serving_default", "--inputs", f"image_bytes={npy}"],
                             capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert cli_out.returncode == 0, cli_out.stderr
    assert "Result for output key caption" in cli_out.stdout and caption in cli_out.stdout


FROZEN = dict(encoder="mobilenet_v2", freeze_encoder=True, image_size=32, batch_size=8, train_examples=16,
              eval_examples=8, embed_dim=16, lstm_units=16, min_word_count=1)


MERGE = dict(decoder="merge", normalize_features=True)


@pytest.mark.parametrize("decoder", [{}, MERGE], ids=["show_and_tell", "merge"])
def test_cached_features_are_the_backbones_and_give_the_same_logits_as_images(decoder):
    from kerasapps.data.sources import DatasetSource
    from kerasapps_captioning.models import embed_features
    from kerasapps_captioning.task import CaptioningTask

    source = DatasetSource("shapes", "registered", "shapes", factory="kerasapps.data.shapes")
    cached = CaptioningTask(CaptioningTask.Config(cache_features=True, **FROZEN, **decoder), source)
    plain = CaptioningTask(CaptioningTask.Config(**FROZEN, **decoder), source)
    cached_data, plain_data = cached.build_datasets(), plain.build_datasets()
    model = cached.build_model()
    backbone = model.get_layer("encoder").get_layer("image_features")
    assert backbone.trainable_weights == [] and backbone.weights  # frozen: training never moves it
    assert not {id(w) for w in backbone.weights} & {id(w) for w in model.trainable_weights}
    for _ in range(2):  # whole passes: the first fills the cache, the second reads it
        features_in, targets, _ = list(cached_data["validation"])[0]
        images_in, plain_targets, _ = list(plain_data["validation"])[0]
        assert set(features_in) == {"features", "tokens"} and set(images_in) == {"image", "tokens"}
        np.testing.assert_array_equal(features_in["tokens"], images_in["tokens"])
        np.testing.assert_array_equal(targets, plain_targets)
        # A randomly initialised backbone's features are tiny (about 1e-13) and spread over orders of
        # magnitude: compare relatively to the largest, so values near zero do not decide the test.
        expected = backbone(images_in["image"], training=False).numpy()
        np.testing.assert_allclose(features_in["features"], expected, rtol=1e-3, atol=1e-5 * abs(expected).max())
        encoder = model.get_layer("encoder")
        embedded = encoder(images_in["image"], training=False).numpy()
        np.testing.assert_allclose(embed_features(cached.config, features_in["features"], encoder),
                                   embedded, rtol=1e-3, atol=1e-5 * abs(embedded).max())
        assert ("feature_norm" in {layer.name for layer in encoder.layers}) == bool(decoder)
        # Both input structures run the same decoder layers.
        np.testing.assert_allclose(model(features_in, training=False), model(images_in, training=False),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("emit_unknown", [True, False], ids=["unknown_allowed", "unknown_forbidden"])
@pytest.mark.parametrize("decoder", [{}, MERGE], ids=["show_and_tell", "merge"])
def test_decoding_follows_the_trained_graph_step_by_step(decoder, emit_unknown):
    """Greedy decoding (graph code with its own LSTM steps) picks, at every step, the word the
    training graph's logits rank first given the words decoded before: the two cannot drift.
    With ``emit_unknown`` off, [UNK] is never chosen (decoding or sampling), and the
    log-probabilities are the training graph's renormalised over the other words."""
    from kerasapps.api import END_ID, START_ID, UNK_ID
    from kerasapps.data.sources import DatasetSource
    from kerasapps.data import shapes
    from kerasapps_captioning.models import decoder_steps, sample_captions
    from kerasapps_captioning.task import CaptioningTask

    config = CaptioningTask.Config(image_size=32, cnn_filters=(8, 16), embed_dim=16, lstm_units=16, max_caption_length=6,
                                   train_examples=16, eval_examples=8, min_word_count=1, emit_unknown=emit_unknown,
                                   **decoder)
    task = CaptioningTask(config, DatasetSource("shapes", "registered", "shapes", factory="kerasapps.data.shapes"))
    task.build_datasets()
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(3)
    model = task.build_model()
    for layer in model.layers:  # larger weights than Keras's initialisers: words that differ between images
        if layer.name in ("logits", "embedding"):
            layer.set_weights([w * 8 for w in layer.get_weights()])
    kernel, bias = model.get_layer("logits").get_weights()
    bias[UNK_ID] = 1.0  # [UNK] ranks first at most steps (at 2.0, at every step): forbidding it must matter
    model.get_layer("logits").set_weights([kernel, bias])
    images = tf.constant(shapes.generate_arrays("test", 6, seed=2, image_size=32)["image"], tf.float32)
    greedy, log_prob = task.caption_function(model, beam_size=1)(images)
    greedy = greedy.numpy()
    assert len({tuple(row) for row in greedy}) > 1
    assert (UNK_ID in greedy) == emit_unknown
    steps = config.max_caption_length + 1
    fed = np.concatenate([np.full((len(greedy), 1), START_ID), greedy[:, :-1]], axis=1)
    fed = np.where(np.cumsum(fed == END_ID, axis=1) > 0, 0, fed)  # nothing after the end
    logits = model({"image": images, "tokens": tf.constant(fed[:, np.newaxis, :steps], tf.int32)}, training=False)
    logits = logits.numpy()[:, 0]
    if not emit_unknown:
        logits[..., UNK_ID] = -np.inf
    chosen = np.argmax(logits[..., 1:], axis=-1) + 1  # padding is never chosen
    for row, picked in zip(greedy, chosen):
        length = int(np.argmax(row == END_ID)) + 1 if END_ID in row else steps
        np.testing.assert_array_equal(picked[:length], row[:length])
    expected = tf.nn.log_softmax(logits).numpy()  # the decoder's log-probabilities, padding's included
    summed = [sum(expected[i, t, row[t]] for t in range(int(np.argmax(row == END_ID)) + 1 if END_ID in row else steps))
              for i, row in enumerate(greedy)]
    np.testing.assert_allclose(log_prob.numpy(), summed, rtol=1e-4, atol=1e-4)
    beam_one, _ = task.caption_function(model, beam_size=1, use_beam=True)(images)
    np.testing.assert_array_equal(beam_one.numpy(), greedy)
    beam, _ = task.caption_function(model, beam_size=3)(images)
    start, step = decoder_steps(model, config)
    sampled, _, _ = sample_captions(step, start(model.get_layer("encoder")(images, training=False)), steps)
    if not emit_unknown:
        assert UNK_ID not in beam.numpy() and UNK_ID not in sampled.numpy()


@pytest.mark.slow
def test_run_with_cached_frozen_encoder_trains_exports_and_rejects_a_trainable_one(tmp_path):
    where = dict(workdir=tmp_path / "runs/captioning", export_dir=tmp_path / "saved_models")
    result = kerasapps.run("captioning", epochs=2, cache_features=True, **FROZEN, **where, verbose=0)
    assert "bleu4" in result.metrics and any("predicted:" in line for line in result.samples), result.samples
    history = (tmp_path / "runs/captioning/training_log.csv").read_text().splitlines()
    assert len(history) == 3  # header and two epochs
    assert (tmp_path / "saved_models/captioning/1/saved_model.pb").exists()
    with pytest.raises(UsageError, match="cache_features needs a frozen pretrained encoder"):
        kerasapps.train("captioning", cache_features=True, **where, verbose=0)


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    """A tiny trained classification run (LeNet-5 on 32x32 shapes), to start captioning encoders from."""
    pytest.importorskip("kerasapps_classification", reason="encoders from a classification run need that plugin")
    workdir = tmp_path_factory.mktemp("classification") / "run"
    kerasapps.train("classification", epochs=1, batch_size=32, train_examples=64, eval_examples=32, image_size=32,
                    filters=(8, 8), dense_units=(16,), workdir=workdir, verbose=0)
    return workdir


def test_encoder_starts_from_a_classification_runs_weights(classification_run):
    from kerasapps_captioning.task import CaptioningConfig, CaptioningTask
    from kerasapps_classification.task import ClassificationConfig, ClassificationTask

    # The classification network as its own task builds it, its weights loaded by Keras.
    params = json.loads((classification_run / "config.json").read_text())["params"]
    info = json.loads((classification_run / "task_info.json").read_text())
    classifier = ClassificationTask(ClassificationConfig(filters=tuple(params["filters"]),
                                                         dense_units=tuple(params["dense_units"])),
                                    info=info).build_model()
    classifier.optimizer.build(classifier.trainable_variables)
    classifier.load_weights(str(classification_run / "best.weights.h5"))
    trained = {w.path: w.numpy() for w in classifier.weights}

    config = CaptioningConfig(encoder="classification", encoder_weights=str(classification_run / "best.weights.h5"),
                              image_size=32, lstm_units=8, embed_dim=8)
    task = CaptioningTask(config, info={"vocabulary": ["a", "red", "circle"], "image_size": 32})
    assert task.info["encoder_run"]["task"] == "classification"  # recorded: export needs no classification folder
    model = task.build_model()
    backbone = model.get_layer("encoder").get_layer("image_features")
    assert sorted(w.path for w in backbone.weights) == sorted(
        f"{layer}/{kind}" for layer in ("conv1", "conv2", "fc1") for kind in ("kernel", "bias"))
    # Loaded as soon as it is built: the data pipeline (cache_features) may run it before training starts.
    for weight in backbone.weights:
        np.testing.assert_array_equal(weight.numpy(), trained[weight.path], err_msg=weight.path)
    # Its features are what the classifier's head reads: the output of fc1 (dropout comes after).
    images = tf.random.uniform([3, 32, 32, 3], 0, 255, seed=1)
    below_head = __import__("keras").Model(classifier.input, classifier.get_layer("fc1").output)
    np.testing.assert_allclose(backbone(images), below_head(images), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("decoder", [{}, MERGE], ids=["show_and_tell", "merge"])
def test_cached_features_of_a_run_encoder_are_its_trained_networks(classification_run, decoder):
    """As the core runs it: the datasets, a sample batch (which fills the shuffle buffer, and with it
    the whole cache of a split this small), then the model and its training state. Every cached
    feature is the trained network's, never a freshly initialised one's."""
    from kerasapps.data.sources import DatasetSource
    from kerasapps_captioning.task import CaptioningConfig, CaptioningTask

    config = CaptioningConfig(encoder="classification", encoder_weights=str(classification_run), freeze_encoder=True,
                              cache_features=True, image_size=32, lstm_units=8, embed_dim=8, batch_size=8,
                              train_examples=24, eval_examples=8, min_word_count=1, **decoder)
    task = CaptioningTask(config, DatasetSource("shapes", "registered", "shapes", factory="kerasapps.data.shapes"))
    datasets = task.build_datasets()
    sample = next(iter(datasets["train"]))
    model = task.build_model()
    task.build_training_state(model, sample)
    trained = read_trained_run(classification_run, task="classification").build_model()
    below_head = __import__("keras").Model(trained.input, trained.get_layer("fc1").output)
    for split in ("train", "validation"):
        cached = np.concatenate([x["features"].numpy() for x, _, _ in datasets[split]])
        images = np.concatenate([im.numpy() for im in task.image_datasets[split]]).astype("float32")
        expected = below_head(images).numpy()
        assert cached.shape == expected.shape and expected.std(axis=0).max() > 0
        # The training split is shuffled: each cached row is some image's features.
        distance = np.abs(cached[:, np.newaxis] - expected[np.newaxis]).max(axis=-1).min(axis=1)
        assert distance.max() < 1e-4, split


def test_encoder_weights_that_are_no_classification_run_are_one_error(classification_run, tmp_path):
    import warnings

    from kerasapps.config import apply_overrides
    from kerasapps.errors import UsageError
    from kerasapps.training.transfer import read_trained_run
    from kerasapps_captioning.task import CaptioningConfig

    small = dict(epochs=1, batch_size=8, train_examples=16, eval_examples=8, lstm_units=8, embed_dim=8,
                 encoder="classification", workdir=tmp_path / "captioning", verbose=0)
    with pytest.raises(UsageError) as refused:
        kerasapps.train("captioning", **small, encoder_weights=str(tmp_path / "nowhere"))
    assert f"{tmp_path / 'nowhere'} not found: expected a kerasapps classification run" in str(refused.value)
    # LeNet-5 flattens its last feature map: trained at 32x32, it does not fit 48x48 images; said
    # in the one message, with no warning from Keras's weight loading beside it.
    with warnings.catch_warnings(record=True) as caught, pytest.raises(UsageError) as refused:
        warnings.simplefilter("always")
        kerasapps.train("captioning", **small, image_size=48, encoder_weights=str(classification_run))
    message = str(refused.value)
    assert "fc1/kernel: (200, 16) in the file, (648, 16) in the model" in message and "--set image_size=32" in message
    assert not [w for w in caught if issubclass(w.category, UserWarning)], [str(w.message) for w in caught]
    # ... refused before the data is read: a folder whose captions name a missing image is not reached.
    broken = tmp_path / "broken"
    (broken / "Images").mkdir(parents=True)
    (broken / "captions.txt").write_text("image,caption\nmissing.png,a red circle\n")
    with pytest.raises(UsageError, match=r"fc1/kernel: \(200, 16\) in the file, \(648, 16\) in the model"):
        kerasapps.train("captioning", **small, image_size=48, encoder_weights=str(classification_run),
                        dataset=f"folder:{broken}")

    other = tmp_path / "translation_run"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "translation", "params": {}}))
    (other / "task_info.json").write_text("{}")
    (other / "best.weights.h5").write_bytes(b"")
    (tmp_path / "loose.weights.h5").write_bytes(b"")
    for path, message in ((other, "is a translation run, not a kerasapps classification run"),
                          (classification_run / "config.json", "is neither a run folder nor a .weights.h5 file"),
                          (tmp_path / "loose.weights.h5", f"{tmp_path} has no config.json"),
                          (tmp_path, "holds no best.weights.h5")):
        with pytest.raises(UsageError, match=message):
            read_trained_run(path, task="classification")
    with pytest.raises(UsageError, match="weights need --set encoder=classification"):
        apply_overrides(CaptioningConfig(), {"encoder_weights": str(classification_run)})  # the small CNN: none
    with pytest.raises(UsageError, match="encoder=classification starts from a kerasapps classification run"):
        apply_overrides(CaptioningConfig(), {"encoder": "classification"})


def test_flickr8k_benchmark_skips_cleanly_without_the_data(tmp_path, capsys):
    from benchmarks.flickr8k_captioning import main

    assert main(["--data", str(tmp_path / "absent"), "--tiny"]) is None
    assert capsys.readouterr().out.startswith(f"skipped: {tmp_path / 'absent'} not found (a Flickr8k-style folder")


@pytest.mark.slow
def test_flickr8k_benchmark_scores_the_recipe_and_its_baselines_on_dev(tmp_path, capsys):
    from benchmarks.flickr8k_captioning import main

    # Photos at the model's size, as in our Flickr8k copy: served and evaluated pixels are the same.
    data = write_flickr_folder(tmp_path / "flickr8k", images=40, size=32)  # train and dev lists, no test list
    for file, numbers in (("Flickr_8k.trainImages.txt", range(30)), ("Flickr_8k.devImages.txt", range(30, 40))):
        (data / file).write_text("".join(f"img{i}.png\n" for i in numbers))
    # A tiny matching run on the same train split gives the reference-free columns.
    matching = kerasapps.run("matching", dataset=f"folder:{data}", epochs=1, batch_size=8, image_size=32,
                             cnn_filters=(8, 16), embedding_dim=16, word_dim=8, text_units=8, min_word_count=1,
                             workdir=tmp_path / "match", export_dir=tmp_path / "match_models", samples=0, verbose=0)
    # It is also the captioner's encoder (the benchmark trains its own without --encoder-run).
    result = main(["--data", str(data), "--tiny", "--work", str(tmp_path / "work"),
                   "--matching-export", str(matching.export_path), "--encoder-run", str(tmp_path / "match")])
    out = capsys.readouterr().out
    assert "human (reference 1)" in out and " match  R-prec" in out
    # match is the mean of the export's own per-pair score; one caption for every photo ties with every
    # distractor, and a tie counts against the photo: R-precision 0.
    import tensorflow as tf

    from kerasapps.data.captions import read_captions_folder

    folder = read_captions_folder(data, quiet=True)
    files = [folder.image_dir / name for name in folder.names["test"]]
    serve = tf.saved_model.load(str(matching.export_path)).signatures["serving_default"]
    captions = [result["captions"][f.name] for f in files]
    scores = serve(image_bytes=tf.constant([f.read_bytes() for f in files]), text=tf.constant(captions))["score"]
    assert result["scores"]["captioner"]["match"] == pytest.approx(float(np.mean(scores)), abs=1e-5)
    assert result["scores"]["consensus caption"]["r_precision"] == 0.0
    assert 0 <= result["matching"]["human_reference"]["r_precision"] <= 1
    assert "flickr8k: 30 train / 10 dev images; scored: dev (10 photos, 30 references)" in out
    assert f"--set encoder=matching --set encoder_weights={tmp_path / 'match'}" in out
    assert "flickr8k-self-critical.yaml" in out and f"--set initial_weights={tmp_path / 'work' / 'captioning'}" in out
    assert result["scored_split"] == "dev" and set(result["scores"]) == {
        "captioner", "cross-entropy only", "nearest neighbour", "25-NN consensus", "consensus caption"}
    assert result["scores"]["consensus caption"]["distinct"] == 1
    assert result["scores"]["captioner"]["distinct"] == len(set(result["captions"].values()))
    assert result["task_metrics"]["distinct_captions"] == result["scores"]["captioner"]["distinct"]
    # The COCO code's BLEU of the served captions is the task's own BLEU of its decoded captions.
    served, own = result["scores"]["captioner"], result["task_metrics"]
    assert [served[f"bleu{n}"] for n in range(1, 5)] == pytest.approx([own[f"bleu{n}"] for n in range(1, 5)], abs=1e-6)
    assert served["cider_d"] == pytest.approx(own["cider_d"], abs=1e-9)
    # The consensus baseline is one training caption, given for every photo.
    train_captions = {c for i in range(30) for c in (data / "captions.txt").read_text().splitlines()
                      if c.startswith(f"img{i}.png,")}
    assert f"img{0}.png,{result['consensus_caption']}" in {f"img0.png,{c.split(',', 1)[1]}" for c in train_captions}
    assert result["scores"]["consensus caption"]["cider_d"] > 0
    saved = json.loads((tmp_path / "work/captioning/config.json").read_text())["params"]
    assert saved["encoder"] == "matching" and saved["freeze_encoder"] and saved["cache_features"]
    tuned = json.loads((tmp_path / "work/self-critical/config.json").read_text())["params"]
    assert tuned["objective"] == "self_critical" and tuned["initial_weights"] == str(tmp_path / "work" / "captioning")
    before = json.loads((tmp_path / "work/captioning/metrics.json").read_text())["metrics"]
    assert result["scores"]["cross-entropy only"]["cider_d"] == pytest.approx(before["cider_d"], abs=1e-9)
    # The captioning runs record what rebuilds their encoder: they evaluate without the matching run,
    # and the self-critical run without the run it started from.
    shutil.rmtree(tmp_path / "match")
    shutil.rmtree(tmp_path / "work" / "captioning" / "backup")
    (tmp_path / "work" / "captioning" / "best.weights.h5").rename(tmp_path / "kept.weights.h5")
    again = kerasapps.evaluate("captioning", workdir=tmp_path / "work/self-critical", verbose=2)
    printed = capsys.readouterr()
    assert f"note: {tmp_path / 'match'}/best.weights.h5 is gone" in printed.err
    assert printed.out.startswith("dev: ") and again.scored_split == "dev"
    metrics = json.loads((tmp_path / "work/self-critical/metrics.json").read_text())
    assert metrics["scored_split"] == "dev"
    assert [metrics["metrics"][f"bleu{n}"] for n in range(1, 5)] == [own[f"bleu{n}"] for n in range(1, 5)]


def test_a_keras_applications_encoder_starts_from_a_weights_file(tmp_path):
    import keras

    from kerasapps.config import apply_overrides
    from kerasapps.errors import UsageError
    from kerasapps_captioning.models import build_image_features
    from kerasapps_captioning.task import CaptioningConfig

    saved = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    saved.save_weights(str(tmp_path / "mobilenet.weights.h5"))
    config = apply_overrides(CaptioningConfig(), {"encoder": "mobilenet_v2", "image_size": 32,
                                                  "encoder_weights": str(tmp_path / "mobilenet.weights.h5")})
    features = build_image_features(config)
    loaded = features.get_layer(saved.name)
    assert len(loaded.weights) == len(saved.weights) > 100
    for mine, theirs in zip(loaded.weights, saved.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    with pytest.raises(UsageError, match="no such file"):
        build_image_features(apply_overrides(config, {"encoder_weights": str(tmp_path / "absent.weights.h5")}))


def test_a_grayscale_classification_network_sees_the_images_in_grey():
    from kerasapps.training.transfer import TrainedRun
    from kerasapps_captioning.models import build_run_features, build_run_network
    from kerasapps_captioning.task import CaptioningConfig

    run = TrainedRun("unused", "unused.weights.h5", "classification",
                     {"filters": [4, 4], "dense_units": [8], "image_size": 32, "channels": 1},
                     {"class_names": ["a", "b"], "image_size": 32, "channels": 1})
    config = CaptioningConfig(encoder="classification", encoder_weights="unused", image_size=32)
    network = build_run_network(config, run)
    features = build_run_features(config, network)
    images = tf.random.uniform([2, 32, 32, 3], 0, 255, seed=2)
    grey = tf.image.rgb_to_grayscale(images)
    below_head = __import__("keras").Model(network.input, network.get_layer("fc1").output)
    np.testing.assert_allclose(features(images), below_head(grey), rtol=1e-5, atol=1e-5)
