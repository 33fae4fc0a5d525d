"""Adversarial training (--set adversarial=fgsm|pgd): the plain classifier's layers, trained on a
mix of clean and adversarial batches, exported and served exactly as before."""

import json

import numpy as np
import pytest

import kerasapps
from kerasapps.testing import check_export, write_scene_images


def test_adversarial_classifier_is_the_plain_model_with_another_train_step(tmp_path):
    import keras

    from kerasapps_classification.models import AdversarialClassifier, build_classifier

    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).uniform(0, 255, (64, 32, 32, 3)).astype("float32")
    labels = np.arange(64) % 4
    for attack in ("fgsm", "pgd"):
        plain = build_classifier("lenet5", (32, 32, 3), 4, filters=(4, 8), dense_units=(16,))
        model = AdversarialClassifier(plain.inputs, plain.outputs, attack=attack, epsilon=8.0, steps=2)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        before = [w.numpy().copy() for w in model.weights]
        history = model.fit(images, labels, epochs=1, batch_size=32, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.weights))  # it trained
        adversarial = model.adversarial_examples(images[:8], labels[:8]).numpy()
        assert np.abs(adversarial - images[:8]).max() <= 8.0 + 1e-4 and adversarial.min() >= 0
        # Its weights load into the plain model (what export and evaluate build), with the same outputs.
        model.save_weights(tmp_path / f"{attack}.weights.h5")
        fresh = build_classifier("lenet5", (32, 32, 3), 4, filters=(4, 8), dense_units=(16,))
        fresh.load_weights(tmp_path / f"{attack}.weights.h5")
        np.testing.assert_allclose(fresh.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


def test_adversarial_weight_zero_trains_exactly_as_the_plain_model():
    import keras

    from kerasapps_classification.models import AdversarialClassifier, build_classifier

    images = np.random.default_rng(1).uniform(0, 255, (32, 32, 32, 3)).astype("float32")
    labels = np.arange(32) % 4
    weights = []
    for adversarial in (False, True):
        keras.utils.set_random_seed(0)
        model = build_classifier("lenet5", (32, 32, 3), 4, filters=(4, 8), dense_units=(16,))
        if adversarial:
            model = AdversarialClassifier(model.inputs, model.outputs, attack="fgsm", epsilon=8.0,
                                          adversarial_weight=0.0)
        model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
        model.fit(images, labels, epochs=1, batch_size=32, shuffle=False, verbose=0)
        weights.append([w.numpy() for w in model.weights])
    for plain, mixed in zip(*weights):
        np.testing.assert_allclose(plain, mixed, atol=1e-6)


@pytest.mark.slow
def test_pgd_trained_run_exports_and_serves_as_before(tmp_path):
    kerasapps.run("classification", epochs=1, batch_size=32, train_examples=256, eval_examples=64, image_size=32,
                  adversarial="pgd", adversarial_steps=2, workdir=tmp_path / "run", export_dir=tmp_path / "saved",
                  samples=0, verbose=0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["params"]["adversarial"] == "pgd" and config["params"]["adversarial_steps"] == 2
    images = write_scene_images(tmp_path / "inputs", count=2)
    result = check_export(tmp_path / "saved" / "classification" / "1", images)
    assert sorted(result.serving) == ["class_id", "label", "scores"]
    assert result.serving["scores"]["shape"] == [2, 24]  # the 24 shapes classes


# The strategies and the kill: adversarial training is the model's own train_step, so each path the core
# trains through (one device, MirroredStrategy, MultiWorkerMirroredStrategy, a resumed run) must run it.
TINY_FGSM = ["--epochs", "1", "--batch-size", "32", "--set", "train_examples=256", "--set", "eval_examples=64",
             "--set", "image_size=32", "--set", "adversarial=fgsm"]


@pytest.mark.slow
def test_fgsm_training_under_mirrored_strategy_matches_one_device(tmp_path):
    from kerasapps.testing import run_cli

    losses = {}
    for strategy, env in (("default", {}), ("mirrored", {"KERASAPPS_VIRTUAL_CPUS": "2"})):
        run_cli("train", "classification", *TINY_FGSM, "--strategy", strategy, "--workdir", tmp_path / strategy,
                env=env, check=0)
        metrics = json.loads((tmp_path / strategy / "metrics.json").read_text())
        losses[strategy] = metrics["history"][0]["loss"]
        if strategy == "mirrored":
            assert metrics["strategy"] == "MirroredStrategy" and metrics["replicas"] == 2
    # FGSM is deterministic: two replicas with half the batch each are the one-device step, and the
    # logged loss is the whole batch's mixed loss (not one replica's share, not doubled).
    assert losses["mirrored"] == pytest.approx(losses["default"], rel=1e-3), losses


@pytest.mark.slow
def test_pgd_training_under_two_workers_keeps_identical_replicas(tmp_path):
    from tests.conftest import launch, worker_checksums

    status, lines, _ = launch(tmp_path, "--workers", 2, "classification", "--epochs", 1, "--batch-size", 32,
                              "--set", "train_examples=128", "--set", "eval_examples=32", "--set", "image_size=32",
                              "--set", "adversarial=pgd", "--set", "adversarial_steps=2", "--samples", 0)
    output = "\n".join(lines)
    assert status == 0, output[-4000:]
    checksums = worker_checksums(lines)
    assert set(checksums) == {0, 1} and checksums[0] == checksums[1], checksums
    metrics = json.loads((tmp_path / "runs" / "classification" / "metrics.json").read_text())
    assert metrics["strategy"] == "MultiWorkerMirroredStrategy" and np.isfinite(metrics["history"][0]["loss"])
    assert (tmp_path / "saved_models" / "classification" / "1" / "saved_model.pb").exists()


@pytest.mark.slow
def test_killed_pgd_run_resumes_at_the_next_epoch_with_its_settings(tmp_path):
    args = ["train", "classification", "--epochs", "4", "--batch-size", "32", "--set", "train_examples=640",
            "--set", "eval_examples=64", "--set", "image_size=32", "--set", "adversarial=pgd",
            "--set", "adversarial_steps=2"]
    from tests.conftest import kill_at_checkpoint

    completed = kill_at_checkpoint(tmp_path, args)
    assert 1 <= completed < 4
    # Resuming without the adversarial settings would train another model in the same folder: refused.
    settings = dict(batch_size=32, train_examples=640, eval_examples=64, image_size=32, verbose=0)
    with pytest.raises(kerasapps.UsageError, match=r"different config \(adversarial, adversarial_steps changed\)"):
        kerasapps.train("classification", epochs=4, **settings, workdir=tmp_path / "runs/classification")
    kerasapps.train("classification", epochs=4, **settings, adversarial="pgd", adversarial_steps=2,
                    workdir=tmp_path / "runs/classification")
    metrics = json.loads((tmp_path / "runs/classification/metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3, 4]
    assert metrics["resumed_from_epoch"] == completed and metrics["epochs_completed"] == 4
