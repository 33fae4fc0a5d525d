"""One side of a side-by-side measurement, in its own long-lived process.

    python -m benchmarks.suite.worker TASK SIDE EXAMPLES

SIDE is ``reference`` (the plain Keras script, ``model.fit``), ``same`` (kerasapps'
engine and pipeline, settings equal to the reference: float32, no XLA,
steps_per_execution 1), ``tuned`` (kerasapps with the entry's tuned settings) or
``control`` (``same``'s model and pipeline driven by ``model.fit``: isolates the
engine). The parent sends one JSON command per line on stdin; each answer is one
line on stdout starting with ``@@bench `` (other output is TensorFlow's chatter).

Training runs as ``fit(epochs=R, steps_per_epoch=N)`` whose epochs wait for the
parent's ``go``: the parent interleaves the sides epoch by epoch (A B C A B C ...)
while every process keeps its graph, iterator and warm caches.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time

import keras

from benchmarks.suite import PREFIX


def reply(**data) -> None:
    sys.__stdout__.write(PREFIX + json.dumps(data) + "\n")
    sys.__stdout__.flush()


def read_command() -> dict:
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)  # the parent went away
    return json.loads(line)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Worker:
    def __init__(self, task_name: str, side: str, examples: int):
        from benchmarks.suite.tasks import ENTRIES

        self.entry = ENTRIES[task_name]
        self.side = side
        self.examples = examples
        self.scratch = tempfile.mkdtemp(prefix=f"bench-{task_name}-{side}-")
        self.exported = False
        started = time.perf_counter()
        if side == "reference":
            self._build_reference()
        else:
            self._build_kerasapps()
        self.setup_seconds = time.perf_counter() - started

    # -- building ---------------------------------------------------------
    def _build_reference(self):
        module = importlib.import_module(f"benchmarks.reference.{self.entry.reference}")
        self.model, self.train_data = module.build(train_examples=self.examples)
        self.batch_size = module.BATCH_SIZE
        self.task = self.run = None
        self.driver = "keras"

    def _build_kerasapps(self):
        from kerasapps.registry import discover
        from kerasapps.training.runner import RunOptions, TaskRun

        import dataclasses

        tuned = self.side == "tuned"
        registry = discover()
        fields = {f.name for f in dataclasses.fields(registry.task(self.entry.task_name).load().Config)}
        overrides = {k: v for k, v in self.entry.size_overrides(self.examples).items() if k in fields}
        overrides.update(self.entry.tuned if tuned else {"steps_per_execution": 1})
        options = RunOptions(task=self.entry.task_name, workdir=os.path.join(self.scratch, "run"),
                             export_dir=os.path.join(self.scratch, "models"), precision="auto" if tuned else "float32",
                             jit_compile=self.entry.tuned_jit if tuned else False, overrides=overrides)
        run = TaskRun(registry, options)
        run._prepare_workdir(for_training=True)
        run._setup_runtime()
        run._build(need_data=True)
        self.run, self.task, self.model = run, run.task, run.model
        self.train_data = run.datasets["train"]
        self.batch_size = run.config.batch_size
        self.driver = "keras" if self.side == "control" else "kerasapps"

    # -- training ---------------------------------------------------------
    def _fit(self, steps: int, epochs: int, callbacks):
        if self.driver == "kerasapps":
            from kerasapps.training.engine import StopOnNaN

            # StopOnNaN: the one per-batch callback every `kerasapps run` has.
            self.run.trainer.fit(self.train_data, epochs=epochs, steps_per_epoch=steps,
                                 callbacks=[StopOnNaN(), *callbacks], progress_bar=False)
        else:
            self.model.fit(self.train_data.repeat(), epochs=epochs, steps_per_epoch=steps,
                           callbacks=callbacks, verbose=0)

    def calibrate(self, steps: int) -> dict:
        """Two epochs of ``steps``: the first traces the graph, the second gives a rough rate."""
        clock = EpochClock(wait=False)
        self._fit(steps, 2, [clock])
        seconds = clock.times[-1]
        return {"examples_per_second": steps * self.batch_size / seconds, "warmup_seconds": clock.times[0]}

    def train(self, steps: int, epochs: int) -> dict:
        self._fit(steps, epochs, [EpochClock(wait=True, examples=steps * self.batch_size)])
        return {}

    # -- other measurements ------------------------------------------------
    def pipeline(self, seconds: float) -> dict:
        """Examples/s of the training pipeline alone (its first batches, which fill buffers, left out)."""
        iterator = iter(self.train_data.repeat())
        for _ in range(3):
            next(iterator)
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            batch = next(iterator)
            count += _batch_size(batch)
        return {"examples_per_second": count / (time.perf_counter() - started)}

    def generator(self, count: int) -> dict:
        if self.entry.generator is None:
            return {}
        started = time.perf_counter()
        self.entry.generator(count)
        return {"name": self.entry.generator_name, "examples_per_second": count / (time.perf_counter() - started)}

    def describe(self) -> dict:
        from benchmarks.suite.flops import forward_flops

        from benchmarks.machine import describe_machine

        out = {"params": int(self.model.count_params()), "batch_size": self.batch_size, "machine": describe_machine(),
               "setup_seconds": self.setup_seconds, "peak_rss_mb": peak_rss_mb(),
               "precision": self.run.precision if self.run is not None else "float32"}
        try:
            if self.entry.flops is not None:  # GANs: each network as often as a train step runs it
                out.update(self.entry.flops(self))
            else:
                model = self.entry.fixed_shape_model(self) if self.entry.fixed_shape_model else self.model
                out["forward_flops"] = forward_flops(model)
        except Exception as exc:  # reported, not fatal: the figure is then missing
            out["flops_error"] = f"{type(exc).__name__}: {exc}"
        return out

    def predict(self, calls: int) -> dict:
        """Keras ``predict`` on the model's own (already decoded) inputs: batch 1 and 32."""
        import numpy as np
        import tensorflow as tf

        if self.entry.predict_model is not None:  # a model without call() (text-to-image)
            model, x = self.entry.predict_model(self)
        else:
            model, x = self.model, next(iter(self.run.datasets["test"]))[0]
        def take(n):
            return tf.nest.map_structure(lambda t: tf.repeat(t, -(-n // int(t.shape[0])), axis=0)[:n], x)
        one, many = take(1), take(32)
        model.predict(one, verbose=0)
        model.predict(many, verbose=0)
        budget = 6.0  # seconds per measurement: heavy models get fewer calls

        def timed(fn, n):
            times, begun = [], time.perf_counter()
            while len(times) < n and (len(times) < 5 or time.perf_counter() - begun < budget):
                started = time.perf_counter()
                fn()
                times.append(time.perf_counter() - started)
            return times

        latencies = timed(lambda: model.predict(one, verbose=0), calls)
        batches = timed(lambda: model.predict(many, verbose=0), max(3, calls // 4))
        b32 = 32 * len(batches) / sum(batches)
        on_batch = timed(lambda: model.predict_on_batch(one), calls)
        return {"predict_on_batch_p50_ms": 1000 * float(np.percentile(on_batch, 50)),"p50_ms": 1000 * float(np.percentile(latencies, 50)), "p99_ms": 1000 * float(np.percentile(latencies, 99)),
                "batch32_examples_per_second": b32}

    def export(self) -> dict:
        """Export the (briefly trained) model as `kerasapps run` does, and the serving inputs beside it."""
        import numpy as np

        from kerasapps.serving.export import export_saved_model

        self.exported = True
        path = export_saved_model(self.task, self.model, os.path.join(self.scratch, "models"), {})
        inputs = self.entry.serving_inputs(self.task, self.run.datasets)
        name = next(iter(self.task.serving_inputs))
        if isinstance(inputs, dict):  # several signature inputs, one value per example in each
            where = os.path.join(self.scratch, "inputs.npz")
            np.savez(where, **{k: np.array(v, dtype=object) if isinstance(v, list) else np.asarray(v)
                               for k, v in inputs.items()})
        else:
            where = os.path.join(self.scratch, "inputs.npy")
            np.save(where, np.array(inputs, dtype=object), allow_pickle=True)
        return {"path": str(path), "inputs": where, "input_name": name}


def _batch_size(batch) -> int:
    import tensorflow as tf

    return int(tf.nest.flatten(batch)[0].shape[0])


class EpochClock(keras.callbacks.Callback):
    """Times each epoch; with ``wait``, each epoch starts on the parent's ``go`` and
    reports its examples/s at its end (epoch-level only: no per-batch hook)."""

    def __init__(self, wait: bool, examples: int = 0):
        super().__init__()
        self.wait, self.examples, self.times = wait, examples, []

    def on_epoch_begin(self, epoch, logs=None):
        if self.wait:
            command = read_command()
            assert command["cmd"] == "go", command
        self._started = time.perf_counter()
        self._cpu_started = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        cpu_seconds = time.process_time() - self._cpu_started  # all this process's threads
        self.times.append(seconds)
        if self.wait:
            reply(ok=True, seconds=seconds, cpu_seconds=cpu_seconds, examples_per_second=self.examples / seconds,
                  examples_per_cpu_second=self.examples / cpu_seconds)


def main():
    task, side, examples = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        worker = Worker(task, side, examples)
    except Exception as exc:
        reply(ok=False, error=f"{type(exc).__name__}: {exc}")
        raise
    reply(ok=True, **worker.describe())
    while True:
        command = read_command()
        name = command.pop("cmd")
        if name == "quit":
            if not worker.exported:  # the exporting worker's folder is removed by the parent, after serving
                shutil.rmtree(worker.scratch, ignore_errors=True)
            reply(ok=True, peak_rss_mb=peak_rss_mb())
            return
        try:
            result = getattr(worker, name)(**command)
            if name != "train":
                reply(ok=True, **result)
            else:
                reply(ok=True, done=True)
        except Exception as exc:
            reply(ok=False, error=f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
