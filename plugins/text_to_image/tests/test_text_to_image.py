"""The text-to-image task: caption facts, Frechet distance, the GAN step under 2 replicas,
backup/resume, a tiny run through the CLI, serving in a fresh process, and bad input."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kerasapps
from kerasapps.testing import check_export
from kerasapps.testing import run_cli as cli

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

TINY_PARAMS = {"image_size": "16", "train_examples": "64", "eval_examples": "32", "generator_filters": "32",
               "discriminator_filters": "8", "lstm_units": "16", "embed_dim": "16", "z_dim": "16", "cond_dim": "16",
               "judge_examples": "128", "judge_epochs": "1", "grid_draws": "2"}
TINY = ["--batch-size", "16"] + [arg for k, v in TINY_PARAMS.items() for arg in ("--set", f"{k}={v}")]
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def test_caption_facts_read_the_shapes_language():
    from kerasapps_text_to_image.judge import COLOURS, SHAPES, caption_facts

    facts = caption_facts("A small blue square to the left of a LARGE red circle.")
    assert (COLOURS[facts["colour"]], SHAPES[facts["shape"]]) == ("red", "circle")
    assert facts["small"] == [COLOURS.index("blue") * 4 + SHAPES.index("square")] and facts["cell"] is None
    alone = caption_facts("there is a big yellow triangle in the top left")
    assert (COLOURS[alone["colour"]], SHAPES[alone["shape"]], alone["cell"]) == ("yellow", "triangle", 0)
    assert caption_facts("a green cross on the right")["cell"] == 5
    assert caption_facts("") is None and caption_facts("a purple blob") is None


def test_frechet_distance_against_hand_computed_cases():
    from kerasapps_text_to_image.judge import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, mean shifted by (3, 4, 0): the distance is |shift|^2 = 25.
    assert frechet_distance(a + [3.0, 4.0, 0.0], a) == pytest.approx(25.0, rel=1e-6)
    # Unit Gaussians scaled by 2: tr(4I + I - 2 (4I)^(1/2)) = 1 per dimension.
    b = rng.normal(size=(200_000, 3))
    assert frechet_distance(2 * b, b) == pytest.approx(3.0, rel=0.02)


def test_stage2_is_rejected_with_a_clear_message():
    from kerasapps_text_to_image.task import TextToImageConfig

    from kerasapps.config import apply_overrides
    from kerasapps.errors import UsageError

    with pytest.raises(UsageError, match="stage2=true .* not implemented"):
        apply_overrides(TextToImageConfig(), {"stage2": "true"})
    with pytest.raises(UsageError, match="power of two"):
        apply_overrides(TextToImageConfig(), {"image_size": "48"})


def tiny_gan(**kwargs):
    from kerasapps_text_to_image.models import build_gan

    return build_gan(20, 6, 16, embed_dim=8, lstm_units=8, z_dim=8, cond_dim=8, generator_filters=32,
                     discriminator_filters=8, text_dim=8, **kwargs)


def tiny_batches(n=16, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    data = {"image": rng.uniform(-1, 1, (n, 16, 16, 3)).astype("float32"),
            "tokens": rng.integers(0, 20, (n, 6)).astype("int32"),
            "wrong_tokens": rng.integers(0, 20, (n, 6)).astype("int32"),
            "z": rng.normal(size=(n, 8)).astype("float32"), "eps": rng.normal(size=(n, 8)).astype("float32")}
    data["tokens"][0] = 0  # an empty caption in training must not break the step
    return tf.data.Dataset.from_tensor_slices(data).batch(batch)


def test_backup_restores_generator_discriminator_encoder_and_both_optimizers(tmp_path):
    from kerasapps.training.engine import ResumableBackup, Trainer

    keras.utils.set_random_seed(1)
    gan = tiny_gan()
    Trainer(gan, tf.distribute.get_strategy(), state_built=True).fit(
        tiny_batches(), epochs=1, callbacks=[ResumableBackup(tmp_path, gan)], progress_bar=False)
    keras.utils.set_random_seed(2)
    fresh = tiny_gan()
    assert ResumableBackup(tmp_path, fresh, write=False).restore() == 1
    for part in ("text_encoder", "conditioning", "generator", "discriminator"):
        for a, b in zip(getattr(gan, part).weights, getattr(fresh, part).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{part}/{a.path}")
    for name in ("d_optimizer", "g_optimizer"):
        old, new = getattr(gan, name), getattr(fresh, name)
        assert int(new.iterations) == int(old.iterations) == 2, name
        for a, b in zip(old.variables, new.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{name}/{a.path}")


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    sys.path.insert(0, sys.argv[1])
    from test_text_to_image import tiny_batches, tiny_gan
    from kerasapps.training.engine import Trainer

    def after_one_step(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(3)
            gan = tiny_gan()
        history = Trainer(gan, strategy, state_built=True).fit(tiny_batches(n=8), epochs=1, progress_bar=False)
        weights = [w.numpy().tolist() for part in (gan.text_encoder, gan.conditioning, gan.generator,
                                                   gan.discriminator) for w in part.weights]
        return weights, {k: v[0] for k, v in history.history.items()}, strategy.num_replicas_in_sync

    one = after_one_step(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two = after_one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    print(json.dumps({"one": one, "two": two}))
""")


def test_one_gan_step_on_two_replicas_equals_one_step_on_one_device():
    """All randomness comes with the batch and BatchNorm is synchronised, so the split does not matter."""
    here = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, here], capture_output=True, text=True,
                            env=dict(os.environ, **ENV), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    (w1, logs1, r1), (w2, logs2, r2) = data["one"], data["two"]
    assert (r1, r2) == (1, 2)
    for key in ("d_loss", "g_loss", "kl", "real_score"):  # logged values are global means, not a replica's share
        assert logs1[key] == pytest.approx(logs2[key], rel=1e-4, abs=1e-6), key
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-4, atol=1e-5)


SERVED_TEXTS = ["a large red circle left of a small blue square", "", "zzz qqq unknown words",
                " ".join(["a big green cross"] * 40)]
SEEDS = (("default", []), ("seed3", [3]), ("seed3_again", [3]), ("seed4", [4]))


def test_tiny_run_writes_grids_and_serves_in_a_fresh_process(tmp_path):
    # Resume is tested above, in-process: the CLI side of it is the core's (tests/test_engine.py).
    workdir, exports = tmp_path / "run", tmp_path / "saved_models"
    result = cli("run", "text-to-image", *TINY, "--epochs", "1", "--workdir", workdir, "--export-dir", exports,
                 "--samples", "2", check=0)
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1
    for key in ("semantic_accuracy", "real_semantic_accuracy", "shuffled_semantic_accuracy", "diversity",
                "frechet_judge_distance", "d_loss", "g_loss"):
        assert np.isfinite(metrics["metrics"][key]), key
    assert (workdir / "samples" / "grid.png").exists() and (workdir / "progress" / "epoch_001.png").exists()
    rows = (workdir / "samples" / "grid.txt").read_text()
    assert "a large red circle to the left of a small blue square" in rows
    assert "judge sees:" in result.stdout

    # check_export: serving_default in a process that imports only tensorflow (never kerasapps), then predict.
    served = check_export(exports / "text-to-image" / "1", SERVED_TEXTS, out=tmp_path / "p0",
                          calls=[{"seed": seeds} for _, seeds in SEEDS], predict_args=["--with", "seed=3"])
    out = {name: [png["sha256"] for png in call["png_bytes"]["values"]]
           for (name, _), call in zip(SEEDS, served.serving_calls)}
    shapes = [png["image_shape"] for png in served.serving["png_bytes"]["values"]]
    assert shapes == [[16, 16, 3]] * 4  # empty, unknown-word and over-long captions give an image
    assert out["seed3"] == out["seed3_again"]  # same text and seed: the same bytes
    assert out["seed3"] != out["seed4"] and out["default"] != out["seed3"]

    # kerasapps predict: text in, a PNG named after the caption out; --with feeds the seed. Again in
    # this process (what `kerasapps predict` runs): the same text and seed give the same bytes.
    from kerasapps.serving.predict import predict_inputs

    model = exports / "text-to-image" / "1"
    first = cli("predict", model, "a red circle", "--with", "seed=3", "--out", tmp_path / "p1", check=0)
    again = list(predict_inputs(model, ["a red circle"], tmp_path / "p2", {"seed": "3"}))
    assert "png_bytes=" in first.stdout and again[0]["png_bytes"] == str(tmp_path / "p2" / "a_red_circle_png.png")
    png = (tmp_path / "p1" / "a_red_circle_png.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == (tmp_path / "p2" / "a_red_circle_png.png").read_bytes()
    with pytest.raises(kerasapps.UsageError, match=r"--with sed: the model has no such input \(it takes seed\)"):
        list(predict_inputs(model, ["a red circle"], tmp_path / "p3", {"sed": "3"}))


def test_missing_image_row_is_a_usage_error_naming_the_row(tmp_path):
    from kerasapps.data import shapes

    (tmp_path / "Images").mkdir()
    rows = ["image,caption"]
    for i in range(3):
        scene = shapes.generate_scene(i, "train", image_size=16)
        (tmp_path / "Images" / f"img{i}.png").write_bytes(tf.io.encode_png(scene["image"]).numpy())
        rows.append(f"img{i}.png,{scene['captions'][0]}")
    rows.insert(3, "nowhere.png,a red circle")
    (tmp_path / "captions.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(kerasapps.UsageError, match="captions.txt, row 4: image 'nowhere.png' not found"):
        kerasapps.train("text-to-image", dataset=f"folder:{tmp_path}", workdir=tmp_path / "run", verbose=0)
