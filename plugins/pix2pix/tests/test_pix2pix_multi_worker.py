"""pix2pix under `kerasapps launch`: a GAN's own train_step (two optimizers, generator and
discriminator updates) trains identical replicas on two real worker processes.
(Moved from tests/test_multi_worker.py, whose launches now train the core's fake task.)"""

import json

import pytest

from tests.conftest import launch as _launch, process_alive as _alive, worker_checksums as _checksums

pytest.importorskip("kerasapps_pix2pix")


def test_launch_two_workers_trains_the_adversarial_pix2pix_identically(tmp_path):
    status, lines, pids = _launch(
        tmp_path, "--workers", 2, "pix2pix", "--epochs", 2, "--batch-size", 8, "--set", "train_examples=64",
        "--set", "eval_examples=16", "--set", "image_size=32", "--set", "generator_filters=8",
        "--set", "discriminator_filters=8", "--samples", 0)
    output = "\n".join(lines)
    assert status == 0, output[-4000:]
    checksums = _checksums(lines)  # every generator and discriminator weight
    assert set(checksums) == {0, 1} and checksums[0] == checksums[1], checksums
    assert sorted(p.name for p in (tmp_path / "saved_models" / "pix2pix").iterdir()) == ["1"]
    history = json.loads((tmp_path / "runs" / "pix2pix" / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and all(h["d_loss"] > 0 for h in history)
    assert not [pid for pid in pids.values() if _alive(pid)]
