"""The training loop: one path for every ``tf.distribute`` strategy.

Keras 3's ``model.fit`` does not run under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585), so kerasapps drives the model itself, the way
``fit`` does inside: ``strategy.run(model.train_step, ...)`` over
``strategy.experimental_distribute_dataset``, with Keras callbacks and metrics.
Tasks customise training the Keras way, by overriding ``train_step`` and
``test_step`` (GANs included); callbacks see the usual ``on_*`` calls and logs.

Example::

    with strategy.scope():
        model = build_and_compile()
    trainer = Trainer(model, strategy)
    history = trainer.fit(train_ds, epochs=5, validation_data=val_ds,
                          callbacks=[keras.callbacks.CSVLogger("log.csv")])
    trainer.evaluate(test_ds)   # {"loss": ..., "accuracy": ...}
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import sys
import time

import keras
import tensorflow as tf

from kerasapps.errors import TrainingFailed


def interactive_output() -> bool:
    """Whether output is watched live: a terminal, or a Jupyter kernel (where Keras's progress bar
    redraws itself in the cell). Elsewhere (a log file, CI) one line per epoch is printed instead."""
    if sys.stdout.isatty():
        return True
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


class TrainingDiverged(TrainingFailed):
    """The loss became NaN or infinite."""


def build_model_state(model, batch) -> None:
    """Create a compiled model's metric, loss and optimizer variables from one plain batch.

    Under a strategy every variable must exist before the first distributed step
    (created inside it, they fail with a placeholder error). Call it inside
    ``strategy.scope()``; models without ``call`` (GANs) build their own state.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
    y_pred = model(x, training=False)
    model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
    model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.reset_metrics()


class Trainer:
    """Runs a compiled model's ``train_step``/``test_step`` under a strategy.

    Args:
        model: a compiled ``keras.Model`` built inside ``strategy.scope()``.
        strategy: the ``tf.distribute.Strategy`` the model was built under.
        jit_compile: compile each replica's step with XLA.
        steps_per_execution: training steps per call into the graph.
        state_built: the model's metric/optimizer variables already exist (else
            :func:`build_model_state` runs on the first batch).
    """

    def __init__(self, model, strategy, *, jit_compile: bool = False, steps_per_execution: int = 1,
                 state_built: bool = False):
        self.model = model
        self.strategy = strategy
        self.jit_compile = jit_compile
        self.steps_per_execution = max(1, int(steps_per_execution))
        self.state_built = state_built
        self.steps_per_epoch = None  # set by fit: the steps one training epoch ran
        self._train_function = None
        self._test_function = None
        self._sync_function = None

    def _ensure_state(self, dataset) -> None:
        if not self.state_built:
            with self.strategy.scope():
                build_model_state(self.model, next(iter(dataset)))
            self.state_built = True

    # -- graph functions -------------------------------------------------
    def _reduce(self, outputs):
        def reduce(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            return value

        return tf.nest.map_structure(reduce, outputs)

    def _make_function(self, step_fn, loop: bool):
        if self.jit_compile:
            step_fn = tf.function(step_fn, jit_compile=True, reduce_retracing=True)

        def one_step(iterator):
            return self._reduce(self.strategy.run(step_fn, args=(next(iterator),)))

        # No AutoGraph (as in Keras's own fit): an explicit while_loop, so that
        # the graph does not depend on re-reading this file's source. The loop's
        # body is a second trace of the step (and a second copy in the graph to
        # optimise), so it is there only where a call can run more than one step.
        @tf.function(autograph=False)
        def multi_step(iterator, steps):
            outputs = one_step(iterator)
            if loop:
                _, outputs = tf.while_loop(
                    lambda i, _: i < steps, lambda i, _: (i + 1, one_step(iterator)), (tf.constant(1), outputs)
                )
            return outputs

        return multi_step

    @property
    def train_function(self):
        if self._train_function is None:
            self._train_function = self._make_function(self.model.train_step, loop=self.steps_per_execution > 1)
        return self._train_function

    @property
    def test_function(self):
        # evaluate() runs one step per call.
        if self._test_function is None:
            self._test_function = self._make_function(self.model.test_step, loop=False)
        return self._test_function

    # -- helpers ---------------------------------------------------------
    @staticmethod
    def num_batches(dataset) -> int:
        """Batches in one pass of ``dataset``; counted once if TF cannot tell."""
        cardinality = int(dataset.cardinality())
        if cardinality == tf.data.INFINITE_CARDINALITY:
            raise ValueError("an infinite dataset needs steps_per_epoch")
        if cardinality == tf.data.UNKNOWN_CARDINALITY:
            cardinality = int(dataset.reduce(0, lambda count, _: count + 1))
        return cardinality

    def _logs(self, step_logs) -> dict:
        """Metric results in cross-replica context, over what a step returned."""
        logs = {k: v for k, v in (step_logs or {}).items()}
        metric_results = self.model.get_metrics_result()
        logs.update({k: v for k, v in metric_results.items() if not logs or k in logs})
        return {k: _to_float(v) for k, v in logs.items()}

    def _callback_list(self, callbacks, **params):
        if isinstance(callbacks, keras.callbacks.CallbackList):
            return callbacks
        return keras.callbacks.CallbackList(list(callbacks or ()), model=self.model, **params)

    def sync_non_trainable(self) -> None:
        """Average the model's non-trainable float weights (BatchNormalization's moving
        statistics) across workers, so that every worker holds the same model.

        Gradients are all-reduced every step, but moving statistics are updated from each
        worker's own batches, so under MultiWorkerMirroredStrategy they drift apart.
        Averaging them once per epoch (as Horovod users average them) costs one
        all-reduce; ``BatchNormalization(synchronized=True)`` is the per-step alternative.
        Within one process, replicas already share them.
        """
        from kerasapps.training.distribute import is_multi_worker

        if not is_multi_worker(self.strategy):
            return
        variables = [v for v in self.model.non_trainable_variables if "float" in str(v.dtype)]
        if not variables:
            return
        if self._sync_function is None:
            @tf.function(autograph=False)
            def sync():
                def replica_mean():
                    context = tf.distribute.get_replica_context()
                    return context.all_reduce(tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in variables])

                means = self.strategy.run(replica_mean)
                for variable, mean in zip(variables, means):
                    variable.assign(self.strategy.experimental_local_results(mean)[0])

            self._sync_function = sync
        self._sync_function()

    # -- public API ------------------------------------------------------
    def fit(
        self,
        train_data,
        *,
        epochs: int,
        steps_per_epoch: int | None = None,
        validation_data=None,
        callbacks=(),
        initial_epoch: int = 0,
        progress_bar: bool | None = None,
    ):
        """Train like ``model.fit``; returns the ``keras.callbacks.History``.

        ``train_data`` and ``validation_data`` are batched ``tf.data.Dataset``s
        holding the global batch. With ``steps_per_epoch`` the training data is
        repeated and read on across epochs, as ``fit`` does.
        """
        model = self.model
        self._ensure_state(train_data)
        if progress_bar is None:
            progress_bar = interactive_output()
        steps = int(steps_per_epoch) if steps_per_epoch else self.num_batches(train_data)
        self.steps_per_epoch = steps
        # One iterator over the repeated data for the whole fit. Without steps_per_epoch an
        # epoch is still exactly one pass (the data is batched before it repeats, and a
        # shuffle reshuffles each pass). A fresh iterator per epoch made a quarter or more of
        # the epochs run at half speed on 2 cores (measured on the captioning task only).
        distributed = self.strategy.experimental_distribute_dataset(shard_by_data(train_data.repeat()))
        persistent = iter(distributed)
        callback_list = self._callback_list(
            callbacks,
            add_history=True,
            add_progbar=progress_bar,
            verbose=1 if progress_bar else 0,
            epochs=epochs,
            steps=steps,
        )
        model.stop_training = False
        callback_list.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            iterator = persistent
            step, step_logs = 0, None
            while step < steps:
                count = min(self.steps_per_execution, steps - step)
                callback_list.on_train_batch_begin(step)
                step_logs = self.train_function(iterator, tf.constant(count))
                step += count
                batch_logs = {k: _to_float(v) for k, v in step_logs.items()}
                callback_list.on_train_batch_end(step - 1, batch_logs)
                if model.stop_training:
                    break
            self.sync_non_trainable()
            logs = self._logs(step_logs)
            if validation_data is not None and not model.stop_training:
                val_logs = self.evaluate(validation_data, callbacks=callback_list)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callback_list.on_train_end(logs)
        return model.history

    def evaluate(self, data, callbacks=None) -> dict:
        """One full pass over ``data`` with ``test_step``; returns the metric results."""
        model = self.model
        self._ensure_state(data)
        callback_list = self._callback_list(callbacks, add_progbar=False, verbose=0)
        distributed = self.strategy.experimental_distribute_dataset(shard_by_data(data))
        steps = self.num_batches(data)
        model.reset_metrics()
        callback_list.on_test_begin()
        step_logs = None
        iterator = iter(distributed)
        one = tf.constant(1)
        for step in range(steps):
            callback_list.on_test_batch_begin(step)
            step_logs = self.test_function(iterator, one)
            callback_list.on_test_batch_end(step, {k: _to_float(v) for k, v in step_logs.items()})
        logs = self._logs(step_logs)
        callback_list.on_test_end(logs)
        return logs


def shard_by_data(dataset):
    """Set the auto-shard policy to DATA unless the dataset chose one.

    Under ``MultiWorkerMirroredStrategy`` every worker must run the same number of
    steps, or the all-reduce of the last step waits forever. FILE sharding (the
    AUTO policy's first choice for file-backed datasets) gives workers unequal
    step counts whenever files hold unequal numbers of examples; DATA sharding
    (each worker reads all input and keeps every N-th element) never does. A task
    whose files are many and equal may set FILE itself with ``with_options``.
    """
    policy = tf.data.experimental.AutoShardPolicy
    if dataset.options().experimental_distribute.auto_shard_policy != policy.AUTO:
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy.DATA
    return dataset.with_options(options)


def _to_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


class ResumableBackup(keras.callbacks.Callback):
    """Saves model, optimizer, epoch and history after every epoch, atomically,
    so that a killed run started again with the same command resumes.

    Like ``keras.callbacks.BackupAndRestore``, but the optimizer's state and the
    history travel in the same ``tf.train.Checkpoint`` (TensorFlow writes the
    new checkpoint, then swaps the index file: a kill never leaves half a state).

    Example::

        backup = ResumableBackup(workdir / "backup", model)
        initial_epoch = backup.restore()
        trainer.fit(ds, epochs=10, initial_epoch=initial_epoch, callbacks=[backup])
    """

    def __init__(self, directory, model, *, write: bool = True, restore_from=None):
        super().__init__()
        self.directory = str(directory)
        # Non-chief workers of a cluster save to a scratch folder but resume from the chief's.
        self.restore_from = str(restore_from or directory)
        with tf.init_scope():  # plain (not mirrored) bookkeeping variables
            self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self._history = tf.Variable("[]", dtype=tf.string, trainable=False, name="history")
        # A GAN's optimizers are attributes of its model, so they travel with it.
        optimizer = {"optimizer": model.optimizer} if model.optimizer is not None else {}
        self._checkpoint = tf.train.Checkpoint(model=model, epoch=self._epoch, history=self._history, **optimizer)
        self._manager = tf.train.CheckpointManager(self._checkpoint, self.directory, max_to_keep=2)
        self.write = write
        self.history: list[dict] = []
        self._epoch_started = None

    def restore(self) -> int:
        """Restore the latest backup if there is one; return the epoch to start from."""
        latest = tf.train.latest_checkpoint(self.restore_from)
        if latest:
            self._checkpoint.restore(latest).expect_partial()
            self.history = json.loads(self._history.numpy().decode())
        return int(self._epoch.numpy())

    def save_start(self) -> None:
        """Write the model as it is now as the state before the first epoch: a run that starts from
        weights it did not train (``kerasapps compress``'s narrow model) then trains, resumes and
        exports like any run."""
        self._epoch.assign(0)
        self._history.assign("[]")
        self._manager.save(checkpoint_number=0)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = self._last_batch_end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        record = {
            "epoch": epoch + 1,
            "seconds": round(now - self._epoch_started, 3),  # training + validation
            "train_seconds": round(self._last_batch_end - self._epoch_started, 3),
        }
        record.update({k: _to_float(v) for k, v in (logs or {}).items()})
        self.history.append(record)
        if not all(math.isfinite(v) for v in record.values() if isinstance(v, float)):
            return  # never back up a diverged state
        self._epoch.assign(epoch + 1)
        self._history.assign(json.dumps(self.history))
        if self.write:
            self._manager.save(checkpoint_number=epoch + 1)


class BestWeights(keras.callbacks.Callback):
    """Keeps ``best.weights.h5``: the weights with the best monitored value so far.

    Written to a temporary file then renamed, so the file is always whole. The file
    records its own epoch and monitored value (HDF5 attributes, written before the
    rename), so a resumed run compares against the weights actually on disk: place
    it before :class:`ResumableBackup` in the callbacks, and a kill between the two
    never leaves a backed-up epoch whose better weights were not kept.
    """

    @staticmethod
    def recorded(path) -> dict | None:
        """``{"epoch", "monitor", "value"}`` recorded in a best-weights file, None if it has none."""
        import h5py

        try:
            with h5py.File(str(path), "r") as handle:
                attrs = dict(handle.attrs)
        except (OSError, ValueError):
            return None
        if "kerasapps_best_value" not in attrs:
            return None
        return {"epoch": int(attrs["kerasapps_best_epoch"]), "monitor": str(attrs["kerasapps_monitor"]),
                "value": float(attrs["kerasapps_best_value"])}

    def __init__(self, path, monitor: str, mode: str = "max", best: float | None = None, write: bool = True):
        super().__init__()
        self.path = pathlib.Path(path)
        self.monitor, self.mode, self.best, self.write = monitor, mode, best, write

    def _improved(self, value) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if not self._improved(value):
            return
        self.best = float(value)
        if self.write:
            self.save(self.model, self.path, epoch + 1, self.monitor, self.best)

    @staticmethod
    def save(model, path, epoch: int, monitor: str, value: float) -> None:
        """Write ``model``'s weights to ``path`` whole (a temporary file renamed), recording the
        epoch and monitored value they scored (what :meth:`recorded` reads)."""
        import h5py

        path = pathlib.Path(path)
        tmp = path.with_name(f".{path.stem}.tmp.weights.h5")
        model.save_weights(str(tmp))
        with h5py.File(str(tmp), "a") as handle:
            handle.attrs.update(kerasapps_best_epoch=epoch, kerasapps_monitor=monitor, kerasapps_best_value=value)
        os.replace(tmp, path)


class HistoryCSV(keras.callbacks.Callback):
    """``training_log.csv`` rewritten whole (atomically) from a :class:`ResumableBackup`'s
    history after each epoch and when training starts: its rows are exactly the backed-up
    epochs, so a killed run neither loses a row nor repeats one when it resumes.

    Place it after the backup in the callbacks.
    """

    def __init__(self, path, backup: "ResumableBackup"):
        super().__init__()
        self.path = pathlib.Path(path)
        self.backup = backup

    def _write(self):
        import csv
        import io

        columns = []
        for record in self.backup.history:
            columns += [key for key in record if key not in columns]
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, restval="")
        writer.writeheader()
        writer.writerows(self.backup.history)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(text.getvalue())
        os.replace(tmp, self.path)

    def on_train_begin(self, logs=None):
        self._write()

    def on_epoch_end(self, epoch, logs=None):
        self._write()


class StopOnNaN(keras.callbacks.Callback):
    """Like ``keras.callbacks.TerminateOnNaN``, but says where and raises a clear error."""

    def on_train_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if "loss" in key and isinstance(value, float) and not math.isfinite(value):
                self.model.stop_training = True
                raise TrainingDiverged(
                    f"{key} became {value} at batch {batch + 1}; training stopped. "
                    "Try a lower learning rate (--set learning_rate=...) or --precision float32."
                )


class EpochLineLogger(keras.callbacks.Callback):
    """One line per epoch, for logs that are not a terminal."""

    def __init__(self, epochs: int, stream=None):
        super().__init__()
        self.epochs = epochs
        self.stream = stream or sys.stdout
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        parts = [f"epoch {epoch + 1}/{self.epochs}", f"{time.perf_counter() - self._start:.1f}s"]
        parts += [f"{k} {v:.4f}" for k, v in (logs or {}).items() if isinstance(v, float)]
        print(" - ".join(parts), file=self.stream, flush=True)
