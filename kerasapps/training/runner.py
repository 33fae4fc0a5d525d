"""From a command line to a finished run: config, strategy, data, model, engine, export.

The CLI parses options into :class:`RunOptions` (declared in ``kerasapps.training.options``);
:class:`TaskRun` does the rest, with the run folder's files in a :class:`kerasapps.training.workdir.Workdir`
and the strategy, precision and workers in a :class:`kerasapps.training.runtime.Runtime`.
Task-agnostic: everything task-specific is behind the :class:`kerasapps.api.Task` API.

Example::

    registry = discover()
    run = TaskRun(registry, RunOptions(task="classification", epochs=1))
    run.train(); run.evaluate(); run.export()
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import pathlib
import time

from kerasapps.config import apply_overrides, check_memory, check_run_settings, load_config_file
from kerasapps.data.sources import parse_dataset_spec
from kerasapps.errors import UsageError, tf_error_cause
from kerasapps.data.folder_links import check_folder_links
from kerasapps.training.options import COMMON_CONFIG_OPTIONS, RUN_KEYS, RUN_OPTIONS, RunOptions
from kerasapps.training.runtime import Runtime, writes_shared_files
from kerasapps.training.workdir import RESUMABLE_CHANGES, Workdir, write_json_atomic
from kerasapps.training.lock import check_writable_dir, hold_workdir_lock


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
            from kerasapps.data.images import find_undecodable_image

            bad = find_undecodable_image(source.path) if getattr(source, "kind", None) == "folder" else None
            if bad is not None:
                raise UsageError(f"{bad} could not be decoded ({cause}); remove or replace it") from None
            raise UsageError(
                f"a data file could not be decoded ({cause}); look for a truncated or corrupt file in the dataset"
            ) from None
        raise


def resolve_config(registry, options: RunOptions) -> tuple[type, dict, object]:
    """Return (task class, resolved config dict, task config dataclass).

    Precedence: task defaults < ``--recipe NAME`` < ``--config FILE`` (without either, with
    ``use_workdir_config``, the workdir's saved ``config.json``) < command-line options < ``--set``.
    """
    task_class = registry.load_task(options.task)
    run = {o.name: o.resolve_default(task_class, options.task) for o in RUN_OPTIONS if o.kind == "run"}
    params: dict = {}
    if options.recipe:
        from kerasapps.recipes import find_recipe

        recipe = find_recipe(task_class, options.task, options.recipe)
        _apply_config_file(recipe.load(), f"recipe {options.recipe!r}", options.task, run, params)
    config_file = options.config_file
    if not config_file and not options.recipe and options.use_workdir_config:
        trained = pathlib.Path(options.workdir or run["workdir"]) / "config.json"
        config_file = str(trained) if trained.is_file() else None
    if config_file:
        _apply_config_file(load_config_file(config_file), f"config file {config_file}", options.task, run, params)
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


def _apply_config_file(data: dict, label: str, task: str, run: dict, params: dict) -> None:
    """Settings of a config file (``label`` names it in errors) into ``run`` and ``params``."""
    if data.get("task", task) != task:
        raise UsageError(f"{label} is for task {data['task']!r}, not {task!r}")
    nested = data.get("params") or {}
    if not isinstance(nested, dict):
        raise UsageError(f"{label}: 'params' must be a mapping")
    params.update(nested)
    for key, value in data.items():
        if key in RUN_KEYS:
            run[key] = value
        elif key not in ("task", "params", "metrics", "kerasapps_version"):
            params[key] = value


def _first_examples(dataset, inputs_of, count: int):
    """The model inputs of a batched dataset's first ``count`` examples, as one numpy array."""
    import numpy as np

    parts, have = [], 0
    for batch in dataset:
        inputs = np.asarray(inputs_of(batch))
        parts.append(inputs[: count - have])
        have += len(parts[-1])
        if have >= count:
            break
    if not parts:
        raise UsageError("the split has no examples to check or calibrate the export with")
    return np.concatenate(parts)


class TaskRun:
    """One task run (train / evaluate / export) from resolved options."""

    def __init__(self, registry, options: RunOptions):
        self.registry = registry
        self.options = options
        self.task_class, self.resolved, self.config = resolve_config(registry, options)
        self.source = parse_dataset_spec(self.resolved["dataset"], registry, self.resolved["data_dir"],
                                         task=self.task_class)
        if self.source.kind == "folder":
            check_folder_links(self.source.path, allow=self.config.allow_links_outside_folder)
        self.workdir = pathlib.Path(self.resolved["workdir"])
        self.folder = Workdir(self.workdir)
        self.runtime = None
        self.task = None
        self.model = None
        self.trainer = None
        self.datasets = None
        # Batched splits another TaskRun of the same task and data already built (``kerasapps
        # compress`` fine-tunes on the data it measured): used instead of building them again.
        self.given_datasets = None
        self._started = time.perf_counter()

    # -- set-up --------------------------------------------------------------
    def _prepare_workdir(self, for_training: bool) -> None:
        check_writable_dir(self.workdir, "workdir")
        if for_training and writes_shared_files(self.resolved["strategy"]):  # other workers share the chief's
            self.workdir_lock = hold_workdir_lock(self.workdir)
        if for_training and self.options.fresh:
            self.folder.clear_training_state()
        elif for_training:
            self.folder.check_resumable(self.resolved, self.task_class.data_fields)
        if for_training and writes_shared_files(self.resolved["strategy"]):
            write_json_atomic(self.folder.config_file, self.resolved)

    def _setup_runtime(self) -> None:
        self.runtime = Runtime.start(strategy=self.resolved["strategy"], tpu=self.resolved["tpu"],
                                     precision=self.resolved["precision"], jit_compile=self.resolved["jit_compile"],
                                     seed=int(self.resolved["seed"]), workdir=self.workdir,
                                     cpu_bfloat16=self.task_class.cpu_bfloat16,
                                     xla_problem=getattr(self.config, "xla_problem", lambda: None)())

    # The runtime's facts, as attributes of the run (the benchmarks and the CLI read them).
    strategy = property(lambda self: self.runtime.strategy)
    precision = property(lambda self: self.runtime.precision)
    jit_compile = property(lambda self: self.runtime.jit_compile)
    is_chief = property(lambda self: self.runtime.is_chief)
    multi_worker = property(lambda self: self.runtime.multi_worker)
    scratch_dir = property(lambda self: self.runtime.scratch_dir)

    def run_context(self):
        """The runtime facts handed to the task (after ``_setup_runtime``)."""
        from kerasapps.context import RunContext

        return RunContext(
            replicas=self.runtime.replicas,
            global_batch_size=self.config.batch_size,
            drop_remainder=self.runtime.needs_static_shapes,
            precision=self.precision,
            jit_compile=self.jit_compile,
            is_chief=self.is_chief,
            workdir=self.workdir,
            seed=int(self.resolved["seed"]),
        )

    def _plugin(self, method: str | None = None):
        """A call into the task's plugin: what it raises is reported naming the plugin and ``method``."""
        return self.registry.plugin_code(self.resolved["task"], method)

    def _make_task(self, info=None):
        from kerasapps.task import new_task

        with self._plugin("__init__"):
            self.task = new_task(self.task_class, self.config, self.source, info=info, context=self.run_context())

    def _build(self, need_data: bool) -> None:
        info = self.folder.read_task_info()
        self._make_task(info)
        if need_data:
            # Decoding errors are caught inside: an undecodable file is the user's fault, not the plugin's.
            if self.given_datasets is not None:
                self.datasets = self.given_datasets
            else:
                with self._plugin("build_datasets"), decoding_errors_as_usage_errors(self.source):
                    self.datasets = self.task.build_datasets()
            if self.is_chief:
                write_json_atomic(self.folder.task_info_file, self.task.info)
        elif info is None:
            raise UsageError(f"{self.workdir} holds no trained {self.task.name} run (no task_info.json); train first")
        from kerasapps.training.engine import Trainer

        with self.strategy.scope():
            with self._plugin("build_model"):
                self.model = self.task.build_model()
            if need_data:
                with self._plugin("build_training_state"), decoding_errors_as_usage_errors(self.source):
                    self.task.build_training_state(self.model, next(iter(self.datasets["train"])))
        self.trainer = Trainer(self.model, self.strategy, jit_compile=self.jit_compile,
                               steps_per_execution=self.config.steps_per_execution, state_built=need_data)

    @property
    def _keeps_best(self) -> bool:
        """Whether the result is the best validation epoch's weights rather than the last's."""
        return self.task.monitor is not None and self.config.restore_best_weights

    def load_trained_weights(self) -> str:
        """Load the run's result into ``self.model``: the best epoch's weights, or the last epoch's
        (from the backup) for a run that keeps those. Returns the file or folder read."""
        best = self.scratch_dir / "best.weights.h5"
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:  # the file holds its variables too
            with self.strategy.scope():
                optimizer.build(self.model.trainable_variables)
        if best.exists() and self._keeps_best:
            with self._weights_must_fit(best):
                self.model.load_weights(str(best))
            return str(best)
        from kerasapps.training.engine import ResumableBackup

        backup = ResumableBackup(self.scratch_dir / "backup", self.model, write=False,
                                 restore_from=self.folder.backup)
        with self._weights_must_fit(self.folder.backup):
            restored = backup.restore()
        if restored == 0:
            raise UsageError(f"no trained weights in {self.workdir} (no best.weights.h5 or backup/); train first")
        return str(self.folder.backup)

    @contextlib.contextmanager
    def _weights_must_fit(self, source):
        """Weights that do not fit the model built from the workdir's config: one message naming
        the options its config.json does not record (added since it was trained, so now at
        their defaults), instead of Keras's traceback."""
        try:
            yield
        except ValueError as exc:
            recorded = self.folder.recorded_params()
            absent = [f"{k}={v}" for k, v in dataclasses.asdict(self.config).items() if k not in recorded]
            hint = (f"; its config.json does not record {', '.join(absent)} (options added since, now at their "
                    "defaults): pass the values it was trained with, --set KEY=VALUE" if absent else
                    "; pass the options it was trained with (--set KEY=VALUE)")
            raise UsageError(f"the weights in {source} do not fit the {self.task.name} model built from "
                             f"{self.folder.config_file} ({str(exc).splitlines()[0]}){hint}") from None

    # -- steps ---------------------------------------------------------------
    def train(self) -> dict:
        """Train (resuming from the workdir's backup); returns the training summary."""
        import keras

        from kerasapps.training.engine import BestWeights, EpochLineLogger, HistoryCSV, ResumableBackup, StopOnNaN, interactive_output

        self._prepare_workdir(for_training=True)
        self._setup_runtime()
        with decoding_errors_as_usage_errors(self.source):
            self._build(need_data=True)
        config = self.config
        backup_dir = self.folder.backup
        backup = ResumableBackup(self.scratch_dir / "backup", self.model, restore_from=backup_dir)
        initial_epoch = backup.restore()
        history = backup.history
        if initial_epoch >= config.epochs:
            print(f"{self.task.name}: all {initial_epoch} epochs are trained already in {backup_dir}", flush=True)
        elif initial_epoch:
            print(f"resuming {self.task.name} from {backup_dir}: epoch {initial_epoch + 1}/{config.epochs}", flush=True)
        callbacks = [StopOnNaN()]
        if self._keeps_best:  # else the last epoch's weights are the result (GANs, restore_best_weights=false)
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
                HistoryCSV(self.folder.training_log, backup),
                keras.callbacks.TensorBoard(str(self.folder.logs)),
            ]
        if config.early_stopping_patience and self.task.monitor is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(self.task.monitor, mode=self.task.monitor_mode,
                                              patience=config.early_stopping_patience)
            )
        # On every worker (a callback that predicts runs collective ops), writing to scratch off the chief.
        with self._plugin("training_callbacks"):
            callbacks += list(self.task.training_callbacks(self.model, self.datasets, self.scratch_dir))
        with self._plugin():  # each plugin's kerasapps_training_callbacks hook
            for extra in self.registry.plugin_manager.hook.kerasapps_training_callbacks(
                task=self.task, config=self.resolved, workdir=self.workdir
            ):
                callbacks.extend(extra or ())
        progress_bar = self.options.progress_bar if self.options.progress_bar is not None else interactive_output()
        if not progress_bar:
            callbacks.append(EpochLineLogger(config.epochs))
        started = time.perf_counter()
        if initial_epoch < config.epochs:
            with self._plugin(), decoding_errors_as_usage_errors(self.source):  # its train_step, its callbacks
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
        weights = self.load_trained_weights()
        from kerasapps.task import evaluate_task

        with self._plugin("evaluate"), decoding_errors_as_usage_errors(self.source):
            metrics = evaluate_task(self.task, self.model, self.datasets["test"], self.trainer.evaluate, self.trainer)
        # A task whose data has no test split of its own scores another one, and names it in
        # its info (e.g. "validation"): the figures are labelled with it, never as test figures.
        return {"weights": weights, "test": metrics, "split": self.task.info.get("scored_split", "test")}

    def load_trained(self) -> str:
        """Rebuild the trained model from the workdir with its data (every split, lazily), load its
        best (else latest) weights and build its metrics on a test batch, writing nothing: for
        commands that read a run (``attack``). Returns the weights file loaded."""
        if not self.folder.task_info_file.is_file():
            raise UsageError(f"{self.workdir} holds no trained {self.resolved['task']} run (no task_info.json); "
                             f"train one first: kerasapps run {self.resolved['task']} --workdir {self.workdir}")
        self._setup_runtime()
        self._make_task(self.folder.read_task_info())
        with self._plugin("build_datasets"), decoding_errors_as_usage_errors(self.source):
            self.datasets = self.task.build_datasets()
        from kerasapps.training.engine import build_model_state

        with self.strategy.scope():
            with self._plugin("build_model"):
                self.model = self.task.build_model()
        weights = self.load_trained_weights()
        with self.strategy.scope(), decoding_errors_as_usage_errors(self.source):
            build_model_state(self.model, next(iter(self.datasets["test"])))
        return weights

    def export(self, format: str = "savedmodel", quantize: str = "none",
               representative_examples: int = 256) -> pathlib.Path:
        """Export the trained weights as the next version: a SavedModel (no data read), or the
        task's tensor core as LiteRT / ONNX (:mod:`kerasapps.serving.formats`), checked on held-out
        test inputs; int8 calibrates on ``representative_examples`` training inputs."""
        from kerasapps.serving.formats import check_format

        check_format(format, quantize)
        if format != "savedmodel":
            return self._export_converted(format, quantize, representative_examples)
        if self.model is None:
            self._setup_runtime()
            self._build(need_data=False)
            self.load_trained_weights()
        if not self.is_chief:
            return None
        from kerasapps.serving.export import export_saved_model

        meta = {"config": self.resolved, "kerasapps_version": self.resolved["kerasapps_version"]}
        with self._plugin():  # its serving_function, serving_resources, export_assets
            return export_saved_model(self.task, self.model, self.resolved["export_dir"], meta)

    def _export_converted(self, fmt: str, quantize: str, representative_examples: int) -> pathlib.Path:
        from kerasapps.serving.formats import CHECK_EXAMPLES, export_converted

        if representative_examples < 1:
            raise UsageError(f"representative_examples: expected at least 1, got {representative_examples}")
        if self.model is None:
            # A converted file computes in float32 (its quantization aside), so the Keras model it is
            # checked against must too: a run trained under mixed_bfloat16 is rebuilt in float32 (its
            # variables are float32 either way).
            self.resolved["precision"] = "float32"
            weights = self.load_trained()  # the data too: check inputs (test) and calibration inputs (train)
        else:
            weights = str(self.scratch_dir / "best.weights.h5") if self._keeps_best else str(self.folder.backup)
        if not self.is_chief:
            return None
        with self._plugin("tensor_core"):
            try:
                core = self.task.tensor_core(self.model)
            except UsageError as exc:
                raise UsageError(f"task {self.task.name!r} cannot export {fmt}: {exc}; its SavedModel export "
                                 "(--format savedmodel) serves it") from None
        with decoding_errors_as_usage_errors(self.source):
            check_inputs = _first_examples(self.datasets["test"], core.inputs_of, CHECK_EXAMPLES)
            representative = (_first_examples(self.datasets["train"], core.inputs_of, representative_examples)
                              if quantize == "int8" else None)
        meta = {"source": {"workdir": str(self.workdir), "weights": weights, "dataset": self.resolved["dataset"],
                           "check_split": self.task.info.get("scored_split", "test"),
                           **({"representative_split": "train"} if representative is not None else {})},
                "config": self.resolved, "kerasapps_version": self.resolved["kerasapps_version"]}
        return export_converted(self.task.name, core, self.resolved["export_dir"], fmt, quantize,
                                check_inputs=check_inputs, representative=representative, metadata=meta)

    def samples(self, count: int = 5) -> list[str]:
        """Lines describing held-out predictions (every worker must call it: predicting may be
        collective; only the chief's lines are worth printing)."""
        with self._plugin("describe_predictions"):
            return self.task.describe_predictions(self.model, self.datasets["test"], count)

    def sample_pictures(self) -> list:
        directory = self.scratch_dir / "samples"
        directory.mkdir(parents=True, exist_ok=True)
        with self._plugin("save_samples"):
            return self.task.save_samples(self.model, self.datasets["test"], directory)

    def finish(self) -> None:
        """Wait for every worker before exiting (see :meth:`kerasapps.training.runtime.Runtime.barrier`)."""
        if self.runtime is not None:
            self.runtime.barrier()

    def write_metrics(self, **parts) -> pathlib.Path:
        if not self.is_chief:
            return self.folder.metrics_file
        data = {"task": self.task.name, "dataset": self.resolved["dataset"], "config": self.resolved,
                **self.runtime.describe(), **{k: v for k, v in parts.items() if v is not None}}
        data["wall_time_seconds"] = round(time.perf_counter() - self._started, 2)
        return self.folder.write_metrics(data)


__all__ = ["COMMON_CONFIG_OPTIONS", "RESUMABLE_CHANGES", "RUN_KEYS", "RunOptions", "TaskRun", "resolve_config",
           "write_json_atomic"]
