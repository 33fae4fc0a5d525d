"""The example plugins outside plugins/ hold to the contract (kerasapps.testing), loaded in-process with -p."""

import pytest

from tests.conftest import ROOT
from kerasapps.testing import check_task, write_scene_images

pytestmark = pytest.mark.slow
DENOISING = ROOT / "examples" / "denoising"


def test_denoising_example_beats_the_noisy_input_and_serves_pngs_at_their_own_size(tmp_path):
    assert len((DENOISING / "denoising_task.py").read_text().splitlines()) < 150
    images = write_scene_images(tmp_path / "inputs", count=2, size=40)
    result = check_task("denoising", tmp_path / "check", inputs=images, plugins=["denoising_task"],
                        pythonpath=[DENOISING],
                        run_args=["--epochs", "2", "--set", "train_examples=512", "--set", "eval_examples=64"])
    metrics = result.metrics
    assert metrics["psnr"] > metrics["noisy_psnr"] + 1.0, metrics  # the model removes noise
    assert metrics["psnr_gain_db"] == pytest.approx(metrics["psnr"] - metrics["noisy_psnr"])
    assert 0.0 < metrics["noisy_ssim"] < metrics["ssim"] <= 1.0
    served = result.serving["png_bytes"]
    assert (served["shape"], served["dtype"]) == ([2], "string")
    assert [png["image_shape"] for png in served["values"]] == [[40, 40, 3]] * 2
    import tensorflow as tf

    for record, image in zip(result.predictions, images):
        cleaned = tf.io.decode_png(open(record["png_bytes"], "rb").read())
        assert cleaned.shape == (40, 40, 3)  # PNG out at the input's own size (a JPEG in, too)
