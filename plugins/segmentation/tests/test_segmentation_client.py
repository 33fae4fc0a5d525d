"""The task's evaluation on folder: data is what a client sees: masks served by the exported
model at each file's own size, void ignored. benchmarks/segmentation_client_score.py (TensorFlow
and numpy only) must find the very figures metrics.json holds."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from kerasapps.data import shapes
from kerasapps.testing import run_cli as cli

pytest.importorskip("kerasapps_segmentation")
ROOT = pathlib.Path(__file__).resolve().parents[3]  # the repository: benchmarks/ lives there

CLASSES = "name,r,g,b\n" + "".join(
    f"{name},{r},{g},{b}\n" for name, (r, g, b) in zip(shapes.MASK_CLASS_NAMES, shapes.MASK_COLOURS)
) + "Void,255,255,255\n"
VOID_ID = len(shapes.MASK_CLASS_NAMES)  # the 6th class of the list

pytestmark = pytest.mark.slow  # one CLI run (about 30 s on 2 cores)
# (split, file, height): 48x64 files, one shorter so a served batch comes padded with -1.
FILES = [("train", f"t{i}", 48) for i in range(8)] + [("val", "v0", 48), ("val", "v1", 40), ("val", "v2", 48)]


def png(path, array):
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(array, np.uint8)
    path.write_bytes(tf.io.encode_png(array if array.ndim == 3 else array[..., None]).numpy())


def write_folder(root):
    """CamVid's layout: <split>/x.png + <split>annot/x.png (class ids, void on the top row)."""
    for index, (split, name, height) in enumerate(FILES):
        scene = shapes.generate_scene(index, "train", seed=3, image_size=64)
        label = scene["mask"][:height].copy()
        label[0] = VOID_ID
        png(root / split / f"{name}.png", scene["image"][:height])
        png(root / f"{split}annot" / f"{name}.png", label)
    (root / "class_dict.csv").write_text(CLASSES)
    return root


def test_client_scoring_the_export_at_native_size_matches_the_tasks_evaluation(tmp_path):
    data = write_folder(tmp_path / "data")
    # The model works at 32x48, not the files' 48x64: scoring at the model's size would differ.
    cli("run", "segmentation", "--dataset", f"folder:{data}", "--epochs", "1", "--batch-size", "4",
        "--set", "width=8", "--set", "image_size=32,48", "--samples", "0", cwd=tmp_path, check=0)
    task = json.loads((tmp_path / "runs/segmentation/metrics.json").read_text())["metrics"]
    # The client runs where kerasapps cannot be imported: only TensorFlow reads the SavedModel.
    blocked = tmp_path / "blocked"
    for package in ("kerasapps", "kerasapps_segmentation"):
        (blocked / package).mkdir(parents=True)
        (blocked / package / "__init__.py").write_text("raise ImportError('the client must not need kerasapps')\n")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.segmentation_client_score", str(tmp_path / "saved_models/segmentation/1"),
         str(data), "--split", "val", "--void", str(VOID_ID)],
        cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=f"{blocked}:{ROOT}", TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = json.loads(result.stdout.splitlines()[-1])
    labelled = 2 * 47 * 64 + 39 * 64  # every native pixel but the void rows
    assert client["labelled_pixels"] == labelled and np.sum(task["confusion_matrix"]) == labelled
    assert client["confusion_matrix"] == task["confusion_matrix"]
    for name in ("pixel_accuracy", "class_accuracy", "mean_iou"):
        assert abs(client[name] - task[name]) < 1e-9, (name, client[name], task[name])
    assert set(task["at_model_size"]) == {"pixel_accuracy", "class_accuracy", "mean_iou"}
