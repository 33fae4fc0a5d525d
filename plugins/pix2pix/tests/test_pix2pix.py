"""pix2pix end to end through the real CLI: train, evaluate against both baselines, progress grids,
export; the SavedModel turns a PNG into a PNG in a process that imports only TensorFlow."""

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("kerasapps_pix2pix")

from kerasapps.testing import run_cli as cli  # noqa: E402
from kerasapps.testing import check_export  # noqa: E402

pytestmark = pytest.mark.slow
TINY = ["--epochs", "1", "--batch-size", "16", "--set", "train_examples=64", "--set", "eval_examples=32",
        "--set", "image_size=32", "--set", "generator_filters=8", "--set", "discriminator_filters=8"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pix2pix")
    result = cli("run", "pix2pix", *TINY, cwd=root, check=0)
    return root, result


def write_png(path, height, width, channels=3):
    rng = np.random.default_rng(height * width)
    path.write_bytes(tf.io.encode_png(rng.integers(0, 256, (height, width, channels), dtype=np.uint8)).numpy())
    return path


def test_run_reports_quality_against_both_baselines_and_writes_grids(trained):
    root, result = trained
    assert "identity (input as output)" in result.stdout and "generator before training" in result.stdout
    metrics = json.loads((root / "runs/pix2pix/metrics.json").read_text())["metrics"]
    for prefix in ("", "identity_", "untrained_"):
        assert 0 <= metrics[f"{prefix}l1"] <= 1 and metrics[f"{prefix}psnr"] > 0 and -1 <= metrics[f"{prefix}ssim"] <= 1
    assert metrics["untrained_l1"] != metrics["l1"]  # the baseline really ran other weights
    history = json.loads((root / "runs/pix2pix/metrics.json").read_text())["history"]
    assert {"d_loss", "g_loss", "gan_loss", "l1_loss", "val_l1", "val_psnr", "val_ssim"} <= set(history[0])
    grid = tf.io.decode_png((root / "runs/pix2pix/progress/epoch_001.png").read_bytes())
    assert grid.shape == (4 * 32 + 3 * 2, 3 * 32 + 2 * 2, 3)  # 4 rows of input | target | output
    samples = sorted((root / "runs/pix2pix/samples").glob("sample_*.png"))
    assert len(samples) == 8 and tf.io.decode_png(samples[0].read_bytes()).shape == (32, 100, 3)
    assert "exported: saved_models/pix2pix/1" in result.stdout


def test_saved_model_turns_pngs_into_pngs_of_the_inputs_size_with_only_tensorflow(trained, tmp_path):
    root, _ = trained
    rgb, grey, rgba = (write_png(tmp_path / f"{name}.png", h, w, c)
                       for name, h, w, c in (("rgb", 28, 40, 3), ("grey", 50, 20, 1), ("rgba", 32, 32, 4)))
    # check_export: serving_default in a process that imports only tensorflow (never kerasapps), then predict.
    served = check_export(root / "saved_models/pix2pix/1", [rgb, grey, rgba], out=tmp_path / "preds")
    shapes = [png["image_shape"] for png in served.serving["png_bytes"]["values"]]
    assert shapes == [[28, 40, 3], [50, 20, 3], [32, 32, 3]], shapes


def test_predict_writes_the_generated_png(trained, tmp_path):
    from kerasapps.serving.predict import predict_inputs

    root, _ = trained
    png = write_png(tmp_path / "labels.png", 28, 40)
    # What `kerasapps predict --json` prints, in this process (check_export above runs the command itself).
    record, = json.loads(json.dumps(list(predict_inputs(root / "saved_models/pix2pix/1", [str(png)],
                                                        tmp_path / "preds")), default=str))
    assert record["png_bytes"] == str(tmp_path / "preds" / "labels_png.png")
    assert tf.io.decode_png((tmp_path / "preds" / "labels_png.png").read_bytes()).shape == (28, 40, 3)
