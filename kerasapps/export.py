"""Versioned SavedModel export in TensorFlow Serving's layout.

``<export_dir>/<task>/<version>/`` with version the next integer. The model is
written to a hidden temporary folder beside it and renamed into place, so a
server watching the folder never sees half a model.

Example::

    path = export_saved_model(task, model, "saved_models")   # saved_models/classification/3
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

from kerasapps.errors import UsageError

METADATA_ASSET = "kerasapps.json"


def next_version(task_dir: pathlib.Path) -> int:
    """1 + the highest integer folder name in ``task_dir`` (1 when there is none)."""
    versions = [int(p.name) for p in task_dir.iterdir() if p.is_dir() and p.name.isdigit()] if task_dir.is_dir() else []
    return max(versions, default=0) + 1


def _writable_task_dir(export_dir, task_name) -> pathlib.Path:
    task_dir = pathlib.Path(export_dir) / task_name
    try:
        task_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create export directory {task_dir}: {exc.strerror or exc}") from None
    if not os.access(task_dir, os.W_OK | os.X_OK):
        raise UsageError(f"export directory {task_dir} is not writable")
    return task_dir


def export_saved_model(task, model, export_dir, metadata: dict | None = None) -> pathlib.Path:
    """Export ``model`` with the task's serving function as ``serving_default``.

    Task name, config and ``task.export_assets()`` travel in the SavedModel's
    ``assets/kerasapps.json``.
    Returns the version folder's path.
    """
    import keras

    task_dir = _writable_task_dir(export_dir, task.name)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=".export-", dir=task_dir))
    try:
        meta = {"task": task.name, **(metadata or {}), **task.export_assets()}
        archive = keras.export.ExportArchive()
        archive.track(model)
        for resource in task.serving_resources():
            archive.track(resource)
        archive.add_endpoint("serving_default", task.serving_function(model))
        archive.write_out(str(staging / "model"), verbose=False)
        # The serving graph holds what it needs (class names are constants in it);
        # this file tells people and tools what the model is.
        assets = staging / "model" / "assets"
        assets.mkdir(exist_ok=True)
        (assets / METADATA_ASSET).write_text(json.dumps(meta, indent=2, default=str))
        while True:  # another exporter may take the same number: retry with the next
            final = task_dir / str(next_version(task_dir))
            try:
                os.rename(staging / "model", final)
                break
            except OSError:
                if not final.exists():
                    raise
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)

