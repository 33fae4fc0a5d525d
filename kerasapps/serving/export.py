"""Versioned SavedModel export in TensorFlow Serving's layout.
(LiteRT and ONNX files are published the same way, under ``<task>-<format>/``:
:mod:`kerasapps.serving.formats`.)

``<export_dir>/<task>/<version>/`` with version the next integer. The model is
written to a hidden temporary folder beside it and renamed into place, so a
server watching the folder never sees half a model.

Example::

    path = export_saved_model(task, model, "saved_models")   # saved_models/classification/3
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import shutil
import sys
import tempfile

from kerasapps.errors import UsageError

METADATA_ASSET = "kerasapps.json"


def next_version(task_dir: pathlib.Path) -> int:
    """1 + the highest integer name in ``task_dir`` (1 when there is none).

    Every entry counts, not only folders: a file or a dangling link named ``3`` cannot
    become version 3, so the next version goes past it instead of colliding with it.
    """
    names = os.listdir(task_dir) if task_dir.is_dir() else []
    return max((int(name) for name in names if name.isdigit()), default=0) + 1


def _remove_stale_staging(task_dir: pathlib.Path) -> None:
    """Remove the ``.export-PID-*`` staging folders of exports whose process is gone (killed
    mid-export); another exporter's live staging folder is left alone."""
    for staging in task_dir.glob(".export-*"):
        pid = staging.name.split("-")[2] if staging.name.count("-") >= 2 else ""
        if pid.isdigit() and _process_alive(int(pid)):
            continue
        shutil.rmtree(staging, ignore_errors=True)


def _warn_incomplete_versions(task_dir: pathlib.Path) -> None:
    """Say so when a version-numbered entry is not a whole SavedModel (not written by an export,
    which renames whole models into place): it is left alone, and skipped for the next number."""
    for name in sorted(os.listdir(task_dir)):
        if name.isdigit() and not (task_dir / name / "saved_model.pb").is_file():
            kind = "a file or link" if not (task_dir / name).is_dir() else "a folder without saved_model.pb"
            print(f"warning: {task_dir / name} is {kind}, not an exported model; left alone, "
                  "and the next version number goes past it", file=sys.stderr, flush=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writable_task_dir(export_dir, task_name) -> pathlib.Path:
    task_dir = pathlib.Path(export_dir) / task_name
    try:
        task_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create export directory {task_dir}: {exc.strerror or exc}") from None
    if not os.access(task_dir, os.W_OK | os.X_OK):
        raise UsageError(f"export directory {task_dir} is not writable")
    return task_dir


@contextlib.contextmanager
def _quiet_tensorflow_logger():
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def export_saved_model(task, model, export_dir, metadata: dict | None = None) -> pathlib.Path:
    """Export ``model`` with the task's serving function as ``serving_default``: the model with
    its BatchNormalizations folded into the convolutions before them where it can be
    (:func:`kerasapps.serving.folding.fold_batch_normalization`), the same answers for less work.

    Task name, config and ``task.export_assets()`` travel in the SavedModel's
    ``assets/kerasapps.json``.
    Returns the version folder's path.
    """
    import keras

    from kerasapps.serving.folding import fold_batch_normalization

    task_dir = _writable_task_dir(export_dir, task.name)
    _remove_stale_staging(task_dir)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".export-{os.getpid()}-", dir=task_dir))
    try:
        meta = {"task": task.name, **(metadata or {}), **task.export_assets()}
        archive = keras.export.ExportArchive()
        served = fold_batch_normalization(model)  # the same answers with fewer operations per call
        archive.track(served)
        for resource in task.serving_resources():
            archive.track(resource)
        archive.add_endpoint("serving_default", task.serving_function(served))
        with _quiet_tensorflow_logger():  # its "INFO:tensorflow:Assets written to ..." (a notebook shows it)
            archive.write_out(str(staging / "model"), verbose=False)
        # The serving graph holds what it needs (class names are constants in it);
        # this file tells people and tools what the model is.
        assets = staging / "model" / "assets"
        assets.mkdir(exist_ok=True)
        (assets / METADATA_ASSET).write_text(json.dumps(meta, indent=2, default=str))
        _warn_incomplete_versions(task_dir)
        return _rename_into_next_version(staging / "model", task_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _rename_into_next_version(folder: pathlib.Path, task_dir: pathlib.Path) -> pathlib.Path:
    """Rename ``folder`` (inside ``task_dir``) to ``task_dir``'s next version number."""
    for _attempt in range(100):  # another exporter may take the same number: retry with the next
        final = task_dir / str(next_version(task_dir))
        try:
            # One rename: the version appears whole or not at all. (Renaming onto an existing
            # folder fails unless it is empty; an empty folder is no version, so that is fine.)
            os.rename(folder, final)
            return final
        except OSError as exc:
            if not os.path.lexists(final):
                raise UsageError(f"cannot move the exported model into {final}: {exc.strerror or exc}") from None
    raise UsageError(f"could not find a free version number in {task_dir} after 100 tries")


def publish_version(folder, export_dir, model_name: str) -> pathlib.Path:
    """Copy ``folder`` (a finished export, written anywhere) into ``<export_dir>/<model_name>/``
    as its next version, atomically: copied into a hidden ``.export-*`` staging folder there, then
    renamed into place. Returns the version folder.

    Example::

        publish_version(scratch / "model", "saved_models", "classification-litert")   # .../1
    """
    task_dir = _writable_task_dir(export_dir, model_name)
    _remove_stale_staging(task_dir)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".export-{os.getpid()}-", dir=task_dir))
    try:
        shutil.copytree(folder, staging / "model")
        return _rename_into_next_version(staging / "model", task_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
