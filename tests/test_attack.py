"""Adversarial examples: the attacks' arithmetic on tiny in-process models, the scoring loop, and
`kerasapps attack` on a tiny trained run of the fake task (in-process), hostile inputs included."""

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import kerasapps
from tests.conftest import FAKE, ROOT, make_distribution

sys.path.insert(0, str(ROOT / "tests" / "plugins"))  # the fake plugin, loaded in-process with -p kerasapps_fake


def invoke(*args):
    """`kerasapps ARGS` in-process; returns click's Result."""
    from kerasapps.cli import cli as kerasapps_cli

    return CliRunner().invoke(kerasapps_cli, [str(a) for a in args], catch_exceptions=True)


# -- tiny in-process models -----------------------------------------------------
def bright_or_dark(count=256, seed=0):
    """8x8 grey images of 0..255 pixels: class 1 is bright (mean > 127.5), class 0 dark."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    centre = np.where(labels == 1, 180.0, 75.0)[:, None, None, None]
    images = np.clip(centre + rng.normal(0, 30, (count, 8, 8, 1)), 0, 255).astype("float32")
    return images, labels.astype("int64")


def tiny_model(mask_gradients=False):
    import keras
    import tensorflow as tf

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    if mask_gradients:  # a layer with no gradient: attacks see zeros (gradient masking)
        x = keras.layers.Lambda(lambda t: tf.stop_gradient(t))(x)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy",
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


@pytest.fixture(scope="module")
def trained_tiny():
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    images, labels = bright_or_dark(512)
    model = tiny_model()
    model.fit(images, labels, epochs=8, batch_size=32, verbose=0)
    test = tf.data.Dataset.from_tensor_slices(bright_or_dark(128, seed=1)).batch(32)
    return model, test


def loss_of(model):
    def loss_fn(images, labels):
        return model.compute_loss(y=labels, y_pred=model(images, training=False))

    return loss_fn


def meter_for(model, check_epsilon=0.5, target=None, steps=10, epsilons=(0.0,)):
    import tensorflow as tf

    from kerasapps.adversarial.robustness import RobustnessMeter
    from kerasapps.adversarial.settings import AttackSettings
    from kerasapps.adversarial.surface import AttackSurface

    settings = AttackSettings(epsilons=epsilons, steps=steps, check_epsilon=check_epsilon)
    return RobustnessMeter(model, tf.distribute.get_strategy(), AttackSurface(score="accuracy"), settings, target)


def test_fgsm_moves_every_pixel_by_epsilon_along_the_gradient_sign_clipped_to_the_range(trained_tiny):
    import tensorflow as tf

    from kerasapps.api import fgsm

    model, _ = trained_tiny
    images, labels = bright_or_dark(16, seed=2)
    images[0, 0, 0, 0], images[1, 0, 0, 0] = 0.0, 255.0  # pixels at the range's ends
    images = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = loss_of(model)(images, labels)
    sign = np.sign(tape.gradient(loss, images).numpy())
    assert np.count_nonzero(sign) > 0.25 * sign.size  # (a confident example may have a zero gradient)
    for epsilon in (1.0, 8.0, 40.0):
        adversarial = fgsm(loss_of(model), images, labels, epsilon).numpy()
        np.testing.assert_array_equal(adversarial, np.clip(images.numpy() + np.float32(epsilon) * sign, 0, 255))
    targeted = fgsm(loss_of(model), images, labels, 8.0, targeted=True).numpy()
    np.testing.assert_array_equal(targeted, np.clip(images.numpy() - 8.0 * sign, 0, 255))


def test_pgd_never_leaves_the_epsilon_ball_or_the_pixel_range(trained_tiny):
    from kerasapps.api import pgd

    model, _ = trained_tiny
    images, labels = bright_or_dark(64, seed=3)
    for epsilon, step_size in ((20.0, 15.0), (100.0, 60.0), (3.0, None)):
        adversarial = pgd(loss_of(model), images, labels, epsilon, steps=6, step_size=step_size).numpy()
        distance = np.abs(adversarial - images)
        # x - epsilon and x + epsilon are rounded to float32: allow one rounding of a 0..255 value
        assert distance.max() <= epsilon + np.spacing(np.float32(255))
        assert distance.max() >= 0.5 * epsilon  # it moved, to the ball's edge for some pixels
        assert adversarial.min() >= 0 and adversarial.max() <= 255
    unchanged = pgd(loss_of(model), images, labels, 0.0, steps=3).numpy()
    np.testing.assert_array_equal(unchanged, images)


def test_epsilon_zero_scores_exactly_the_clean_metrics(trained_tiny):
    import tensorflow as tf

    from kerasapps.training.engine import Trainer

    model, test = trained_tiny
    meter = meter_for(model)
    clean = meter.measure(test, None, 0.0)
    evaluated = Trainer(model, tf.distribute.get_strategy(), state_built=True).evaluate(test)
    assert clean["metrics"]["accuracy"] == evaluated["accuracy"] and clean["examples"] == 128
    for attack in ("fgsm", "pgd"):
        assert meter.measure(test, attack, 0.0)["metrics"] == clean["metrics"]


def test_pgd_is_at_least_as_strong_as_fgsm_and_a_working_attack_passes_the_masking_check(trained_tiny):
    from kerasapps.adversarial.robustness import measure_robustness

    model, test = trained_tiny
    meter = meter_for(model, epsilons=(0.0, 0.05, 0.15, 0.3))
    figures = measure_robustness(meter, test)
    assert figures["clean"]["score"] >= 0.9
    fgsm, pgd = ([row["score"] for row in figures["attacks"][a]["results"]] for a in ("fgsm", "pgd"))
    assert all(p <= f for p, f in zip(pgd, fgsm)), (fgsm, pgd)
    assert pgd[-1] < 0.5 * figures["clean"]["score"]  # 0.3 of the range flips most of the tiny model's answers
    assert figures["gradient_masking_check"]["passed"] and figures["warnings"] == []


def test_masked_gradients_are_reported_as_a_warning():
    import keras
    import tensorflow as tf

    from kerasapps.adversarial.robustness import measure_robustness

    keras.utils.set_random_seed(0)
    model = tiny_model(mask_gradients=True)
    model.fit(*bright_or_dark(512), epochs=8, batch_size=32, verbose=0)
    test = tf.data.Dataset.from_tensor_slices(bright_or_dark(64, seed=1)).batch(32)
    figures = measure_robustness(meter_for(model, epsilons=(0.0, 0.3)), test)
    assert figures["clean"]["score"] >= 0.9
    assert not figures["gradient_masking_check"]["passed"]
    (warning,) = figures["warnings"]
    assert warning.startswith("gradient masking? pgd at epsilon 0.5 (127.5 of the input range)")


def test_targeted_attack_pushes_predictions_to_the_target(trained_tiny):
    model, test = trained_tiny
    row = meter_for(model, target=1).measure(test, "pgd", 0.3)
    assert row["metrics"]["target_rate"] >= 0.9  # dark images made bright enough to read as class 1


def test_settings_refuse_what_makes_no_sense():
    from kerasapps.adversarial.settings import AttackSettings
    from kerasapps.api import UsageError

    assert AttackSettings.parse(epsilons="0, 8/255,0.3").epsilons == (0.0, 8 / 255, 0.3)
    for kwargs, message in (({"epsilons": "-0.1"}, "negative"), ({"epsilons": "1.5"}, "beyond the pixel range"),
                            ({"epsilons": "0,,1"}, "empty entry"), ({"epsilons": "a"}, "not a number"),
                            ({"attacks": "fgsm,cw"}, "unknown attack cw"), ({"steps": 0}, "at least 1 step"),
                            ({"step_size": "2"}, r"in \(0, 1\]"), ({"examples": 0}, "at least 1 example")):
        with pytest.raises(UsageError, match=message):
            AttackSettings.parse(**kwargs)


# -- kerasapps attack, end to end -------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("attack")
    kerasapps.run("fake", plugins=["kerasapps_fake"], workdir=root / "run", export_dir=root / "saved", samples=0,
                  verbose=0, epochs=1, batch_size=32, train_examples=256, eval_examples=64)
    return root / "run"


@pytest.mark.slow
def test_attack_command_writes_the_report_plot_and_panels(trained_run):
    result = invoke(*FAKE, "attack", "fake", "--workdir", trained_run, "--examples", "40",
                    "--epsilon", "0,8/255,0.1", "--steps", "3", "--panels", "2")
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads((trained_run / "attack" / "report.json").read_text())
    assert report["examples"] == 40 and report["split"] == "test" and report["score"] == "accuracy"
    assert report["weights"].endswith("best.weights.h5") and report["precision"] == "float32"
    assert report["threat_model"] == "white-box, L-infinity, untargeted"
    metrics = json.loads((trained_run / "metrics.json").read_text())["metrics"]
    for name in ("fgsm", "pgd"):
        rows = report["attacks"][name]["results"]
        assert [row["epsilon_pixels"] for row in rows] == [0.0, 8.0, 25.5]
        assert rows[0]["score"] == report["clean"]["score"] and rows[-1]["examples_per_second"] > 0
    assert report["attacks"]["pgd"]["parameters"]["steps"] == 3
    assert abs(report["clean"]["score"] - metrics["accuracy"]) <= 64 / 40 / 64 + 0.5  # a subset of the same split
    plot = trained_run / "attack" / "accuracy_vs_epsilon.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (trained_run / "samples").glob("adversarial_*.png")) == [
        "adversarial_00.png", "adversarial_01.png"]
    table = result.stdout.splitlines()
    assert table[0].startswith("fake on 40 test examples, white-box, L-infinity, untargeted")
    assert any(line.split()[:3] == ["pgd-3", "0.1", "25.5"] for line in table)


FLAT_TASK = """
from kerasapps_fake import FakeConfig, FakeTask, hookimpl
from kerasapps.api import TaskSpec


@hookimpl
def kerasapps_register_tasks():
    return [TaskSpec("flat", "flat_task:FlatTask", "colour from a flat vector of pixels")]


class FlatTask(FakeTask):
    name = "flat"

    def load_registered(self):
        return {split: data.map(lambda image, label: (tx.reshape(image, [-1]), label))
                for split, data in super().load_registered().items()}

    def build_model(self):
        import keras

        size = self.config.image_size
        model = keras.Sequential([keras.Input((size * size * 3,)), keras.layers.Dense(len(self.info["colours"]),
                                                                                       activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


import tensorflow as tx  # noqa: E402
"""


@pytest.mark.slow
def test_attack_refuses_mistakes_in_one_line_and_writes_nothing(trained_run, tmp_path):
    def refused(*args):
        result = invoke(*args)
        assert result.exit_code == 2, (result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
        return lines[0]

    attack = [*FAKE, "attack", "fake", "--workdir", trained_run]
    before = sorted(p.name for p in trained_run.iterdir())
    assert "negative" in refused(*attack, "--epsilon", "0,-2/255")
    assert "beyond the pixel range" in refused(*attack, "--epsilon", "0,300/255")
    assert "unknown attack deepfool" in refused(*attack, "--attack", "fgsm,deepfool")
    assert "not a class id or name" in refused(*attack, "--target", "unicorn", "--examples", "8")
    missing = tmp_path / "no_run"
    assert "holds no trained fake run" in refused(*FAKE, "attack", "fake", "--workdir", missing)
    assert not missing.exists()
    make_distribution(tmp_path / "site", "flatplug", "flat_task", FLAT_TASK)
    flat = tmp_path / "flat"
    sys.path.insert(0, str(tmp_path / "site"))
    try:
        kerasapps.train("flat", plugins=["kerasapps_fake", "flat_task"], workdir=flat, verbose=0)
        flat_before = sorted(p.name for p in flat.iterdir())
        line = refused(*FAKE, "-p", "flat_task", "attack", "flat", "--workdir", flat)
    finally:
        sys.path.remove(str(tmp_path / "site"))
        sys.modules.pop("flat_task", None)
    assert "task 'flat' cannot be attacked: its model's input is float32 [None, 768], not a batch of images" in line
    assert sorted(p.name for p in flat.iterdir()) == flat_before
    # the refusals before the run was loaded wrote nothing either (the report of the other test may exist)
    assert {p.name for p in trained_run.iterdir()} <= set(before) | {"attack", "samples"}
