"""From a command line to a finished run: config, strategy, data, model, engine, export.

The CLI parses options into :class:`RunOptions`; :class:`TaskRun` does the rest.
Task-agnostic: everything task-specific is behind the :class:`kerasapps.task.Task` API.

Example::

    registry = discover()
    run = TaskRun(registry, RunOptions(task="classification", epochs=1))
    run.train(); run.evaluate(); run.export()
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

from kerasapps.config import apply_overrides, check_memory, check_run_settings, load_config_file
from kerasapps.data import parse_dataset_spec
from kerasapps.errors import UsageError, tf_error_cause
from kerasapps.folder_links import check_folder_links
from kerasapps.workdir_lock import check_writable_dir, hold_workdir_lock

# Run options that are not task hyperparameters (saved beside them in config.json).
RUN_KEYS = ("dataset", "data_dir", "strategy", "tpu", "precision", "jit_compile", "seed", "workdir", "export_dir")
# Task config fields that also have their own command-line option.
COMMON_CONFIG_OPTIONS = ("epochs", "steps_per_epoch", "batch_size")
# Changing these does not make an old backup unusable.
RESUMABLE_CHANGES = {"epochs", "early_stopping_patience", "steps_per_execution", "allow_links_outside_folder"}


@dataclasses.dataclass
class RunOptions:
    """What the command line said (None: not given)."""

    task: str
    dataset: str | None = None
    data_dir: str | None = None
    strategy: str | None = None
    tpu: str | None = None
    precision: str | None = None
    jit_compile: bool | None = None
    seed: int | None = None
    workdir: str | None = None
    export_dir: str | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    batch_size: int | None = None
    config_file: str | None = None
    overrides: dict = dataclasses.field(default_factory=dict)
    fresh: bool = False
    progress_bar: bool | None = None
    # evaluate/export: start from the config the workdir was trained with (when no --config).
    use_workdir_config: bool = False


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


def weights_checksum(model) -> str:
    """SHA-256 (first 16 hex digits) of all the model's weights, in order."""
    import numpy as np

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def decoding_errors_as_usage_errors(source=None):
    """A data file that passed the header check but cannot be decoded (truncated, say)
    surfaces inside tf.data as InvalidArgumentError: report it as the user's data problem,
    naming the file when the data is a ``folder:`` dataset."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.InvalidArgumentError as exc:
        cause = tf_error_cause(exc)
        if any(word in cause.lower() for word in ("decode", "image", "png", "jpeg", "gif", "bmp", "webp")):
            from kerasapps.images import find_undecodable_image

            bad = find_undecodable_image(source.path) if getattr(source, "kind", None) == "folder" else None
            if bad is not None:
                raise UsageError(f"{bad} could not be decoded ({cause}); remove or replace it") from None
            raise UsageError(
                f"a data file could not be decoded ({cause}); look for a truncated or corrupt file in the dataset"
            ) from None
        raise


def resolve_config(registry, options: RunOptions) -> tuple[type, dict, object]:
    """Return (task class, resolved config dict, task config dataclass).

    Precedence: task defaults < ``--config FILE`` (or, with ``use_workdir_config``, the
    workdir's saved ``config.json``) < command-line options < ``--set``.
    """
    task_class = registry.task(options.task).load()
    run = {
        "dataset": task_class.default_dataset,
        "data_dir": None,
        "strategy": "auto",
        "tpu": None,
        "precision": "auto",
        "jit_compile": None,
        "seed": 0,
        "workdir": f"runs/{options.task}",
        "export_dir": "saved_models",
    }
    params: dict = {}
    config_file = options.config_file
    if not config_file and options.use_workdir_config:
        trained = pathlib.Path(options.workdir or run["workdir"]) / "config.json"
        config_file = str(trained) if trained.is_file() else None
    if config_file:
        data = load_config_file(config_file)
        if data.get("task", options.task) != options.task:
            raise UsageError(f"config file {config_file} is for task {data['task']!r}, not {options.task!r}")
        nested = data.get("params") or {}
        if not isinstance(nested, dict):
            raise UsageError(f"config file {config_file}: 'params' must be a mapping")
        params.update(nested)
        for key, value in data.items():
            if key in RUN_KEYS:
                run[key] = value
            elif key not in ("task", "params", "metrics", "kerasapps_version"):
                params[key] = value
    for key in RUN_KEYS:
        value = getattr(options, key)
        if value is not None:
            run[key] = value
    for key in COMMON_CONFIG_OPTIONS:
        value = getattr(options, key)
        if value is not None:
            params[key] = value
    params.update(options.overrides)
    run = check_run_settings(run)
    config = apply_overrides(task_class.Config(), params)  # checks every field's declared limits
    check_memory(config)
    from kerasapps import __version__

    resolved = {"task": options.task, **run, "params": dataclasses.asdict(config), "kerasapps_version": __version__}
    return task_class, resolved, config


class TaskRun:
    """One task run (train / evaluate / export) from resolved options."""

    def __init__(self, registry, options: RunOptions):
        self.registry = registry
        self.options = options
        self.task_class, self.resolved, self.config = resolve_config(registry, options)
        self.source = parse_dataset_spec(self.resolved["dataset"], registry, self.resolved["data_dir"])
        if self.source.kind == "folder":
            check_folder_links(self.source.path, allow=self.config.allow_links_outside_folder)
        self.workdir = pathlib.Path(self.resolved["workdir"])
        self.task = None
        self.model = None
        self.trainer = None
        self.datasets = None
        self._started = time.perf_counter()

    # -- set-up --------------------------------------------------------------
    def _prepare_workdir(self, for_training: bool) -> None:
        check_writable_dir(self.workdir, "workdir")
        if for_training and self._writes_shared_files():  # a job's other workers share the chief's workdir
            self.workdir_lock = hold_workdir_lock(self.workdir)
        saved = self.workdir / "config.json"
        backup = self.workdir / "backup"
        if for_training and self.options.fresh:
            for name in ("backup", "logs", "best.weights.h5", "task_info.json", "training_log.csv", "metrics.json"):
                target = self.workdir / name
                shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        elif for_training and backup.is_dir() and saved.exists():
            old = load_config_file(saved)
            new = json.loads(json.dumps(self.resolved, default=str))  # tuples read back as lists
            old_params = old["params"] if isinstance(old.get("params"), dict) else {}
            changed = sorted(
                k for k in set(old_params) | set(new["params"])
                if old_params.get(k) != new["params"].get(k) and k not in RESUMABLE_CHANGES
            )
            if old.get("dataset") != new["dataset"]:
                changed.insert(0, "dataset")
            if changed:
                raise UsageError(
                    f"workdir {self.workdir} holds a run with a different config ({', '.join(changed)} changed); "
                    "add --fresh to start over there, or choose another --workdir"
                )
        if for_training and self._writes_shared_files():
            write_json_atomic(saved, self.resolved)

    def _writes_shared_files(self) -> bool:
        """False on the non-chief workers of a multi-worker run (decided from TF_CONFIG,
        before the strategy exists): only the chief writes the workdir's shared files."""
        if self.resolved["strategy"] != "multi-worker":
            return True
        from kerasapps import distribute

        return distribute.tf_config_is_chief(distribute.check_tf_config())

    def _setup_runtime(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from kerasapps import distribute

        self.virtual_cpus = distribute.configure_virtual_cpus()
        import keras

        keras.utils.set_random_seed(int(self.resolved["seed"]))
        self.strategy = distribute.resolve_strategy(self.resolved["strategy"], self.resolved["tpu"])
        self.precision = distribute.resolve_precision(self.resolved["precision"], self.strategy,
                                                      cpu_bfloat16=self.task_class.cpu_bfloat16)
        keras.mixed_precision.set_global_policy(self.precision)
        self.jit_compile = distribute.resolve_jit_compile(self.resolved["jit_compile"], self.strategy)
        self.is_chief = distribute.is_chief(self.strategy)
        self.multi_worker = distribute.is_multi_worker(self.strategy)
        if not self.is_chief:
            # TensorFlow's multi-worker rule: only the chief writes final files; the others
            # write what they must (checkpoints are collective) to scratch, removed at exit.
            resolver = self.strategy.cluster_resolver
            # One fixed name per worker: a rerun clears what a killed worker left behind.
            self.scratch_dir = self.workdir / f".{resolver.task_type}-{resolver.task_id}-scratch"
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
            self.scratch_dir.mkdir(parents=True)
            atexit.register(shutil.rmtree, self.scratch_dir, True)
        else:
            self.scratch_dir = self.workdir

    def _make_task(self, info=None):
        import tensorflow as tf

        self.task = self.task_class(self.config, self.source, info=info, seed=int(self.resolved["seed"]))
        # TPUs compile for static shapes: every batch full.
        self.task.drop_remainder = isinstance(self.strategy, tf.distribute.TPUStrategy)
        self.task.jit_compile = self.jit_compile

    def _build(self, need_data: bool) -> None:
        info_path = self.workdir / "task_info.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else None
        self._make_task(info)
        if need_data:
            self.datasets = self.task.build_datasets()
            if self.is_chief:
                write_json_atomic(info_path, self.task.info)
        elif info is None:
            raise UsageError(f"{self.workdir} holds no trained {self.task.name} run (no task_info.json); train first")
        from kerasapps.engine import Trainer

        with self.strategy.scope():
            self.model = self.task.build_model()
            if need_data:
                self.task.build_training_state(self.model, next(iter(self.datasets["train"])))
        self.trainer = Trainer(self.model, self.strategy, jit_compile=self.jit_compile,
                               steps_per_execution=self.config.steps_per_execution, state_built=need_data)

    def _load_trained_weights(self) -> str:
        best = self.scratch_dir / "best.weights.h5"
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:  # the file holds its variables too
            with self.strategy.scope():
                optimizer.build(self.model.trainable_variables)
        if best.exists() and self.task.monitor is not None:
            with self._weights_must_fit(best):
                self.model.load_weights(str(best))
            return str(best)
        from kerasapps.engine import ResumableBackup

        backup = ResumableBackup(self.scratch_dir / "backup", self.model, write=False,
                                 restore_from=self.workdir / "backup")
        with self._weights_must_fit(self.workdir / "backup"):
            restored = backup.restore()
        if restored == 0:
            raise UsageError(f"no trained weights in {self.workdir} (no best.weights.h5 or backup/); train first")
        return str(self.workdir / "backup")

    @contextlib.contextmanager
    def _weights_must_fit(self, source):
        """Weights that do not fit the model built from the workdir's config: one message naming
        the options its config.json does not record (added since it was trained, so now at
        their defaults), instead of Keras's traceback."""
        try:
            yield
        except ValueError as exc:
            try:
                recorded = json.loads((self.workdir / "config.json").read_text()).get("params", {})
            except (OSError, ValueError):
                recorded = {}
            absent = [f"{k}={v}" for k, v in dataclasses.asdict(self.config).items() if k not in recorded]
            hint = (f"; its config.json does not record {', '.join(absent)} (options added since, now at their "
                    "defaults): pass the values it was trained with, --set KEY=VALUE" if absent else
                    "; pass the options it was trained with (--set KEY=VALUE)")
            raise UsageError(f"the weights in {source} do not fit the {self.task.name} model built from "
                             f"{self.workdir / 'config.json'} ({str(exc).splitlines()[0]}){hint}") from None

    # -- steps ---------------------------------------------------------------
    def train(self) -> dict:
        """Train (resuming from the workdir's backup); returns the training summary."""
        import keras

        from kerasapps.engine import BestWeights, EpochLineLogger, HistoryCSV, ResumableBackup, StopOnNaN

        self._prepare_workdir(for_training=True)
        self._setup_runtime()
        with decoding_errors_as_usage_errors(self.source):
            self._build(need_data=True)
        config = self.config
        backup_dir = self.workdir / "backup"
        backup = ResumableBackup(self.scratch_dir / "backup", self.model, restore_from=backup_dir)
        initial_epoch = backup.restore()
        history = backup.history
        if initial_epoch >= config.epochs:
            print(f"{self.task.name}: all {initial_epoch} epochs are trained already in {backup_dir}", flush=True)
        elif initial_epoch:
            print(f"resuming {self.task.name} from {backup_dir}: epoch {initial_epoch + 1}/{config.epochs}", flush=True)
        callbacks = [StopOnNaN()]
        if self.task.monitor is not None:  # None: the last epoch's weights are the result (GANs)
            monitored = [h[self.task.monitor] for h in history if self.task.monitor in h]
            best_value = None
            if monitored:
                best_value = max(monitored) if self.task.monitor_mode == "max" else min(monitored)
            # The best file's own record wins: it may hold an epoch killed after it was written
            # and before its backup (written first, so that no backed-up epoch loses its weights).
            recorded = BestWeights.recorded(self.scratch_dir / "best.weights.h5")
            if recorded and recorded["monitor"] == self.task.monitor:
                best_value = recorded["value"]
            callbacks.append(BestWeights(self.scratch_dir / "best.weights.h5", self.task.monitor,
                                         self.task.monitor_mode, best_value))
        callbacks.append(backup)
        if self.is_chief:
            callbacks += [
                HistoryCSV(self.workdir / "training_log.csv", backup),
                keras.callbacks.TensorBoard(str(self.workdir / "logs")),
            ]
        if config.early_stopping_patience and self.task.monitor is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(self.task.monitor, mode=self.task.monitor_mode,
                                              patience=config.early_stopping_patience)
            )
        # On every worker (a callback that predicts runs collective ops), writing to scratch off the chief.
        callbacks += list(self.task.training_callbacks(self.model, self.datasets, self.scratch_dir))
        for extra in self.registry.plugin_manager.hook.kerasapps_training_callbacks(
            task=self.task, config=self.resolved, workdir=self.workdir
        ):
            callbacks.extend(extra or ())
        progress_bar = self.options.progress_bar if self.options.progress_bar is not None else sys.stdout.isatty()
        if not progress_bar:
            callbacks.append(EpochLineLogger(config.epochs))
        started = time.perf_counter()
        if initial_epoch < config.epochs:
            with decoding_errors_as_usage_errors(self.source):
                self.trainer.fit(
                    self.datasets["train"],
                    epochs=config.epochs,
                    steps_per_epoch=config.steps_per_epoch,
                    validation_data=self.datasets["validation"],
                    callbacks=callbacks,
                    initial_epoch=initial_epoch,
                    progress_bar=progress_bar,
                )
        history = backup.history
        if self.multi_worker:  # the workers' copies must be equal: show it, so anyone can check
            print(f"final weights checksum: {weights_checksum(self.model)}", flush=True)
        steps = self.trainer.steps_per_epoch or config.steps_per_epoch or self.trainer.num_batches(self.datasets["train"])
        timed = [h for h in history if "train_seconds" in h] or history
        # Epoch 1 includes graph tracing; leave it out when there is more than one.
        steady = timed[1:] if len(timed) > 1 else timed
        seconds = sum(h.get("train_seconds", h["seconds"]) for h in steady)
        return {
            "epochs_completed": len(history),
            "resumed_from_epoch": initial_epoch,
            "history": history,
            "train_examples_per_second": round(steps * config.batch_size * len(steady) / seconds, 1) if seconds else None,
            "training_seconds_this_invocation": round(time.perf_counter() - started, 2),
            "training_seconds_all_epochs": round(sum(h["seconds"] for h in history), 2),
        }

    def evaluate(self) -> dict:
        """Metrics of the best (else latest) weights on the test split."""
        if self.model is None:
            self._setup_runtime()
            self._build(need_data=True)
        weights = self._load_trained_weights()
        with decoding_errors_as_usage_errors(self.source):
            metrics = self.task.evaluate(self.trainer, self.datasets["test"])
        return {"weights": weights, "test": metrics}

    def export(self) -> pathlib.Path:
        if self.model is None:
            self._setup_runtime()
            self._build(need_data=False)
            self._load_trained_weights()
        if not self.is_chief:
            return None
        from kerasapps.export import export_saved_model

        meta = {"config": self.resolved, "kerasapps_version": self.resolved["kerasapps_version"]}
        return export_saved_model(self.task, self.model, self.resolved["export_dir"], meta)

    def samples(self, count: int = 5) -> list[str]:
        """Lines describing held-out predictions (every worker must call it: predicting may be
        collective; only the chief's lines are worth printing)."""
        return self.task.describe_predictions(self.model, self.datasets["test"], count)

    def sample_pictures(self) -> list:
        directory = self.scratch_dir / "samples"
        directory.mkdir(parents=True, exist_ok=True)
        return self.task.save_samples(self.model, self.datasets["test"], directory)

    def finish(self) -> None:
        """Wait for every worker before exiting: the chief hosts the cluster's coordination
        service, and a chief that leaves first makes the others' last calls fail."""
        if getattr(self, "multi_worker", False):
            import tensorflow as tf

            @tf.function
            def barrier():
                return self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(lambda: tf.constant(1.0)),
                                            axis=None)

            barrier()

    def write_metrics(self, **parts) -> pathlib.Path:
        path = self.workdir / "metrics.json"
        if not self.is_chief:
            return path
        from kerasapps import distribute

        previous = json.loads(path.read_text()) if path.exists() else {}
        data = {
            "task": self.task.name,
            "dataset": self.resolved["dataset"],
            "config": self.resolved,
            # (TensorFlow's class behind MultiWorkerMirroredStrategy is CollectiveAllReduceStrategy.)
            "strategy": "MultiWorkerMirroredStrategy" if self.multi_worker else type(self.strategy).__name__,
            "workers": distribute.worker_count(self.strategy),
            "replicas": self.strategy.num_replicas_in_sync,
            "precision": self.precision,
            "jit_compile": self.jit_compile,
        }
        # `evaluate` alone keeps the training record of an earlier `run`/`train`.
        for key in ("epochs_completed", "history", "train_examples_per_second", "training_seconds_all_epochs"):
            if key in previous:
                data[key] = previous[key]
        data.update({k: v for k, v in parts.items() if v is not None})
        data["wall_time_seconds"] = round(time.perf_counter() - self._started, 2)
        write_json_atomic(path, data)
        return path
