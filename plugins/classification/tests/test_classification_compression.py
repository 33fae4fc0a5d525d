"""`kerasapps compress classification`: a tiny LeNet-5 run compressed, fine-tuned, then evaluated,
exported, served and resumed like any run; ResNet-20's plan prunes its residual streams and its
blocks' inner widths."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import kerasapps
from kerasapps.testing import check_export, write_scene_images

TINY = dict(epochs=1, batch_size=32, train_examples=256, eval_examples=64, image_size=16, filters=(4, 8),
            dense_units=(16, 12), samples=0, verbose=0)


def invoke(*args):
    from kerasapps.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("compress")
    kerasapps.run("classification", workdir=root / "run", export_dir=root / "saved", **TINY)
    return root


@pytest.mark.slow
def test_compress_then_evaluate_export_serve_and_resume(tiny_run):
    root = tiny_run
    source_files = sorted(p.name for p in (root / "run").iterdir())
    result = invoke("compress", "classification", "--workdir", root / "run", "--keep", "0.5", "--samples", "100",
                    "--fine-tune-epochs", "0.5", "--recalibrate", "--out", root / "half")
    assert result.exit_code == 0, (result.output, result.exception)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("epoch 1/1 - ")  # the fine-tuning's line, then the table
    lines = lines[1:]
    assert lines[0] == "classification: spectral keep 0.5 (conv1 4->2, conv2 8->4, fc1 16->8, fc2 12->6)"  # no BN
    assert [line.split()[0] for line in lines[2:5]] == ["original", "pruned", "fine-tuned"]
    assert f"exported: {root / 'saved' / 'classification' / '2'}" in lines
    assert sorted(p.name for p in (root / "run").iterdir()) == source_files  # the source run is only read
    config = json.loads((root / "half" / "config.json").read_text())
    assert config["params"]["filters"] == [2, 4] and config["params"]["dense_units"] == [8, 6]
    assert config["params"]["epochs"] == 1 and config["params"]["steps_per_epoch"] == 4  # half of 8 steps
    report = json.loads((root / "half" / "compression.json").read_text())
    original, pruned, tuned = report["rows"]
    assert original["params"] > 2 * pruned["params"] and original["multiply_adds"] > 2 * pruned["multiply_adds"]
    assert [g["kept_width"] for g in report["groups"]] == [2, 4, 8, 6]
    assert tuned["steps"] == 4 and report["export_path"] == str(root / "saved" / "classification" / "2")
    from kerasapps.training.engine import BestWeights

    assert BestWeights.recorded(root / "half" / "best.weights.h5")["epoch"] == 1  # rewritten by --recalibrate
    # evaluate scores the fine-tuned weights exactly as compress reported them
    evaluated = kerasapps.evaluate("classification", workdir=root / "half", verbose=0)
    assert evaluated.metrics["accuracy"] == pytest.approx(tuned["metrics"]["accuracy"], abs=1e-6)
    assert evaluated.model.get_layer("conv2").kernel.shape == (5, 5, 2, 4)
    # export, then serve as users do (a process without kerasapps), and the served scores are the model's
    exported = kerasapps.export("classification", workdir=root / "half", verbose=0)
    assert exported.export_path.name == "3"
    images = write_scene_images(root / "pngs", count=3, size=16)
    check_export(exported.export_path, images)
    served = kerasapps.load(exported.export_path).predict([str(p) for p in images])
    import tensorflow as tf

    pixels = np.stack([tf.io.decode_image(p.read_bytes(), channels=3).numpy() for p in images]).astype("float32")
    np.testing.assert_allclose([row["scores"] for row in served], exported.model.predict_on_batch(pixels),
                               atol=1e-5)
    # resume with the run's own config (as any run): one more epoch on top of the fine-tuned one
    resumed = kerasapps.train("classification", config=root / "half" / "config.json", epochs=2, verbose=0)
    assert [h["epoch"] for h in resumed.history] == [1, 2]


@pytest.mark.slow
def test_compress_without_fine_tuning_keeps_the_pruned_weights_and_baselines_run(tiny_run):
    root = tiny_run
    for method in ("l1", "random"):
        out = root / f"quarter-{method}"
        result = invoke("compress", "classification", "--workdir", root / "run", "--keep", "0.25", "--method",
                        method, "--samples", "50", "--recalibrate", "--out", out)
        assert result.exit_code == 0, (result.output, result.exception)
        report = json.loads((out / "compression.json").read_text())
        assert [row["stage"] for row in report["rows"]] == ["original", "pruned"]
        assert report["recalibrated_batch_normalization_layers"] == 0  # LeNet-5 has none
        assert [g["kept_width"] for g in report["groups"]] == [1, 2, 4, 3]
        evaluated = kerasapps.evaluate("classification", workdir=out, verbose=0)
        assert evaluated.metrics["accuracy"] == pytest.approx(report["rows"][1]["metrics"]["accuracy"], abs=1e-6)
    # a classification run given to compress as another task's, and a full --out: one line each, nothing written
    before = sorted(p.name for p in root.iterdir())
    result = invoke("compress", "classification", "--workdir", root / "run", "--keep", "0.5", "--out",
                    root / "quarter-l1")
    assert result.exit_code == 2 and "exists and is not empty" in result.stderr
    assert sorted(p.name for p in root.iterdir()) == before


@pytest.mark.slow
def test_per_layer_keep_and_a_failed_compress_leaves_no_folder(tiny_run, monkeypatch):
    root = tiny_run
    out = root / "per-layer"
    result = invoke("compress", "classification", "--workdir", root / "run", "--keep", "conv1=0.25,fc1=0.5,0.75",
                    "--samples", "50", "--out", out)
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.splitlines()[0] == ("classification: spectral keep 0.75, conv1=0.25, fc1=0.5 "
                                             "(conv1 4->1, conv2 8->6, fc1 16->8, fc2 12->9)")
    report = json.loads((out / "compression.json").read_text())
    assert report["keep"] == 0.75 and report["layer_keep"] == {"conv1": 0.25, "fc1": 0.5}
    assert json.loads((out / "config.json").read_text())["params"]["filters"] == [1, 6]
    # only named layers are pruned when no bare fraction is given
    result = invoke("compress", "classification", "--workdir", root / "run", "--keep", "fc2=0.5", "--samples", "50")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "(conv1 4->4, conv2 8->8, fc1 16->16, fc2 12->6)" in result.stdout.splitlines()[0]
    assert (root / "run-spectral-keep1_fc2=0.5" / "compression.json").is_file()  # the default --out names the keep
    before = sorted(p.name for p in root.iterdir())
    result = invoke("compress", "classification", "--workdir", root / "run", "--keep", "conv3=0.5")
    assert result.exit_code == 2 and "error: --keep conv3=...: not a prunable layer of this model; prunable: " \
        "conv1, conv2, fc1, fc2" in result.stderr, result.output
    # a failure after the new folder was started (here the export) removes it: no half-written run
    from kerasapps.errors import UsageError
    from kerasapps.training.runner import TaskRun

    def unwritable(self, *args, **kwargs):
        raise UsageError("export dir is not writable (simulated)")

    monkeypatch.setattr(TaskRun, "export", unwritable)
    result = invoke("compress", "classification", "--workdir", root / "run", "--keep", "0.5", "--samples", "50",
                    "--fine-tune-epochs", "0.25", "--out", root / "failed")
    assert result.exit_code == 2 and "error: export dir is not writable (simulated)" in result.stderr, result.output
    assert sorted(p.name for p in root.iterdir()) == before


@pytest.mark.slow
def test_resnet20_plan_prunes_residual_streams_and_inner_convolutions_exactly_when_half_the_channels_are_copies():
    import keras
    import tensorflow as tf
    from kerasapps_classification.task import ClassificationConfig, ClassificationTask

    from kerasapps.compression.surgery import (
        check_plan,
        choose_channels,
        measure_feature_covariances,
        narrow_weights,
        transfer_weights,
    )

    keras.utils.set_random_seed(0)
    task = ClassificationTask(ClassificationConfig(model="resnet20"),
                              info={"class_names": list("abcd"), "image_size": 16, "channels": 3})
    model = task.build_model()
    plan = task.compression_plan(model)
    check_plan(model, plan)
    assert plan.names()[:2] == ["stage1", "stage1_block1_a_conv"] and plan.tied_names()["stem_conv"] == "stage1"
    assert plan.groups[4].producers == ("stage2_block1_proj", "stage2_block1_b_conv", "stage2_block2_b_conv",
                                        "stage2_block3_b_conv")
    assert plan.groups[8].reads[-1].features == "pool" and plan.groups[8].reads[-1].consumers == ("logits",)
    # Every convolution's second half of filters copies its first half, and so does every
    # BatchNormalization (with statistics of its own): each stream's second half of channels then
    # equals its first wherever it is read, as do the blocks' inner channels.
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization)):
            weights = layer.get_weights()
            if isinstance(layer, keras.layers.BatchNormalization):
                weights = [w + shift for w, shift in zip(weights, (0.1, 0.1, 0.05, 0.5))]
            half = weights[0].shape[-1] // 2
            layer.set_weights([np.concatenate([w[..., :half]] * 2, axis=-1) for w in weights])
    images = np.random.default_rng(0).uniform(0, 255, (40, 16, 16, 3)).astype("float32")  # > 32: pooled features
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(40))).batch(20)
    covariances = measure_feature_covariances(model, plan, data, samples=40)
    expected = model.predict_on_batch(images)
    for keep, stages in ((1.0, (16, 32, 64)), (0.5, (8, 16, 32))):
        # a tiny ridge: a channel kept for one read may be dead (all zero) at another
        choices = choose_channels(model, plan, covariances, keep, ridge=1e-9)
        assert list(choices["stage2"].read_fits) == ["stage2_block1_out", "stage2_block2_out", "stage2_block3_out"]
        overrides = plan.config_overrides({name: choice.width for name, choice in choices.items()})
        assert overrides == {"stage_widths": stages, "inner_widths": tuple(w for w in stages for _ in range(3))}
        narrow = ClassificationTask(kerasapps.config.apply_overrides(task.config, overrides), info=task.info) \
            .build_model()
        transfer_weights(model, narrow, narrow_weights(model, plan, choices))
        assert narrow.get_layer("stem_conv").kernel.shape == (3, 3, 3, stages[0])
        assert narrow.get_layer("stage3_block1_proj").kernel.shape == (1, 1, stages[1], stages[2])
        assert narrow.get_layer("logits").kernel.shape == (stages[2], 4)
        np.testing.assert_allclose(narrow.predict_on_batch(images), expected, atol=1e-5)
    # without the re-fit every consumer loses the copies' contribution: the function changes
    transfer_weights(model, narrow, narrow_weights(model, plan, choose_channels(model, plan, covariances, 0.5,
                                                                                "random")))
    assert np.abs(narrow.predict_on_batch(images) - expected).max() > 1e-3
    with pytest.raises(kerasapps.UsageError, match="9 widths"):
        kerasapps.config.apply_overrides(ClassificationConfig(), {"inner_widths": "8,8"})
    with pytest.raises(kerasapps.UsageError, match="3 widths"):
        kerasapps.config.apply_overrides(ClassificationConfig(), {"stage_widths": "8,8"})
