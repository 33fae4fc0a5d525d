"""The segmentation task end to end, through the real CLI: train, evaluate (mIoU exact across
replicas), export, serve masks at each input's own size, predict colour masks."""

import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from kerasapps.testing import run_cli as cli

# Small enough for 2 CPU cores: one epoch of a few hundred 32x32 images.
TINY = ["--epochs", "1", "--batch-size", "32", "--set", "train_examples=256", "--set", "eval_examples=64",
        "--set", "image_size=32"]
from kerasapps.testing import check_export
from kerasapps.data import shapes

pytestmark = pytest.mark.slow
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
TEST_PIXELS = 64 * 32 * 32  # eval_examples x image_size**2 in TINY


def write_png(path, width=40, height=28, index=0):
    """A held-out shapes scene resized to width x height (not the model's 32x32)."""
    scene = shapes.generate_scene(index, "test", seed=7, image_size=64)
    image = tf.cast(tf.round(tf.image.resize(scene["image"], (height, width))), tf.uint8)
    path.write_bytes(tf.io.encode_png(image).numpy())
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    result = cli("run", "segmentation", *TINY, cwd=root, check=0)
    return root, result


def test_run_evaluates_exports_and_writes_sample_panels(trained):
    root, result = trained
    assert "per-class IoU (test):" in result.stdout and "test: loss" in result.stdout
    assert "mean_iou" in result.stdout and "exported: saved_models/segmentation/1" in result.stdout
    metrics = json.loads((root / "runs/segmentation/metrics.json").read_text())["metrics"]
    assert 0 <= metrics["mean_iou"] <= 1 and 0 <= metrics["pixel_accuracy"] <= 1
    assert list(metrics["per_class_iou"]) == list(shapes.MASK_CLASS_NAMES)
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.sum() == TEST_PIXELS  # every test pixel counted exactly once
    assert metrics["pixel_accuracy"] == pytest.approx(np.trace(confusion) / TEST_PIXELS, abs=1e-6)
    samples = sorted((root / "runs/segmentation/samples").glob("*.png"))
    assert len(samples) == 8
    panel = tf.io.decode_png(samples[0].read_bytes())
    assert panel.shape == (32, 3 * 32 + 4, 3)  # image | truth | prediction
    meta = json.loads((root / "saved_models/segmentation/1/assets/kerasapps.json").read_text())
    assert meta["class_names"] == list(shapes.MASK_CLASS_NAMES)
    assert meta["colours"] == [list(c) for c in shapes.MASK_COLOURS]


def test_saved_model_returns_masks_at_each_inputs_own_size_with_only_tensorflow(trained, tmp_path):
    root, _ = trained
    small = write_png(tmp_path / "small.png", 40, 28)
    tall = write_png(tmp_path / "tall.png", 20, 50, index=1)
    # check_export: serving_default in a process that imports only tensorflow (never kerasapps), then predict.
    export = root / "saved_models/segmentation/1"
    one = check_export(export, [small], out=tmp_path / "one").serving
    assert one["mask"]["dtype"] == "int32" and one["mask"]["shape"] == [1, 28, 40], one["mask"]["shape"]
    mask = np.array(one["mask"]["values"][0])
    assert 0 <= mask.min() and mask.max() < 5
    colour = one["png_bytes"]["values"][0]
    assert colour["image_shape"] == [28, 40, 3]
    palette = np.array([list(c) for c in shapes.MASK_COLOURS], np.uint8)
    np.testing.assert_array_equal(np.array(colour["pixels"]), palette[mask])
    both = check_export(export, [small, tall], out=tmp_path / "both").serving
    masks = np.array(both["mask"]["values"])
    assert masks.shape == (2, 50, 40), masks.shape
    np.testing.assert_array_equal(masks[0, :28, :40], mask)
    assert (masks[0, 28:] == -1).all() and (masks[1, :, 20:] == -1).all() and (masks[1, :, :20] >= 0).all()
    assert both["png_bytes"]["values"][1]["image_shape"] == [50, 20, 3]


def test_saved_model_cli_run_gives_a_mask_of_the_pngs_size(trained, tmp_path):
    root, _ = trained
    png = write_png(tmp_path / "in.png", 40, 28)
    npy = tmp_path / "input.npy"
    np.save(npy, np.array([png.read_bytes()], dtype=object), allow_pickle=True)
    result = subprocess.run(
        ["saved_model_cli", "run", "--dir", str(root / "saved_models/segmentation/1"), "--tag_set", "serve",
         "--signature_def", "serving_default", "--inputs", f"image_bytes={npy}", "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, env=ENV,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    mask = np.load(tmp_path / "out" / "mask.npy")
    assert mask.shape == (1, 28, 40) and mask.dtype == np.int32


def test_predict_writes_the_colour_mask_and_a_panel(trained, tmp_path):
    from kerasapps.serving.predict import predict_inputs

    root, _ = trained
    png = write_png(tmp_path / "street.png", 40, 28)
    # What `kerasapps predict --json` prints, in this process (check_export above runs the command itself).
    record, = json.loads(json.dumps(list(predict_inputs(root / "saved_models/segmentation/1", [str(png)],
                                                        tmp_path / "preds")), default=str))
    assert record["mask"] == "<int32 array of shape [28, 40]>"
    colour = tf.io.decode_png((tmp_path / "preds" / "street_png.png").read_bytes())
    assert record["png_bytes"] == str(tmp_path / "preds" / "street_png.png") and colour.shape == (28, 40, 3)
    panel = tf.io.decode_png((tmp_path / "preds" / "street_panel.png").read_bytes())
    assert panel.shape == (28, 80, 3)


def test_mirrored_two_replicas_count_every_test_pixel_once(tmp_path):
    # Two training steps are enough for a finite loss; the counting is evaluation's (all 64 test images).
    cli("run", "segmentation", *TINY, "--strategy", "mirrored", "--samples", "0", "--set", "model=unet",
        "--set", "width=8", "--steps-per-epoch", "2", cwd=tmp_path, env={"KERASAPPS_VIRTUAL_CPUS": "2"}, check=0)
    data = json.loads((tmp_path / "runs/segmentation/metrics.json").read_text())
    assert data["strategy"] == "MirroredStrategy" and data["replicas"] == 2
    assert np.array(data["metrics"]["confusion_matrix"]).sum() == TEST_PIXELS
    assert np.isfinite(data["history"][0]["loss"])
