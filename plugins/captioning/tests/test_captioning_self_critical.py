"""Self-critical sequence training (objective=self_critical): the CIDEr-D rewards of sampled
captions, and a trained run fine-tuned on them end to end."""

import csv
import dataclasses
import json
import pathlib

import numpy as np
import pytest
from click.testing import CliRunner

import kerasapps
from kerasapps.api import END_ID, CiderD
from kerasapps.testing import check_export, write_scene_images
from kerasapps_captioning.models import self_critical_rewards

SMALL = dict(epochs=1, batch_size=8, train_examples=64, eval_examples=16, image_size=32, cnn_filters=(8, 16), max_caption_length=8,
             embed_dim=16, lstm_units=16, beam_size=1, decoder="merge", verbose=0)


def test_rewards_score_each_sample_against_its_own_images_references():
    # Two images, two references each (token ids; weight 0 past <end> and for an empty slot).
    refs = [[(5, 6, 7), (5, 8)], [(9, 10, 11, 12)]]
    scorer = CiderD(refs + [[(13, 14)], [(5, 9)]])
    targets = np.zeros([2, 2, 6], np.int64)
    weights = np.zeros([2, 2, 6], np.float32)
    for image, image_refs in enumerate(refs):
        for slot, ref in enumerate(image_refs):
            targets[image, slot, :len(ref) + 1] = (*ref, END_ID)
            weights[image, slot, :len(ref) + 1] = 1
    words = np.array([[5, 6, 7, END_ID, 9, 9],      # image 0: a reference word for word, then noise after <end>
                      [9, 10, END_ID, 5, 6, 7],     # image 0: another image's words
                      [9, 10, 11, 12, 13, 14],      # image 1: no <end>: every word counts
                      [END_ID, 9, 10, 11, 12, 0]])  # image 1: the empty caption
    rewards = self_critical_rewards(scorer, 2, words, targets, weights)
    assert rewards.dtype == np.float32 and rewards.shape == (4,)
    expected = [scorer.score((5, 6, 7), refs[0]), scorer.score((9, 10), refs[0]),
                scorer.score((9, 10, 11, 12, 13, 14), refs[1]), 0.0]
    np.testing.assert_allclose(rewards, expected, rtol=1e-6)
    assert rewards[0] > 0 and rewards[2] > 0 and rewards[1] == rewards[3] == 0  # nothing shared, nothing said


def test_self_critical_fine_tunes_a_trained_run(tmp_path):
    with pytest.raises(kerasapps.UsageError, match=r"objective=self_critical fine-tunes a trained captioning run: "
                                                   r"--set initial_weights="):
        kerasapps.train("captioning", **SMALL, objective="self_critical", workdir=tmp_path / "refused")
    kerasapps.train("captioning", **SMALL, min_word_count=1, workdir=tmp_path / "xe")
    run = kerasapps.run("captioning", **{**SMALL, "epochs": 2}, objective="self_critical",
                        initial_weights=str(tmp_path / "xe"), learning_rate=1e-3, lr_schedule="constant",
                        workdir=tmp_path / "sc", export_dir=tmp_path / "saved", samples=0)
    # The words are the first run's (min_word_count=1), not this run's default (2).
    info = {name: json.loads((tmp_path / name / "task_info.json").read_text()) for name in ("xe", "sc")}
    assert info["sc"]["vocabulary"] == info["xe"]["vocabulary"]
    with open(tmp_path / "sc" / "training_log.csv") as handle:
        log = list(csv.DictReader(handle))
    assert len(log) == 2 and {"reward", "policy_loss", "val_loss"} <= set(log[0])
    assert all(0 <= float(row["reward"]) <= 10 and np.isfinite(float(row["policy_loss"])) for row in log)
    # It started from the first run's weights and moved off them; the last epoch's are kept (no best-loss pick).
    from kerasapps.training.transfer import read_trained_run

    first = read_trained_run(tmp_path / "xe", task="captioning").build_model()
    # Before its own weights are restored, the fine-tuning run's model holds the first run's network
    # and a fresh Adam: the first run's step count and moments are not carried over.
    assert int(first.optimizer.iterations) > 0
    sc_run = read_trained_run(tmp_path / "sc", task="captioning")
    start = sc_run.build_model(load_weights=False)
    for a, b in zip(first.weights, start.weights):
        np.testing.assert_array_equal(a, b)
    assert int(start.optimizer.iterations) == 0
    start.optimizer.build(start.trainable_variables)
    assert all(not np.any(v.numpy()) for v in start.optimizer.variables if v.name not in ("iteration", "learning_rate"))
    tuned = kerasapps.evaluate("captioning", workdir=tmp_path / "sc", verbose=0).model
    moved = [not np.allclose(a, b) for a, b in zip(first.get_layer("logits").get_weights(),
                                                     tuned.get_layer("logits").get_weights())]
    assert any(moved)
    assert 0 < np.abs(first.get_layer("logits").get_weights()[0] - tuned.get_layer("logits").get_weights()[0]).max() < 1
    # It keeps its last epoch (no best.weights.h5): read as a trained run, its weights are the backup's,
    # the ones evaluation used, so it can start another run (more self-critical epochs, say).
    assert pathlib.Path(sc_run.weights) == tmp_path / "sc" / "backup"
    for a, b in zip(sc_run.build_model().weights, tuned.weights):
        np.testing.assert_array_equal(a, b)
    # ...and it can: a further self-critical run starting from it holds its weights before training.
    without_record = {k: v for k, v in info["sc"].items() if k != "initial_run"}

    def rebuilt(**params):  # the run's model with other settings, as a new run with them would build it
        run = dataclasses.replace(sc_run, params={**sc_run.params, **params}, info=dict(without_record))
        return run.build_model(load_weights=False)

    for a, b in zip(rebuilt(initial_weights=str(tmp_path / "sc")).weights, tuned.weights):
        np.testing.assert_array_equal(a, b)
    narrow = rebuilt(lstm_units=8, objective="cross_entropy", initial_weights="none")
    with pytest.raises(kerasapps.UsageError, match=r"the weights in .*backup do not fit the captioning model"):
        sc_run.load_weights(narrow)
    metrics = json.loads((tmp_path / "sc" / "metrics.json").read_text())
    assert "cider_d" in metrics["metrics"]
    result = check_export(run.export_path, write_scene_images(tmp_path / "inputs", count=2), out=tmp_path / "served")
    assert all(isinstance(c, str) for c in result.serving["caption"]["values"])
    with pytest.raises(kerasapps.UsageError, match=r"initial_weights=.*xe: the weights in .* do not fit"):
        kerasapps.train("captioning", **{**SMALL, "lstm_units": 8}, objective="self_critical",
                        initial_weights=str(tmp_path / "xe"), workdir=tmp_path / "other")


def test_self_critical_under_xla_is_one_error_line(tmp_path):
    """Its CIDEr-D reward runs on the host (tf.numpy_function): XLA cannot compile the step, so
    --jit-compile is refused before anything is read or trained (on a GPU, XLA's default, the run
    turns XLA off instead: tests/test_config.py)."""
    from kerasapps.cli import cli as kerasapps_cli

    result = CliRunner().invoke(kerasapps_cli, [
        "train", "captioning", "--set", "objective=self_critical", "--set", f"initial_weights={tmp_path / 'xe'}",
        "--jit-compile", "--workdir", str(tmp_path / "sc")], catch_exceptions=True)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: --jit-compile: objective=self_critical scores its sampled captions with CIDEr-D on "
                     "the host (tf.numpy_function), which XLA cannot compile; run without --jit-compile"]
    assert not (tmp_path / "sc" / "backup").exists()
