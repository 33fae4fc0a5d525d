"""kerasapps from Python: everything ``kerasapps run/train/evaluate/export`` do, as functions.

The command line is a thin layer over these functions, so the two cannot drift: the same
workdir, resume, lock, export and validation rules hold, and a user mistake raises
:class:`kerasapps.UsageError` with the one-line message the command line prints (never
``SystemExit``). Settings are keyword arguments: each run option of the command line
(``dataset``, ``epochs``, ``batch_size``, ``workdir``, ``strategy``, ``precision``, ``seed``,
``recipe``, ``config`` (a file) ...) and each config field of the task (``kerasapps info TASK``),
as typed Python values.

Example (a notebook cell)::

    import kerasapps

    result = kerasapps.run("classification", epochs=2, image_size=32, train_examples=2000)
    result.metrics["accuracy"], result.export_path, result.model.summary()
    predictor = kerasapps.load(result.export_path)
    predictor.predict(["cat.png"])      # the picture and its label, inline

A task class that is not installed as a plugin runs the same way (``kerasapps.run(MyTask)``);
once it works, an entry point makes it ``kerasapps run my-task`` with no code change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import pathlib
import sys
from typing import Any

from kerasapps.errors import UsageError


@dataclasses.dataclass
class RunResult:
    """What a run, train, evaluate or export call did.

    Attributes:
        task: the task's name.
        workdir: the run folder (checkpoints, history, metrics.json).
        metrics: the scored split's metrics (run, evaluate), else {}.
        scored_split: the split ``metrics`` were measured on ("test", or "validation" for data
            without a test split of its own).
        history: one dict per trained epoch (losses, validation metrics, seconds).
        export_path: the SavedModel version written (run, export), else None.
        model: the trained Keras model (its best weights when the task keeps the best).
        config: the resolved settings (run options and the task's config fields).
        metrics_file: the workdir's metrics.json, as written by this call (None for export).
        samples: lines describing held-out predictions (run).
    """

    task: str
    workdir: pathlib.Path
    metrics: dict = dataclasses.field(default_factory=dict)
    scored_split: str | None = None
    history: list = dataclasses.field(default_factory=list)
    export_path: pathlib.Path | None = None
    model: Any = None
    config: dict = dataclasses.field(default_factory=dict)
    metrics_file: pathlib.Path | None = None
    samples: list = dataclasses.field(default_factory=list)

    def _repr_html_(self) -> str:
        import html

        rows = [("task", self.task), ("workdir", self.workdir), ("epochs trained", len(self.history))]
        rows += [(f"{name} ({self.scored_split})", f"{value:.4f}" if isinstance(value, float) else value)
                 for name, value in self.metrics.items() if not isinstance(value, (dict, list))]
        rows += [("export", self.export_path)] if self.export_path else []
        return "<table>" + "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                                   for k, v in rows) + "</table>"


# -- settings -------------------------------------------------------------------
def _options(task, fresh: bool, use_workdir_config: bool, progress_bar, overrides: dict | None, settings: dict):
    """RunOptions from keyword settings: run options by name (checked as the command line checks
    them), every other keyword a task config field (typed or text, checked by its field)."""
    from kerasapps.training.options import RUN_OPTIONS, RunOptions, check_option_value

    by_name = {option.name: option for option in RUN_OPTIONS if option.kind != "input"}
    run, fields = {}, dict(overrides or {})
    for key, value in settings.items():
        if key == "config":
            run["config_file"] = None if value is None else str(value)
        elif key == "recipe":
            run["recipe"] = value
        elif key in by_name:
            run[key] = None if value is None else check_option_value(by_name[key], value)
        else:
            fields[key] = value
    name = task if isinstance(task, str) else getattr(task, "name", "")
    return RunOptions(task=name, overrides=fields, fresh=fresh, use_workdir_config=use_workdir_config,
                      progress_bar=progress_bar, **run)


def make_run(task, *, fresh: bool = False, use_workdir_config: bool = False, progress_bar=None, overrides=None,
             plugins=(), registry=None, **settings):
    """The :class:`kerasapps.training.runner.TaskRun` for ``task`` and ``settings`` (resolved and
    checked, nothing run yet): what the functions below and the command line start from.

    Returns the TaskRun; ``task_run.resolved`` is the resolved config (``--print-config``).
    """
    from kerasapps.training.runner import TaskRun

    if isinstance(task, str) and not task:
        raise UsageError("no task given; `kerasapps list` names the installed tasks")
    options = _options(task, fresh, use_workdir_config, progress_bar, overrides, settings)
    if registry is None:
        from kerasapps.registry import discover

        registry = discover(plugins)
    if not isinstance(task, str):
        registry.add_task_class(task)
    return TaskRun(registry, options)


@contextlib.contextmanager
def _session(task_run, verbose):
    """One call's scope: its output silenced with ``verbose=0``, the workdir lock and Keras's
    dtype policy given back when it ends, also when it is interrupted (KeyboardInterrupt)."""
    policy = None
    if "keras" in sys.modules:
        policy = sys.modules["keras"].mixed_precision.global_policy().name
    quiet = contextlib.redirect_stdout(io.StringIO()) if verbose == 0 else contextlib.nullcontext()
    try:
        with quiet:
            yield
    finally:  # also on KeyboardInterrupt: the backup keeps the last completed epoch, the next call resumes
        lock = getattr(task_run, "workdir_lock", None)
        if lock is not None:
            lock.release()
        if "keras" in sys.modules:
            sys.modules["keras"].mixed_precision.set_global_policy(policy or "float32")


def _progress_bar(verbose):
    if verbose not in ("auto", 0, 1, 2):
        raise UsageError(f"verbose: expected 'auto', 0, 1 or 2, got {verbose!r}")
    return {"auto": None, 0: False, 1: True, 2: False}[verbose]


def _echo_metrics(title: str, metrics: dict) -> None:
    print(f"{title}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                   for k, v in metrics.items() if not isinstance(v, (dict, list))), flush=True)


# -- the four commands --------------------------------------------------------------
def run(task, *, fresh: bool = False, samples: int = 5, verbose="auto", overrides: dict | None = None,
        plugins=(), registry=None, **settings) -> RunResult:
    """Train ``task``, evaluate it on the held-out split, export it and describe predictions:
    ``kerasapps run TASK``.

    ``task`` is a task's name or a Task class (not installed: for prototyping). ``settings``:
    run options and config fields (module docstring); ``overrides`` takes config fields by name
    when a name is no Python identifier. ``fresh`` discards the workdir's checkpoints; else a run
    resumes from its last completed epoch (also after an interrupted call). ``plugins`` loads or
    switches off plugins as the command line's ``-p`` does; ``registry`` (a
    :func:`kerasapps.registry.discover` result) replaces plugin discovery. ``verbose``: "auto"
    (Keras's progress bar on a terminal, one line per epoch elsewhere), 1 (progress bar),
    2 (one line per epoch), 0 (silent).

    Returns a :class:`RunResult` (metrics, history, export path, workdir, the trained model).

    Example::

        result = kerasapps.run("captioning", epochs=3, dataset="folder:data/flickr8k", samples=0)
    """
    from kerasapps.training.lock import check_writable_dir

    task_run = make_run(task, fresh=fresh, progress_bar=_progress_bar(verbose), overrides=overrides,
                        plugins=plugins, registry=registry, **settings)
    with _session(task_run, verbose):
        check_writable_dir(pathlib.Path(task_run.resolved["export_dir"]) / task_run.resolved["task"],
                           "export directory")
        summary = task_run.train()
        evaluation = task_run.evaluate()
        _echo_metrics(evaluation["split"], evaluation["test"])
        export_path = task_run.export()
        metrics_file = task_run.write_metrics(**summary, metrics=evaluation["test"], weights=evaluation["weights"],
                                              scored_split=evaluation["split"], export_path=str(export_path))
        lines = []
        if samples:
            lines = task_run.samples(samples)
            pictures = task_run.sample_pictures()
            if task_run.is_chief:
                if lines:
                    print("sample predictions (held-out):")
                for line in lines:
                    print(f"  {line}")
                if pictures:
                    print(f"sample pictures: {len(pictures)} under {pathlib.Path(pictures[0]).parent}")
        task_run.finish()
        if task_run.is_chief:
            print(f"exported: {export_path}")
            print(f"metrics: {metrics_file}", flush=True)
    return RunResult(task_run.resolved["task"], task_run.workdir, evaluation["test"], evaluation["split"],
                     summary["history"], export_path and pathlib.Path(export_path), task_run.model,
                     task_run.resolved, metrics_file, lines)


def train(task, *, fresh: bool = False, verbose="auto", overrides: dict | None = None, plugins=(), registry=None,
          **settings) -> RunResult:
    """Train ``task`` (resuming from the workdir's last completed epoch): ``kerasapps train TASK``.

    Returns a :class:`RunResult` with the history, the model and the workdir (no metrics: see
    :func:`evaluate`).

    Example::

        kerasapps.train("classification", epochs=5, workdir="runs/lenet")
    """
    task_run = make_run(task, fresh=fresh, progress_bar=_progress_bar(verbose), overrides=overrides,
                        plugins=plugins, registry=registry, **settings)
    with _session(task_run, verbose):
        summary = task_run.train()
        metrics_file = task_run.write_metrics(**summary)
        task_run.finish()
        print(f"trained {summary['epochs_completed']} epochs; metrics: {metrics_file}", flush=True)
    return RunResult(task_run.resolved["task"], task_run.workdir, history=summary["history"], model=task_run.model,
                     config=task_run.resolved, metrics_file=metrics_file)


def evaluate(task, *, verbose="auto", overrides: dict | None = None, plugins=(), registry=None, **settings) -> RunResult:
    """Score the workdir's best weights on the held-out split, with the config they were trained
    with (settings given here override it): ``kerasapps evaluate TASK``.

    Returns a :class:`RunResult` with the metrics and the split they were measured on.

    Example::

        kerasapps.evaluate("classification", workdir="runs/lenet").metrics["accuracy"]
    """
    task_run = make_run(task, use_workdir_config=True, progress_bar=_progress_bar(verbose), overrides=overrides,
                        plugins=plugins, registry=registry, **settings)
    with _session(task_run, verbose):
        evaluation = task_run.evaluate()
        _echo_metrics(evaluation["split"], evaluation["test"])
        metrics_file = task_run.write_metrics(metrics=evaluation["test"], weights=evaluation["weights"],
                                              scored_split=evaluation["split"])
        print(f"metrics: {metrics_file}", flush=True)
    return RunResult(task_run.resolved["task"], task_run.workdir, evaluation["test"], evaluation["split"],
                     model=task_run.model, config=task_run.resolved, metrics_file=metrics_file)


def export(task, *, format: str = "savedmodel", quantize: str = "none", representative_examples: int = 256,
           verbose="auto", overrides: dict | None = None, plugins=(), registry=None, **settings) -> RunResult:
    """Export the workdir's best weights as the next version: ``kerasapps export TASK``.

    ``format``: "savedmodel" (default: the whole serving function, ``saved_models/TASK/N``),
    "litert" or "onnx" (the task's tensor core, pixels in and scores out, as
    ``saved_models/TASK-litert/N/model.tflite`` or ``TASK-onnx/N/model.onnx`` with a
    ``kerasapps.json`` describing its inputs, outputs, pre- and post-processing and classes).
    A converted model is first checked against the Keras model on held-out test inputs through
    its own runtime; nothing is written when it disagrees (:class:`kerasapps.errors.ExportCheckFailed`)
    or cannot convert (:class:`UsageError` naming the op). ``quantize`` (LiteRT only): "none",
    "float16" or "int8" (full-integer, calibrated on ``representative_examples`` training inputs).

    Returns a :class:`RunResult` whose ``export_path`` is the version written.

    Example::

        kerasapps.load(kerasapps.export("classification", workdir="runs/lenet").export_path)
        kerasapps.export("classification", workdir="runs/lenet", format="litert", quantize="int8")
    """
    from kerasapps.serving.formats import check_format

    check_format(format, quantize)  # before anything is read
    task_run = make_run(task, use_workdir_config=True, progress_bar=_progress_bar(verbose), overrides=overrides,
                        plugins=plugins, registry=registry, **settings)
    with _session(task_run, verbose):
        export_path = task_run.export(format, quantize, representative_examples)
        print(f"exported: {export_path}", flush=True)
    return RunResult(task_run.resolved["task"], task_run.workdir, export_path=export_path and pathlib.Path(export_path),
                     model=task_run.model, config=task_run.resolved)


def load(export_dir):
    """An exported SavedModel as a :class:`kerasapps.serving.predictor.Predictor` (only TensorFlow
    needed): ``predictor.predict(inputs)``, as ``kerasapps predict`` but returning Python values.

    Returns the Predictor.

    Example::

        kerasapps.load("saved_models/classification/1").predict("cat.png")[0]["label"]
    """
    from kerasapps.serving.predictor import load as load_predictor

    return load_predictor(export_dir)


__all__ = ["RunResult", "evaluate", "export", "load", "make_run", "run", "train"]
