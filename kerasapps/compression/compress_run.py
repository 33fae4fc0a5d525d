"""``kerasapps compress``: a trained run's model narrowed layer by layer, optionally fine-tuned,
written as a new run folder (its config records the kept widths, so ``evaluate``, ``export`` and
``train`` work on it as on any run) with a versioned SavedModel export and ``compression.json``.

Example::

    source = TaskRun(registry, RunOptions(task="classification", workdir="runs/mnist", use_workdir_config=True))
    settings = CompressionSettings.parse(keep=0.5, method="spectral", fine_tune_epochs=1, out="runs/mnist-half")
    report = compress_trained_run(source, settings)
    report["rows"]   # original, pruned, fine-tuned: params, multiply-adds, metrics
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import pathlib
import shutil
import time

from kerasapps.compression.spectral import METHODS
from kerasapps.errors import UsageError

COMPRESSION_FILE = "compression.json"
CRITERIA = {  # what compression.json says each method did
    "spectral": "greedy forward selection minimising tr[Sigma_FF - Sigma_FJ (Sigma_JJ + lambda I)^-1 Sigma_JF] "
                "(input-aware), next layer re-fitted W' = A^T W",
    "l1": "largest L1-norm filters, next layer drops the other inputs",
    "random": "random channels, next layer drops the other inputs",
}


@dataclasses.dataclass(frozen=True)
class CompressionSettings:
    """What ``kerasapps compress`` was asked (checked by :meth:`parse`).

    Fields:
        keep: the fraction of each prunable layer's channels kept (0 < keep <= 1), for every layer
            not named in ``layer_keep``.
        layer_keep: ``((producer, fraction), ...)``: layers kept at their own fraction (``--keep
            conv1=0.25,0.5``).
        method: "spectral", "l1" or "random" (see :mod:`kerasapps.compression.spectral`).
        samples: training examples the feature covariances are measured on.
        fine_tune_epochs: epochs of training after pruning (0: none; a fraction trains that share
            of an epoch's steps, recorded as the new run's ``steps_per_epoch``).
        out: the new run folder (None: ``<workdir>-<method>-keep<keep>``).
        ridge: the re-fit's lambda, relative to the mean channel variance.
        seed: the random baseline's draw.
        fine_tune_learning_rate: the fine-tuning's learning rate (None: the run's own).
        recalibrate: re-estimate the narrow model's BatchNormalization statistics on the ``samples``
            training examples before scoring and fine-tuning it, and again after fine-tuning.
    """

    keep: float
    method: str = "spectral"
    samples: int = 2000
    fine_tune_epochs: float = 0.0
    out: str | None = None
    ridge: float = 1e-4
    seed: int = 0
    fine_tune_learning_rate: float | None = None
    layer_keep: tuple = ()
    recalibrate: bool = False

    @classmethod
    def parse(cls, keep, method="spectral", samples=2000, fine_tune_epochs=0.0, out=None, ridge=1e-4, seed=0,
              fine_tune_learning_rate=None, recalibrate=False):
        """Settings from the command line's values; UsageError naming the first bad one.

        ``keep`` is one fraction for every prunable layer, or comma-separated ``LAYER=FRACTION``
        items with at most one bare fraction for the layers not named (default 1: not pruned).

        Example::

            CompressionSettings.parse(keep="0.5", method="l1")
            CompressionSettings.parse(keep="conv1=0.25,0.5").fractions(["conv1", "conv2"])  # {conv1: 0.25, conv2: 0.5}
        """
        keep, layer_keep = _parse_keep(keep)
        if method not in METHODS:
            raise UsageError(f"--method {method}: choose one of {', '.join(METHODS)}")
        if int(samples) < 1:
            raise UsageError(f"--samples {samples}: measure the features on at least one example")
        fine_tune_epochs = float(fine_tune_epochs)
        if not 0 <= fine_tune_epochs <= 1000 or math.isnan(fine_tune_epochs):
            raise UsageError(f"--fine-tune-epochs {fine_tune_epochs:g}: expected 0 (none) or a positive number")
        if not float(ridge) >= 0:
            raise UsageError(f"--ridge {ridge}: expected a number >= 0")
        if fine_tune_learning_rate is not None and not float(fine_tune_learning_rate) > 0:
            raise UsageError(f"--fine-tune-learning-rate {fine_tune_learning_rate}: expected a number > 0")
        return cls(keep, method, int(samples), fine_tune_epochs, None if out is None else str(out), float(ridge),
                   int(seed), None if fine_tune_learning_rate is None else float(fine_tune_learning_rate),
                   layer_keep, bool(recalibrate))

    def label(self) -> str:
        """``--keep`` as given, normalised: ``0.5``, or ``0.5,conv1=0.25``."""
        named = ",".join(f"{name}={fraction:g}" for name, fraction in self.layer_keep)
        return f"{self.keep:g}" + (f",{named}" if named else "")

    def out_folder(self, workdir) -> pathlib.Path:
        if self.out:
            return pathlib.Path(self.out)
        workdir = pathlib.Path(workdir)
        return workdir.with_name(f"{workdir.name}-{self.method}-keep{self.label().replace(',', '_')}")

    def fractions(self, producers, tied=None) -> dict:
        """``{producer: fraction}`` for the plan's groups (``producers``: ``CompressionPlan.names()``,
        a stream by its name); UsageError for a named layer that is not one of them (``tied``:
        ``{member: its group's producer or stream}``, named in the message).

        Example::

            CompressionSettings.parse("fc1=0.25,0.5").fractions(["conv1", "fc1"])  # {"conv1": 0.5, "fc1": 0.25}
        """
        tied = tied or {}
        for name, _ in self.layer_keep:
            if name in tied:
                raise UsageError(f"--keep {name}=...: {name} keeps the channels of {tied[name]} (they are tied); "
                                 f"name {tied[name]} instead")
            if name not in producers:
                raise UsageError(f"--keep {name}=...: not a prunable layer of this model; prunable: "
                                 f"{', '.join(producers)}")
        named = dict(self.layer_keep)
        return {producer: named.get(producer, self.keep) for producer in producers}


def _fraction(text, name=None) -> float:
    where = f"--keep {name}=" if name else "--keep "
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"{where.rstrip()}: expected a fraction of the channels (0 < keep <= 1), got {text!r}") \
            from None
    if not 0 < value <= 1:
        raise UsageError(f"{where}{value:g}: keep a fraction of the channels, 0 < keep <= 1")
    return value


def _parse_keep(text):
    """``(default fraction, ((layer, fraction), ...))`` from ``0.5``, ``conv1=0.25,fc1=0.5`` or
    ``0.5,conv1=0.25``; a layer not named keeps the bare fraction, or all its channels."""
    if isinstance(text, (int, float)):
        return _fraction(text), ()
    default, named = None, {}
    for item in str(text).split(","):
        item = item.strip()
        if "=" in item:
            name, _, value = item.partition("=")
            name = name.strip()
            if not name or name in named:
                raise UsageError(f"--keep {text}: {'a layer name is missing' if not name else name + ' is named twice'}"
                                 f" (expected LAYER=FRACTION items and at most one FRACTION)")
            named[name] = _fraction(value.strip(), name)
        elif default is None:
            default = _fraction(item)
        else:
            raise UsageError(f"--keep {text}: more than one bare fraction (expected LAYER=FRACTION items and at most "
                             f"one FRACTION for the layers not named)")
    return (1.0 if default is None else default), tuple(named.items())


def check_source_and_out(task_name: str, workdir, out: pathlib.Path, task_class) -> None:
    """The refusals that need no TensorFlow: a missing run, a run of another task, a task without
    the hook, an ``out`` folder that holds something (or is the run itself)."""
    from kerasapps.compression.plan import no_compression_plan
    from kerasapps.task import Task
    from kerasapps.training.transfer import read_trained_run

    workdir = pathlib.Path(workdir)
    if not (workdir / "task_info.json").is_file():
        raise UsageError(f"{workdir} holds no trained {task_name} run (no task_info.json); train one first: "
                         f"kerasapps run {task_name} --workdir {workdir}")
    read_trained_run(workdir, task_name)
    if getattr(task_class, "compression_plan", None) is Task.compression_plan:
        no_compression_plan(task_class)  # raises: the task names no prunable groups (before its data is read)
    if out.resolve() == workdir.resolve():
        raise UsageError(f"--out {out} is the run being compressed; the compressed run goes to a new folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} exists and is not empty; choose a new folder for the compressed run")


def compress_trained_run(task_run, settings: CompressionSettings) -> dict:
    """Compress ``task_run``'s trained model (module docstring) and write the new run.

    Returns the report (also written to ``<out>/compression.json``): the groups' widths and
    reconstruction errors, a row per stage (original, pruned, fine-tuned) with parameters,
    multiply-adds and the task's metrics on the scored split, the new run's folder and export.
    """
    from kerasapps.compression.surgery import (
        check_plan,
        choose_channels,
        count_multiply_adds,
        example_shape_of,
        measure_feature_covariances,
        narrow_weights,
        recalibrate_batch_normalization,
        transfer_weights,
    )
    from kerasapps.config import apply_overrides
    from kerasapps.task import evaluate_task, new_task
    from kerasapps.training.engine import ResumableBackup, Trainer, build_model_state
    from kerasapps.training.options import RunOptions
    from kerasapps.training.runner import TaskRun
    from kerasapps.training.workdir import Workdir, write_json_atomic

    started = time.perf_counter()
    name = task_run.resolved["task"]
    out = settings.out_folder(task_run.workdir)
    check_source_and_out(name, task_run.workdir, out, task_run.task_class)
    weights = task_run.load_trained()
    task, model, strategy = task_run.task, task_run.model, task_run.strategy
    with task_run._plugin("compression_plan"):
        plan = task.compression_plan(model)
        check_plan(model, plan)
    fractions = settings.fractions(plan.names(), tied=plan.tied_names())
    datasets = task_run.datasets
    measured = time.perf_counter()
    covariances = measure_feature_covariances(model, plan, datasets["train"], settings.samples)
    choices = choose_channels(model, plan, covariances, fractions, settings.method, settings.ridge, settings.seed)
    widths = {producer: choice.width for producer, choice in choices.items()}
    with task_run._plugin("compression_plan"):
        overrides = plan.config_overrides(dict(widths))
    narrow_config = apply_overrides(task.config, overrides)
    with task_run._plugin("build_model"), strategy.scope():
        narrow_task = new_task(task_run.task_class, narrow_config, task.source, info=task.info, context=task.context)
        narrow = narrow_task.build_model()
    with task_run._plugin("compression_plan"):
        transfer_weights(model, narrow, narrow_weights(model, plan, choices))
    test_batch = next(iter(datasets["test"]))
    with strategy.scope():
        build_model_state(narrow, test_batch)
    recalibrated = recalibrate_batch_normalization(narrow, datasets["train"], settings.samples) \
        if settings.recalibrate else 0
    selection_seconds = time.perf_counter() - measured

    def scored(network, network_task):
        trainer = Trainer(network, strategy, state_built=True)
        with task_run._plugin("evaluate"):
            return evaluate_task(network_task, network, datasets["test"], trainer.evaluate, trainer)

    example_shape = example_shape_of(test_batch)  # a model for any size: counted as scored
    rows = [{"stage": "original", "params": model.count_params(),
             "multiply_adds": count_multiply_adds(model, example_shape), "metrics": scored(model, task)},
            {"stage": "pruned", "params": narrow.count_params(),
             "multiply_adds": count_multiply_adds(narrow, example_shape), "metrics": scored(narrow, narrow_task)}]

    # The new run: its config rebuilds the narrow model; epoch 0 of its backup is the pruned weights.
    epochs, steps = None, None
    if settings.fine_tune_epochs:
        epochs = math.ceil(settings.fine_tune_epochs)
        if epochs != settings.fine_tune_epochs:
            one_epoch = narrow_config.steps_per_epoch or Trainer.num_batches(datasets["train"])
            steps = max(1, round(settings.fine_tune_epochs * one_epoch / epochs))
    params = dataclasses.asdict(narrow_config)
    params.update({k: v for k, v in (("epochs", epochs), ("steps_per_epoch", steps),
                                     ("learning_rate", settings.fine_tune_learning_rate)) if v is not None})
    resolved = {**task_run.resolved, "workdir": str(out), "params": params}
    folder = Workdir(out)
    with _removed_on_failure(out):
        folder.create()
        write_json_atomic(folder.config_file, resolved)
        write_json_atomic(folder.task_info_file, task.info)
        narrow.save_weights(str(folder.best_weights))
        ResumableBackup(folder.backup, narrow).save_start()

        narrow_run = TaskRun(task_run.registry, RunOptions(task=name, workdir=str(out), use_workdir_config=True,
                                                           progress_bar=False))
        narrow_run.given_datasets = datasets
        summary = {}
        try:
            if epochs:
                summary = narrow_run.train()
        finally:  # training holds the new run's lock: give it back, as every command does when it ends
            lock = getattr(narrow_run, "workdir_lock", None)
            if lock is not None:
                lock.release()
        if epochs and settings.recalibrate:
            _recalibrate_fine_tuned(narrow_run, datasets["train"], settings.samples)
        evaluation = narrow_run.evaluate()
        if epochs:
            rows.append({"stage": "fine-tuned", "params": rows[1]["params"],
                         "multiply_adds": rows[1]["multiply_adds"], "metrics": evaluation["test"],
                         "epochs": settings.fine_tune_epochs,
                         "steps": (steps or narrow_run.trainer.steps_per_epoch) * epochs})
        export_path = narrow_run.export()
        export_bytes = sum(p.stat().st_size for p in pathlib.Path(export_path).rglob("*") if p.is_file()) \
            if export_path else None
        report = {
            "task": name,
            "source": {"workdir": str(task_run.workdir), "weights": weights},
            "method": settings.method,
            "criterion": CRITERIA[settings.method],
            "keep": settings.keep,
            "layer_keep": dict(settings.layer_keep),
            "samples": settings.samples,
            "ridge": settings.ridge,
            "recalibrated_batch_normalization_layers": recalibrated,
            "split": evaluation["split"],
            "score": (task.monitor or "loss").removeprefix("val_"),
            "groups": [{"producer": c.producer, "channels": c.channels, "kept_width": c.width,
                        "kept": [int(j) for j in c.kept], "unreconstructed_share": round(c.relative_error, 6),
                        **({"reads": {point: round(share, 6) for point, (_, share) in c.read_fits.items()}}
                           if c.read_fits else {})}
                       for c in choices.values()],
            "config_overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
            "rows": rows,
            "workdir": str(out),
            "export_path": None if export_path is None else str(export_path),
            "export_bytes": export_bytes,
            "selection_seconds": round(selection_seconds, 2),
            "wall_time_seconds": round(time.perf_counter() - started, 2),
        }
        if narrow_run.is_chief:
            narrow_run.write_metrics(**summary, metrics=evaluation["test"], weights=evaluation["weights"],
                                     scored_split=evaluation["split"], export_path=report["export_path"])
            write_json_atomic(out / COMPRESSION_FILE, report)
        narrow_run.finish()
        return report


def _recalibrate_fine_tuned(narrow_run, dataset, samples: int) -> None:
    """The fine-tuned weights with their BatchNormalization statistics re-estimated, written back
    to the new run's best weights (their record kept): in training mode the moving statistics
    trail the weights they normalise, and a short fine-tuning leaves them behind."""
    from kerasapps.compression.surgery import recalibrate_batch_normalization
    from kerasapps.training.engine import BestWeights

    weights = pathlib.Path(narrow_run.load_trained_weights())
    record = BestWeights.recorded(weights) if weights.name.endswith(".weights.h5") else None
    if record is None:  # the run keeps no best weights: its backup is the result, left as trained
        return
    recalibrate_batch_normalization(narrow_run.model, dataset, samples)
    BestWeights.save(narrow_run.model, weights, record["epoch"], record["monitor"], record["value"])


@contextlib.contextmanager
def _removed_on_failure(folder: pathlib.Path):
    """A compress that fails or is interrupted leaves no half-written run behind: ``folder``,
    empty or absent before (checked), is removed again."""
    existed = folder.exists()
    try:
        yield
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if existed:
            folder.mkdir(exist_ok=True)
        raise


def report_table(report: dict) -> list[str]:
    """The report as aligned text lines: the widths, then one row per stage.

    Example::

        print("\\n".join(report_table(report)))
    """
    score = report["score"]
    widths = ", ".join(f"{g['producer']} {g['channels']}->{g['kept_width']}" for g in report["groups"])
    named = "".join(f", {name}={fraction:g}" for name, fraction in report.get("layer_keep", {}).items())
    recalibrated = ", BatchNormalization recalibrated" if report.get("recalibrated_batch_normalization_layers") else ""
    lines = [f"{report['task']}: {report['method']} keep {report['keep']:g}{named}{recalibrated} ({widths})",
             f"  {'model':<25} {'params':>10} {'multiply-adds':>14} {score + ' (' + report['split'] + ')':>18}"]
    for row in report["rows"]:
        label = row["stage"] + (f" ({row['epochs']:g} epoch{'' if row['epochs'] == 1 else 's'})" if "epochs" in row
                                else "")
        value = row["metrics"].get(score)
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"  {label:<25} {row['params']:>10,} {row['multiply_adds']:>14,} {shown:>18}")
    return lines


__all__ = ["COMPRESSION_FILE", "CompressionSettings", "check_source_and_out", "compress_trained_run", "report_table"]
