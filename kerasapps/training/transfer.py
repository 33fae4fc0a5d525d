"""A trained run's Keras model, rebuilt from its folder: for a task that starts from the
weights another task trained (captioning's image encoder from a classification run).

A run folder (``--workdir``) records what rebuilds its model: ``config.json`` (the task and
its params), ``task_info.json`` (what the task learnt from its data) and ``best.weights.h5``
(or, for a run that keeps its last epoch's weights, its ``backup/`` checkpoint).
:func:`read_trained_run` reads and checks the two JSON files (no TensorFlow); the
:class:`TrainedRun` it returns is JSON-able, so a task can keep it in its own ``info`` and
rebuild the network later without the folder.

Example::

    run = read_trained_run("runs/classification", task="classification")
    network = run.build_model()      # the classification task's model, the run's weights loaded
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import warnings

from kerasapps.errors import UsageError

WEIGHTS_FILE = "best.weights.h5"
BACKUP_DIR = "backup"  # the resumable checkpoint, which also holds the last epoch's weights


@dataclasses.dataclass
class TrainedRun:
    """What rebuilds a trained run's model: its task, params, task info and weights file."""

    folder: str
    weights: str
    task: str
    params: dict
    info: dict

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TrainedRun":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})

    @property
    def weights_available(self) -> bool:
        """True while the run's weights are on disk: its weights file, or the backup checkpoint of a
        run that keeps its last epoch. A task that recorded the run can rebuild its model without
        them (its own weights replace them later) and should then skip loading them.

        Example: ``model = run.build_model(load_weights=run.weights_available)``
        """
        return pathlib.Path(self.weights).exists()

    def build_model(self, load_weights: bool = True, info_overrides: dict | None = None):
        """The run's task builds its model from the recorded params and info (entries of
        ``info_overrides`` replace the info's, e.g. ``image_size`` to rebuild a network for
        another input size); with ``load_weights`` the run's weights are loaded into it.

        Weights that do not fit the rebuilt model are a UsageError naming the file.
        """
        from kerasapps.config import apply_overrides
        from kerasapps.registry import discover

        task_class = discover().load_task(self.task)
        known = {f.name for f in dataclasses.fields(task_class.Config)}
        config = apply_overrides(task_class.Config(), {k: v for k, v in self.params.items() if k in known})
        task = task_class(config, info={**self.info, **(info_overrides or {})})
        model = task.build_model()
        if load_weights:
            self.load_weights(model)
        return model

    def load_weights(self, model) -> None:
        """Load the run's weights file (or last-epoch checkpoint) into ``model`` (one built by
        :meth:`build_model`)."""
        weights = pathlib.Path(self.weights)
        if weights.is_dir():
            return self._load_backup(model, weights)
        if not weights.is_file():
            raise UsageError(f"{weights} not found: the {self.task} weights to start from are gone")
        optimizer = getattr(model, "optimizer", None)  # none before compile: the file's optimizer state is skipped
        if optimizer is not None and not optimizer.built:  # the file holds the optimizer's variables too
            optimizer.build(model.trainable_variables)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model.load_weights(str(weights))
            except ValueError as exc:  # Keras's warnings about the same mismatch are left out
                raise UsageError(f"the weights in {weights} do not fit the {self.task} model rebuilt from "
                                 f"{self.folder}/config.json ({_shape_mismatch(str(exc))})") from None
        for warning in caught:
            if str(warning.message).startswith("Skipping variable loading for optimizer"):
                continue  # the other run's optimizer state: transfer takes its network's weights only
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)

    def _load_backup(self, model, backup: pathlib.Path) -> None:
        """The model's variables from the latest checkpoint in ``backup`` (the optimizer's state and
        the epoch record stay behind, unless the model tracks its optimizers, as a GAN does)."""
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(str(backup))
        if latest is None:
            raise UsageError(f"{backup} holds no checkpoint: the {self.task} weights to start from are gone")
        try:
            status = tf.train.Checkpoint(model=model).restore(latest).expect_partial()
            status.assert_existing_objects_matched()
        except (ValueError, AssertionError) as exc:
            raise UsageError(f"the weights in {backup} do not fit the {self.task} model rebuilt from "
                             f"{self.folder}/config.json ({_shape_mismatch(str(exc))})") from None


def _shape_mismatch(message: str) -> str:
    """The variable and the two shapes in Keras's load_weights error, else its first line."""
    shapes = re.search(r"variable\.shape=(\(.*?\)), Received: value\.shape=(\(.*?\))", message)
    variable = re.search(r"Target variable: <Variable path=([^,]+)", message)
    if shapes and variable:
        return f"{variable.group(1)}: {shapes.group(2)} in the file, {shapes.group(1)} in the model"
    return message.splitlines()[0]


def read_trained_run(path, task: str | None = None) -> TrainedRun:
    """Read the run folder ``path`` (or ``path`` = a ``.weights.h5`` file inside one) and check
    that it holds a trained run, of ``task`` when given. No TensorFlow is imported.

    Returns a :class:`TrainedRun` (its folder, weights file, task and config; ``build_model()`` rebuilds the
    model).
    """
    path = pathlib.Path(path).expanduser()
    kind = f"a kerasapps {task} run" if task else "a kerasapps run"
    if not path.exists():
        raise UsageError(f"{path} not found: expected {kind} (its --workdir folder, or the {WEIGHTS_FILE} in it)")
    if path.is_dir():
        folder, weights = path, path / WEIGHTS_FILE
        if not weights.is_file() and not (path / BACKUP_DIR / "checkpoint").is_file():
            raise UsageError(f"{path} holds no {WEIGHTS_FILE}: expected {kind} that finished an epoch")
    elif path.name.endswith(".weights.h5"):
        folder, weights = path.parent, path
    else:
        raise UsageError(f"{path} is neither a run folder nor a .weights.h5 file: expected {kind}")
    records = {}
    for name in ("config.json", "task_info.json"):
        try:
            records[name] = json.loads((folder / name).read_text())
        except FileNotFoundError:
            raise UsageError(f"{folder} has no {name}: expected {kind} (the folder `kerasapps train` wrote)") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"{folder / name} cannot be read: {exc}") from None
    config = records["config.json"]
    if not isinstance(config, dict) or not isinstance(config.get("params"), dict) or "task" not in config:
        raise UsageError(f"{folder}/config.json records no task and params: expected {kind}")
    if task and config["task"] != task:
        raise UsageError(f"{folder} is a {config['task']} run, not {kind}")
    last_epoch = not weights.is_file() or config["params"].get("restore_best_weights") is False
    if path.is_dir() and last_epoch and (folder / BACKUP_DIR / "checkpoint").is_file():
        # Its result is the last epoch's weights (a GAN, self-critical training, restore_best_weights=false),
        # as evaluation and export read it.
        weights = folder / BACKUP_DIR
    return TrainedRun(str(folder), str(weights), config["task"], config["params"], records["task_info.json"])


__all__ = ["TrainedRun", "read_trained_run"]
