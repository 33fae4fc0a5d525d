"""A run's folder (``--workdir``): what lives where, whether its backup may be resumed, metrics.json.

Layout::

    config.json        the resolved config of the last training run
    task_info.json     what the task learnt from its data (class names, vocabulary ...)
    backup/            the last completed epochs: model, optimizer, epoch, history
    best.weights.h5    the weights of the best monitored epoch
    training_log.csv   one row per epoch
    logs/              TensorBoard
    metrics.json       the last run's figures (training record kept by a later `evaluate`)
    samples/           pictures of held-out predictions

Example::

    folder = Workdir("runs/classification")
    folder.check_resumable(resolved)       # UsageError if the backup was trained differently
    folder.write_metrics({"task": "classification", "metrics": {...}})
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

from kerasapps.config import load_config_file
from kerasapps.errors import UsageError

# Changing these does not make an old backup unusable.
RESUMABLE_CHANGES = {"epochs", "early_stopping_patience", "steps_per_execution", "allow_links_outside_folder"}
# What `train --fresh` removes.
TRAINING_STATE = ("backup", "logs", "best.weights.h5", "task_info.json", "training_log.csv", "metrics.json")
# `evaluate` alone keeps the training record of an earlier `run`/`train`.
TRAINING_RECORD = ("epochs_completed", "history", "train_examples_per_second", "training_seconds_all_epochs")


def write_json_atomic(path, data) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it into place.

    The temporary name is unique per writer, so processes that write the same file at
    once (workers sharing a workdir) never rename each other's half-written files.
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(data, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


class Workdir:
    """The files of one run folder; see the module docstring for the layout."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.config_file = self.path / "config.json"
        self.task_info_file = self.path / "task_info.json"
        self.backup = self.path / "backup"
        self.best_weights = self.path / "best.weights.h5"
        self.training_log = self.path / "training_log.csv"
        self.logs = self.path / "logs"
        self.metrics_file = self.path / "metrics.json"

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create workdir {self.path}: {exc.strerror or exc}") from None

    def clear_training_state(self) -> None:
        """``--fresh``: remove the checkpoints, logs and records of earlier training."""
        for name in TRAINING_STATE:
            target = self.path / name
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)

    def check_resumable(self, resolved: dict, data_fields=()) -> None:
        """UsageError if the folder holds a backup trained with another config: params other than
        those that may change on resume (epochs ..., and the task's ``data_fields``) or the dataset."""
        if not (self.backup.is_dir() and self.config_file.exists()):
            return
        old = load_config_file(self.config_file)  # a malformed saved config is one error naming it
        new = json.loads(json.dumps(resolved, default=str))  # tuples read back as lists
        old_params = old["params"] if isinstance(old.get("params"), dict) else {}
        new_params = new["params"]
        changed = sorted(k for k in set(old_params) | set(new_params)
                         if old_params.get(k) != new_params.get(k) and k not in RESUMABLE_CHANGES
                         and k not in data_fields)
        if old.get("dataset") != new["dataset"]:
            changed.insert(0, "dataset")
        if changed:
            raise UsageError(
                f"workdir {self.path} holds a run with a different config ({', '.join(changed)} changed); "
                "add --fresh to start over there, or choose another --workdir"
            )

    def recorded_params(self) -> dict:
        """The task params config.json records ({} if it cannot be read)."""
        try:
            return json.loads(self.config_file.read_text()).get("params", {})
        except (OSError, ValueError):
            return {}

    def read_task_info(self) -> dict | None:
        return json.loads(self.task_info_file.read_text()) if self.task_info_file.exists() else None

    def write_metrics(self, data: dict) -> pathlib.Path:
        """Write metrics.json, keeping the training record of an earlier run when ``data`` has none."""
        previous = json.loads(self.metrics_file.read_text()) if self.metrics_file.exists() else {}
        data = dict(data)
        for key in TRAINING_RECORD:
            if key in previous and key not in data:
                data[key] = previous[key]
        write_json_atomic(self.metrics_file, data)
        return self.metrics_file


__all__ = ["RESUMABLE_CHANGES", "Workdir", "write_json_atomic"]
