"""Width compression of a trained LeNet-5 on MNIST: spectral pruning against L1-norm and random
channels at the same kept widths, before and after a short fine-tuning, the narrow network trained
from scratch for the same budget, and the exports' size and serving latency.

    python -m benchmarks.mnist_compression --workdir RUN [--out results.json]

RUN is a trained ``kerasapps run classification --dataset folder:.../mnist_png`` folder (LeNet-5);
it is only read. Everything runs in one process on the data loaded once, through the same
functions ``kerasapps compress`` calls (``kerasapps.compression.surgery``); the fine-tuning is the
task's compiled optimizer (Adam, its learning rate) for a share of an epoch's steps, the last weights
scored. Writes a JSON of every figure (docs/compression.md shows them).
"""

import argparse
import json
import pathlib
import statistics
import tempfile
import time

KEEPS = (1.0, 0.75, 0.5, 0.25)
METHODS = ("spectral", "l1", "random")
RANDOM_DRAWS = 3


def load_source(workdir):
    from kerasapps.registry import discover
    from kerasapps.training.options import RunOptions
    from kerasapps.training.runner import TaskRun

    run = TaskRun(discover(), RunOptions(task="classification", workdir=str(workdir), use_workdir_config=True,
                                         progress_bar=False))
    run.load_trained()
    return run


def narrow_model(run, plan, choices, learning_rate=None):
    from kerasapps.compression.surgery import narrow_weights, transfer_weights
    from kerasapps.config import apply_overrides
    from kerasapps.task import new_task
    from kerasapps.training.engine import build_model_state

    widths = {producer: choice.width for producer, choice in choices.items()}
    config = apply_overrides(run.task.config, {**plan.config_overrides(widths),
                                               **({"learning_rate": learning_rate} if learning_rate else {})})
    task = new_task(run.task_class, config, run.task.source, info=run.task.info, context=run.task.context)
    with run.strategy.scope():
        model = task.build_model()
        transfer_weights(run.model, model, narrow_weights(run.model, plan, choices))
        build_model_state(model, next(iter(run.datasets["test"])))
    return task, model


def accuracy(run, model):
    from kerasapps.training.engine import Trainer

    return Trainer(model, run.strategy, state_built=True).evaluate(run.datasets["test"])["accuracy"]


def train_steps(run, model, steps):
    from kerasapps.training.engine import Trainer

    started = time.perf_counter()
    Trainer(model, run.strategy, state_built=True).fit(run.datasets["train"], epochs=1, steps_per_epoch=steps,
                                                        progress_bar=False)
    return time.perf_counter() - started


def export_and_size(task, model, folder):
    """Export the model as a SavedModel (as ``kerasapps export`` does); returns its path and bytes."""
    from kerasapps.serving.export import export_saved_model

    path = pathlib.Path(export_saved_model(task, model, str(folder), {"benchmark": "mnist_compression"}))
    return {"export": str(path), "bytes": sum(p.stat().st_size for p in path.rglob("*") if p.is_file())}


def serving_latency(exports: dict, images, rounds=60):
    """Median latency of each export's ``serving_default`` on PNG bytes (batch 1 and 32), loaded as a
    server does, and of its Keras network alone on the decoded float batch (a ``tf.function``). The
    models take turns call by call, so that a busy moment of the shared machine hits them all alike.

    ``exports``: ``{name: (export path, keras model)}``. Returns ``{name: {batch: {"serving_ms",
    "network_ms"}}}``.
    """
    import numpy as np
    import tensorflow as tf

    pixels = tf.constant(np.stack([tf.io.decode_png(b).numpy() for b in images[:32]]).astype("float32"))
    loaded = {name: (tf.saved_model.load(path).signatures["serving_default"],
                     tf.function(lambda x, model=model: model(x, training=False)))
              for name, (path, model) in exports.items()}
    times = {name: {batch: ([], []) for batch in (1, 32)} for name in exports}
    for round_ in range(rounds + 5):
        for name, (signature, network) in loaded.items():
            for batch in (1, 32):
                request, network_input = tf.constant(images[:batch]), pixels[:batch]
                started = time.perf_counter()
                signature(image_bytes=request)
                middle = time.perf_counter()
                network(network_input)
                ended = time.perf_counter()
                if round_ >= 5:  # the first calls warm up
                    times[name][batch][0].append(middle - started)
                    times[name][batch][1].append(ended - middle)
    return {name: {batch: {"serving_ms": round(1000 * statistics.median(serving), 3),
                           "network_ms": round(1000 * statistics.median(alone), 3)}
                   for batch, (serving, alone) in batches.items()} for name, batches in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True, help="a trained LeNet-5 MNIST run (only read)")
    parser.add_argument("--samples", type=int, default=2000, help="training images the covariances are measured on")
    parser.add_argument("--fine-tune", default="0.3,1", help="fine-tuning budgets, in epochs")
    parser.add_argument("--fine-tune-lr", type=float, default=None,
                        help="fine-tuning learning rate (default: the run's own, also for the from-scratch networks)")
    parser.add_argument("--keeps", default=",".join(map(str, KEEPS)))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--no-serving", action="store_true", help="skip the exports' size and latency")
    parser.add_argument("--no-scratch", action="store_true", help="skip the narrow networks trained from scratch")
    parser.add_argument("--out", default="mnist_compression.json")
    args = parser.parse_args(argv)
    keeps = [float(k) for k in args.keeps.split(",")]
    methods = args.methods.split(",")
    budgets = [float(b) for b in args.fine_tune.split(",") if b]

    from benchmarks.machine import describe_machine
    from kerasapps.compression.surgery import choose_channels, count_multiply_adds, measure_feature_covariances
    from kerasapps.training.engine import Trainer

    started = time.perf_counter()
    run = load_source(args.workdir)
    plan = run.task.compression_plan(run.model)
    steps_per_epoch = Trainer.num_batches(run.datasets["train"])
    results = {"machine": describe_machine(), "workdir": args.workdir, "samples": args.samples,
               "fine_tune_learning_rate": args.fine_tune_lr or run.config.learning_rate,
               "steps_per_epoch": steps_per_epoch, "original_epochs": run.config.epochs, "rows": []}
    print(f"machine: {results['machine']}", flush=True)
    measured = time.perf_counter()
    covariances = measure_feature_covariances(run.model, plan, run.datasets["train"], args.samples)
    results["covariance_seconds"] = round(time.perf_counter() - measured, 2)
    original = {"params": run.model.count_params(), "multiply_adds": count_multiply_adds(run.model),
                "accuracy": accuracy(run, run.model)}
    results["original"] = original
    print(f"original: {original}", flush=True)
    images = png_request_bytes(run, 32)
    exports = pathlib.Path(tempfile.mkdtemp(prefix="mnist-compression-"))
    served = {}  # name -> (export path, model): timed together at the end
    if not args.no_serving:
        results["original"]["export"] = export_and_size(run.task, run.model, exports)
        served["original"] = (results["original"]["export"]["export"], run.model)
    for keep in keeps:
        for method in methods:
            draws = range(RANDOM_DRAWS) if method == "random" else range(1)
            for draw in draws:
                chosen = time.perf_counter()
                choices = choose_channels(run.model, plan, covariances, keep, method, seed=draw)
                task, model = narrow_model(run, plan, choices)
                row = {"keep": keep, "method": method, "draw": draw,
                       "widths": {p: c.width for p, c in choices.items()},
                       "unreconstructed_share": {p: round(c.relative_error, 5) for p, c in choices.items()},
                       "selection_seconds": round(time.perf_counter() - chosen, 2),
                       "params": model.count_params(), "multiply_adds": count_multiply_adds(model),
                       "pruned_accuracy": accuracy(run, model)}
                if method == "spectral" and not args.no_serving:
                    row["export"] = export_and_size(task, model, exports)
                    served[f"spectral {keep:g}"] = (row["export"]["export"], model)
                if draw == 0 and keep < 1.0:
                    for budget in budgets:
                        task, model = narrow_model(run, plan, choices, args.fine_tune_lr)  # pruned weights, new optimizer
                        seconds = train_steps(run, model, max(1, round(budget * steps_per_epoch)))
                        row[f"fine_tuned_{budget:g}_accuracy"] = accuracy(run, model)
                        row[f"fine_tuned_{budget:g}_seconds"] = round(seconds, 1)
                results["rows"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("export", "unreconstructed_share")}),
                      flush=True)
                pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    # the narrow networks trained from scratch for the same budgets
    for keep in [] if args.no_scratch else [k for k in keeps if k < 1.0]:
        choices = choose_channels(run.model, plan, covariances, keep, "l1")
        row = {"keep": keep, "method": "scratch", "widths": {p: c.width for p, c in choices.items()}}
        for budget in budgets:
            task, model = scratch_model(run, plan, choices, args.fine_tune_lr)
            seconds = train_steps(run, model, max(1, round(budget * steps_per_epoch)))
            row[f"fine_tuned_{budget:g}_accuracy"] = accuracy(run, model)
            row[f"fine_tuned_{budget:g}_seconds"] = round(seconds, 1)
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
        pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    if served:
        results["latency"] = serving_latency(served, images)
        print(json.dumps(results["latency"]), flush=True)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out} in {results['wall_seconds']:.0f} s")


def scratch_model(run, plan, choices, learning_rate=None):
    """The task's model at the chosen widths, freshly initialised (no weights moved)."""
    from kerasapps.config import apply_overrides
    from kerasapps.task import new_task
    from kerasapps.training.engine import build_model_state

    config = apply_overrides(run.task.config, {**plan.config_overrides({p: c.width for p, c in choices.items()}),
                                               **({"learning_rate": learning_rate} if learning_rate else {})})
    task = new_task(run.task_class, config, run.task.source, info=run.task.info, context=run.task.context)
    with run.strategy.scope():
        model = task.build_model()
        build_model_state(model, next(iter(run.datasets["test"])))
    return task, model


def png_request_bytes(run, count):
    """``count`` test images as PNG bytes (what a client sends)."""
    import tensorflow as tf

    images, _ = next(iter(run.datasets["test"].unbatch().batch(count)))
    return [tf.io.encode_png(tf.cast(image, tf.uint8)).numpy() for image in images]


if __name__ == "__main__":
    main()
