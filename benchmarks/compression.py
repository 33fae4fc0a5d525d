"""Width compression of a trained run (LeNet-5 or ResNet-20 on MNIST, SegNet-Basic on CamVid: any
task with a compression plan): spectral pruning against L1-norm and random channels at the same
kept widths, before and after a short fine-tuning, the narrow network trained from scratch for the
same budget, and the exports' size and serving latency.

    python -m benchmarks.compression --workdir RUN [--out results.json]
    python -m benchmarks.compression --plot results.json --out score_vs_keep   # the PNG

RUN is a trained run folder (``kerasapps run classification --dataset folder:.../mnist_png``,
``python -m benchmarks.camvid_segnet --work DIR``: its ``DIR/run``); it is only read. The score is
the task's monitored metric (accuracy, mean IoU) on the run's scored split. Everything runs in
one process on the data loaded once, through the same functions ``kerasapps compress`` calls
(``kerasapps.compression.surgery``); the fine-tuning is the task's compiled optimizer (Adam, its
learning rate) for a share of an epoch's steps, the last weights scored. Writes a JSON of every figure (docs/compression.md shows them).
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

    task = json.loads((pathlib.Path(workdir) / "config.json").read_text())["task"]
    run = TaskRun(discover(), RunOptions(task=task, workdir=str(workdir), use_workdir_config=True,
                                         progress_bar=False))
    run.load_trained()
    return run


def narrow_model(run, plan, choices, learning_rate=None, recalibrate_on=0):
    """The task's model at the chosen widths with the pruned weights (``recalibrate_on``: that many
    training examples re-estimate its BatchNormalization statistics)."""
    from kerasapps.compression.surgery import narrow_weights, recalibrate_batch_normalization, transfer_weights
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
    if recalibrate_on:
        recalibrate_batch_normalization(model, run.datasets["train"], recalibrate_on)
    return task, model


def metric_name(run) -> str:
    return (run.task.monitor or "loss").removeprefix("val_")


def score(run, model):
    from kerasapps.training.engine import Trainer

    return Trainer(model, run.strategy, state_built=True).evaluate(run.datasets["test"])[metric_name(run)]


def train_steps(run, model, steps):
    from kerasapps.training.engine import Trainer

    started = time.perf_counter()
    Trainer(model, run.strategy, state_built=True).fit(run.datasets["train"], epochs=1, steps_per_epoch=steps,
                                                        progress_bar=False)
    return time.perf_counter() - started


def export_and_size(task, model, folder):
    """Export the model as a SavedModel (as ``kerasapps export`` does); returns its path and bytes."""
    from kerasapps.serving.export import export_saved_model

    path = pathlib.Path(export_saved_model(task, model, str(folder), {"benchmark": "compression"}))
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
    warm_up = min(5, rounds)
    loaded = {name: (tf.saved_model.load(path).signatures["serving_default"],
                     tf.function(lambda x, model=model: model(x, training=False)))
              for name, (path, model) in exports.items()}
    times = {name: {batch: ([], []) for batch in (1, 32)} for name in exports}
    for round_ in range(rounds + warm_up):
        for name, (signature, network) in loaded.items():
            for batch in (1, 32):
                request, network_input = tf.constant(images[:batch]), pixels[:batch]
                started = time.perf_counter()
                signature(image_bytes=request)
                middle = time.perf_counter()
                network(network_input)
                ended = time.perf_counter()
                if round_ >= warm_up:  # the first calls warm up
                    times[name][batch][0].append(middle - started)
                    times[name][batch][1].append(ended - middle)
    return {name: {batch: {"serving_ms": round(1000 * statistics.median(serving), 3),
                           "network_ms": round(1000 * statistics.median(alone), 3)}
                   for batch, (serving, alone) in batches.items()} for name, batches in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", help="a trained run of a task with a compression plan (only read)")
    parser.add_argument("--plot", metavar="RESULTS", help="only draw RESULTS.json (written by this script) as a PNG")
    parser.add_argument("--samples", type=int, default=2000, help="training images the covariances are measured on")
    parser.add_argument("--fine-tune", default="0.3,1", help="fine-tuning budgets, in epochs")
    parser.add_argument("--fine-tune-lr", type=float, default=None,
                        help="fine-tuning learning rate (default: the run's own; the from-scratch networks "
                             "always train at the run's own)")
    parser.add_argument("--keeps", default=",".join(map(str, KEEPS)))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--random-draws", type=int, default=RANDOM_DRAWS, help="draws of the random baseline")
    parser.add_argument("--latency-rounds", type=int, default=60, help="timed calls per model and batch size")
    parser.add_argument("--control", action="store_true",
                        help="also fine-tune the unpruned network (keep 1) for the same budgets: what the "
                             "fine-tuning alone moves the score")
    parser.add_argument("--recalibrate", action="store_true",
                        help="re-estimate each pruned network's BatchNormalization statistics on the --samples "
                             "training images, before and after fine-tuning (kerasapps compress --recalibrate)")
    parser.add_argument("--fine-tune-draws", type=int, default=1,
                        help="fine-tune each pruned network this many times (other shuffles of the steps)")
    parser.add_argument("--no-serving", action="store_true", help="skip the exports' size and latency")
    parser.add_argument("--no-scratch", action="store_true", help="skip the narrow networks trained from scratch")
    parser.add_argument("--scored-on", default="test split",
                        help="what the run's scored split is, for the plot's title (e.g. 'held-out drive 0006R0')")
    parser.add_argument("--out", default="compression.json")
    args = parser.parse_args(argv)
    if args.plot:
        target = pathlib.Path(args.out).with_suffix(".png")
        target.write_bytes(plot_png(json.loads(pathlib.Path(args.plot).read_text())))
        print(f"wrote {target}")
        return
    if not args.workdir:
        parser.error("--workdir is required (or --plot)")
    keeps = [float(k) for k in args.keeps.split(",")]
    recalibrate_on = args.samples if args.recalibrate else 0
    methods = args.methods.split(",")
    budgets = [float(b) for b in args.fine_tune.split(",") if b]

    from benchmarks.machine import describe_machine
    from kerasapps.compression.surgery import (choose_channels, count_multiply_adds, example_shape_of,
                                               measure_feature_covariances, recalibrate_batch_normalization)
    from kerasapps.training.engine import Trainer

    started = time.perf_counter()
    run = load_source(args.workdir)
    plan = run.task.compression_plan(run.model)
    steps_per_epoch = Trainer.num_batches(run.datasets["train"])
    results = {"machine": describe_machine(), "workdir": args.workdir, "task": run.task.name,
               "model": run.config.model, "metric": metric_name(run), "scored_on": args.scored_on,
               "dataset": run.resolved.get("dataset"),
               "samples": args.samples,
               "fine_tune_learning_rate": args.fine_tune_lr or run.config.learning_rate,
               "recalibrate": args.recalibrate,
               "steps_per_epoch": steps_per_epoch, "original_epochs": run.config.epochs, "rows": []}
    print(f"machine: {results['machine']}", flush=True)
    measured = time.perf_counter()
    covariances = measure_feature_covariances(run.model, plan, run.datasets["train"], args.samples)
    results["covariance_seconds"] = round(time.perf_counter() - measured, 2)
    example_shape = example_shape_of(next(iter(run.datasets["test"])))  # a model for any size: counted as scored
    original = {"params": run.model.count_params(), "multiply_adds": count_multiply_adds(run.model, example_shape),
                "score": score(run, run.model)}
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
            draws = range(args.random_draws) if method == "random" else range(1)
            for draw in draws:
                chosen = time.perf_counter()
                choices = choose_channels(run.model, plan, covariances, keep, method, seed=draw)
                task, model = narrow_model(run, plan, choices, recalibrate_on=recalibrate_on)
                row = {"keep": keep, "method": method, "draw": draw,
                       "widths": {p: c.width for p, c in choices.items()},
                       "unreconstructed_share": {p: round(c.relative_error, 5) for p, c in choices.items()},
                       "selection_seconds": round(time.perf_counter() - chosen, 2),
                       "params": model.count_params(), "multiply_adds": count_multiply_adds(model, example_shape),
                       "pruned_score": score(run, model)}
                if method == "spectral" and not args.no_serving:
                    row["export"] = export_and_size(task, model, exports)
                    served[f"spectral {keep:g}"] = (row["export"]["export"], model)
                if draw == 0 and (keep < 1.0 or (args.control and method == "spectral")):
                    pruned_weights = model.get_weights()  # as scored: recalibrated once, when asked
                    for budget in budgets:
                        scores = []
                        for _ in range(args.fine_tune_draws):  # the pruned weights, a fresh optimizer
                            task, model = narrow_model(run, plan, choices, args.fine_tune_lr)
                            model.set_weights(pruned_weights)
                            seconds = train_steps(run, model, max(1, round(budget * steps_per_epoch)))
                            if recalibrate_on:  # as kerasapps compress --recalibrate does after fine-tuning
                                recalibrate_batch_normalization(model, run.datasets["train"], recalibrate_on)
                            scores.append(score(run, model))
                        row[f"fine_tuned_{budget:g}_score"] = scores[0]
                        if len(scores) > 1:
                            row[f"fine_tuned_{budget:g}_scores"] = scores
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
            task, model = scratch_model(run, plan, choices)  # at the run's own learning rate
            seconds = train_steps(run, model, max(1, round(budget * steps_per_epoch)))
            row[f"fine_tuned_{budget:g}_score"] = score(run, model)
            row[f"fine_tuned_{budget:g}_seconds"] = round(seconds, 1)
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
        pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    if served:
        results["latency"] = serving_latency(served, images, args.latency_rounds)
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


def plot_png(results: dict, width: int = 720, height: int = 440) -> bytes:
    """The score against the kept fraction, one line per method: pruned (solid) and after the first
    fine-tuning budget (dashed); returns the PNG's bytes (Pillow only, no plotting library). The
    vertical axis spans the scores shown, in tenths."""
    import io
    import math

    from PIL import Image, ImageDraw

    colours = {"spectral": (31, 119, 180), "l1": (214, 39, 40), "random": (127, 127, 127), "scratch": (44, 160, 44)}
    budget = next((k for row in results["rows"] for k in row
                   if k.startswith("fine_tuned_") and k.endswith("_score")), None)
    shown = [v for row in results["rows"] for k, v in row.items()
             if k in ("pruned_score", budget) and isinstance(v, float)] + [results["original"]["score"]]
    low = math.floor(min(shown) * 10) / 10
    high = max(math.ceil(max(shown) * 10) / 10, low + 0.1)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 56, width - 200, 30, height - 46
    x_of = lambda keep: left + (right - left) * (keep - 0.25) / 0.75  # noqa: E731
    y_of = lambda value: bottom - (bottom - top) * (value - low) / (high - low)  # noqa: E731
    draw.rectangle([left, top, right, bottom], outline="black")
    for tick in range(6):
        value = low + (high - low) * tick / 5
        y = y_of(value)
        draw.line([left - 4, y, left, y], fill="black")
        draw.text((10, y - 6), f"{100 * value:.0f}%", fill="black")
    for keep in (0.25, 0.5, 0.75, 1.0):
        draw.line([x_of(keep), bottom, x_of(keep), bottom + 4], fill="black")
        draw.text((x_of(keep) - 10, bottom + 8), f"{keep:g}", fill="black")
    draw.text(((left + right) // 2 - 40, height - 20), "kept fraction", fill="black")
    dataset = pathlib.PurePath(str(results.get("dataset") or "").removeprefix("folder:")).name or results["task"]
    draw.text((left, 8), f"{results['model']} on {dataset}: {results['metric']}, {results.get('scored_on', 'test split')}", fill="black")
    legend = 0
    for method, colour in colours.items():
        for key, dashed in (("pruned_score", False), (budget, True)):
            points = []
            for keep in (0.25, 0.5, 0.75, 1.0):
                row = next((r for r in results["rows"] if r["method"] == method and r["keep"] == keep
                            and r.get("draw", 0) == 0), None)
                value = (row or {}).get(key)
                if value is None and keep == 1.0 and key == "pruned_score" and method != "scratch":
                    value = results["original"]["score"]
                if value is not None:
                    points.append((x_of(keep), y_of(value)))
            if len(points) < 2:
                continue
            for (x0, y0), (x1, y1) in zip(points, points[1:]):
                steps = 12 if dashed else 1
                for i in range(0, steps, 2 if dashed else 1):
                    a, b = i / steps, (i + 1) / steps
                    draw.line([x0 + (x1 - x0) * a, y0 + (y1 - y0) * a, x0 + (x1 - x0) * b, y0 + (y1 - y0) * b],
                              fill=colour, width=2)
            for x, y in points:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            label = f"{method}, " + ("pruned" if not dashed else budget.removeprefix("fine_tuned_").removesuffix(
                "_score") + " epoch")
            y = top + 10 + 18 * legend
            draw.line([right + 12, y, right + 36, y], fill=colour, width=2)
            draw.text((right + 42, y - 6), label + (" (dashed)" if dashed else ""), fill="black")
            legend += 1
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


if __name__ == "__main__":
    main()
