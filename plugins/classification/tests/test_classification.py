"""The classification task end to end: through the real CLI (train, export, serve, predict, resume
after kill -9) and in this process (kerasapps.run/train/evaluate/export, no TensorFlow import each)."""

import contextlib
import io
import json
import os
import subprocess

import numpy as np
import pytest

import kerasapps
from kerasapps.testing import run_cli as cli

# Small enough for 2 CPU cores: one epoch of a few hundred 32x32 images.
TINY = ["--epochs", "1", "--batch-size", "32", "--set", "train_examples=256", "--set", "eval_examples=64",
        "--set", "image_size=32"]
SMALL = dict(epochs=1, batch_size=32, train_examples=256, eval_examples=64, image_size=32)  # TINY, in this process
from kerasapps.testing import check_export

pytestmark = pytest.mark.slow


def write_shape_pngs(folder, count=3, size=48):
    """PNG files of held-out shapes scenes (any size: the SavedModel resizes)."""
    import tensorflow as tf

    from kerasapps.data import shapes

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        scene = shapes.generate_scene(i, "test", seed=123, image_size=size)
        path = folder / f"scene{i}.png"
        path.write_bytes(tf.io.encode_png(scene["image"]).numpy())
        paths.append((path, shapes.CLASS_NAMES[scene["label"]]))
    return paths


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny `kerasapps run classification`, then the same run again in this process
    (kerasapps.run, verbose=2: what the command prints), from the same folder."""
    root = tmp_path_factory.mktemp("run")
    first = cli("run", "classification", *TINY, cwd=root, check=0)
    printed = io.StringIO()
    with contextlib.chdir(root), contextlib.redirect_stdout(printed):
        kerasapps.run("classification", **SMALL, verbose=2)
    second = subprocess.CompletedProcess([], 0, printed.getvalue(), "")
    return root, first, second


def test_run_twice_exports_versions_1_and_2(trained):
    root, first, second = trained
    assert "exported: saved_models/classification/1" in first.stdout
    assert "exported: saved_models/classification/2" in second.stdout
    assert "sample predictions (held-out):" in first.stdout and "true:" in first.stdout
    versions = sorted(p.name for p in (root / "saved_models" / "classification").iterdir())
    assert versions == ["1", "2"]  # no temporary folder left behind
    metrics = json.loads((root / "runs" / "classification" / "metrics.json").read_text())
    assert metrics["task"] == "classification" and metrics["dataset"] == "shapes"
    assert metrics["config"]["params"]["epochs"] == 1
    assert 0.0 <= metrics["metrics"]["accuracy"] <= 1.0
    assert metrics["train_examples_per_second"] > 0
    assert metrics["export_path"] == "saved_models/classification/2"
    assert [h["epoch"] for h in metrics["history"]] == [1]
    assert metrics["wall_time_seconds"] > 0
    meta = json.loads((root / "saved_models/classification/1/assets/kerasapps.json").read_text())
    assert meta["task"] == "classification" and len(meta["class_names"]) == 24
    assert meta["config"]["params"]["image_size"] == 32


def test_saved_model_serves_png_in_a_process_with_only_tensorflow(trained, tmp_path):
    root, _, _ = trained
    (png, _label), = write_shape_pngs(tmp_path, count=1)
    # check_export: serving_default in a process that imports only tensorflow (never kerasapps), then predict.
    served = check_export(root / "saved_models/classification/2", [png, png], out=tmp_path / "preds")
    scores = served.serving["scores"]
    assert scores["shape"] == [2, 24], scores["shape"]
    assert abs(sum(scores["values"][0]) - 1.0) < 1e-4
    from kerasapps.data import shapes

    label, class_id = served.serving["label"]["values"][0], served.serving["class_id"]["values"][0]
    assert label == shapes.CLASS_NAMES[int(class_id)]
    assert [p["label"] for p in served.predictions] == [label, label]


def test_saved_model_cli_run_prints_a_label(trained, tmp_path):
    root, _, _ = trained
    (png, _), = write_shape_pngs(tmp_path, count=1)
    npy = tmp_path / "input.npy"
    np.save(npy, np.array([png.read_bytes()], dtype=object), allow_pickle=True)
    result = subprocess.run(
        ["saved_model_cli", "run", "--dir", str(root / "saved_models/classification/1"), "--tag_set", "serve",
         "--signature_def", "serving_default", "--inputs", f"image_bytes={npy}"],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr
    from kerasapps.data import shapes

    assert "Result for output key label" in result.stdout
    assert any(f"b'{name}'" in result.stdout for name in shapes.CLASS_NAMES)


def test_predict_gives_labels_and_rejects_corrupt_files(trained, tmp_path):
    from kerasapps.serving.predict import predict_inputs

    root, _, _ = trained
    pngs = write_shape_pngs(tmp_path, count=2)
    # What `kerasapps predict` runs, in this process (check_export above runs the command itself).
    model = root / "saved_models/classification/1"
    records = list(predict_inputs(model, [str(p) for p, _ in pngs], tmp_path / "preds"))
    assert [r["input"] for r in records] == [str(p) for p, _ in pngs]
    from kerasapps.data import shapes

    assert all(r["label"] in shapes.CLASS_NAMES for r in records)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"this is not an image")
    with pytest.raises(kerasapps.UsageError) as refused:
        list(predict_inputs(model, [str(corrupt)], tmp_path / "preds"))
    assert f"{corrupt} is not a PNG, JPEG, GIF, BMP or WebP image" in str(refused.value)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(pngs[0][0].read_bytes()[:40])
    with pytest.raises(kerasapps.UsageError) as refused:
        list(predict_inputs(model, [str(truncated)], tmp_path / "preds"))
    assert str(truncated) in str(refused.value)


def test_evaluate_and_export_reuse_the_workdir(trained, tmp_path, monkeypatch, capsys):
    root, _, _ = trained
    monkeypatch.chdir(root)
    result = kerasapps.evaluate("classification", **SMALL, verbose=2)
    assert "test: loss" in capsys.readouterr().out and result.scored_split == "test"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(kerasapps.UsageError, match="cannot create export directory"):
        kerasapps.export("classification", **SMALL, export_dir=blocker / "models", verbose=0)
    good = kerasapps.export("classification", **SMALL, export_dir=tmp_path / "exports", verbose=0)
    assert (tmp_path / "exports/classification/1/saved_model.pb").exists(), good.export_path


def test_killed_run_resumes_at_the_next_epoch(tmp_path):
    args = ["train", "classification", "--epochs", "5", "--batch-size", "32", "--set", "train_examples=1500",
            "--set", "eval_examples=64", "--set", "image_size=32"]
    from tests.conftest import kill_at_checkpoint

    completed = kill_at_checkpoint(tmp_path, args, marker="ckpt-2")
    assert 2 <= completed < 5
    # Resumed in this process (kerasapps.train, one line per epoch): what `kerasapps train` runs.
    printed = io.StringIO()
    with contextlib.chdir(tmp_path), contextlib.redirect_stdout(printed):
        kerasapps.train("classification", epochs=5, batch_size=32, train_examples=1500, eval_examples=64,
                        image_size=32, verbose=2)
    again = printed.getvalue()
    assert f"epoch {completed + 1}/5" in again
    assert f"epoch {completed}/5 " not in again  # nothing before k+1 was trained again
    first_line = next(line for line in again.splitlines() if line.startswith("epoch "))
    assert first_line.startswith(f"epoch {completed + 1}/5")
    metrics = json.loads((tmp_path / "runs/classification/metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3, 4, 5]
    assert metrics["epochs_completed"] == 5 and metrics["resumed_from_epoch"] == completed


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    result = cli("train", "classification", *TINY, "--strategy", "mirrored", cwd=tmp_path,
                 env={"KERASAPPS_VIRTUAL_CPUS": "2"}, check=0)
    metrics = json.loads((tmp_path / "runs/classification/metrics.json").read_text())
    assert metrics["strategy"] == "MirroredStrategy" and metrics["replicas"] == 2, result.stdout
    assert np.isfinite(metrics["history"][0]["loss"])


def test_folder_dataset_and_its_errors(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for split, count in (("train", 12), ("test", 4)):
        for cls in ("cats", "dogs"):
            write_shape_pngs(data / split / cls, count=count, size=20)
    monkeypatch.chdir(tmp_path)
    folder = dict(dataset=f"folder:{data}", verbose=0)
    result = kerasapps.run("classification", **folder, epochs=1, batch_size=8)
    info = json.loads((tmp_path / "runs/classification/task_info.json").read_text())
    assert info == {"class_names": ["cats", "dogs"], "image_size": 20, "channels": 3}
    assert (result.export_path / "saved_model.pb").exists()
    (data / "test" / "dogs" / "broken.png").write_text("garbage")
    with pytest.raises(kerasapps.UsageError, match="broken.png is not a PNG"):
        kerasapps.train("classification", **folder, fresh=True)
    (data / "test" / "dogs" / "broken.png").unlink()
    truncated = data / "train" / "cats" / "truncated.png"
    truncated.write_bytes((data / "train" / "cats" / "scene0.png").read_bytes()[:60])
    with pytest.raises(kerasapps.UsageError, match="could not be decoded"):
        kerasapps.train("classification", **folder, fresh=True)
    truncated.unlink()
    (data / "test" / "birds").mkdir()
    write_shape_pngs(data / "test" / "birds", count=1, size=20)
    with pytest.raises(kerasapps.UsageError, match="classes not in train: birds"):
        kerasapps.train("classification", **folder, fresh=True)
