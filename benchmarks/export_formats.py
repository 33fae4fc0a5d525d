"""Size, latency and metric of each export format of a trained run (issue 29, item 5).

    python -m benchmarks.export_formats TASK --workdir RUN --export-dir DIR [--repeats 7] [--json OUT]

Exports RUN (its best weights, the config it was trained with) as a SavedModel and, through
``kerasapps.export(format=...)``, as ONNX and LiteRT float32 / float16 / int8 (each checked before
it is written), into DIR; then, for each:

- size: the bytes on disk (the SavedModel's folder: its serving function, decoding included);
- latency: the tensor core on one batch of 1 and of 32 test inputs, median of ``--repeats``
  timed calls after two warm-up calls. SavedModel: the trained Keras model's call as a
  ``tf.function`` (the graph inside the SavedModel's serving function, without decoding; the
  converted files hold the task's tensor core, which may be the same network built otherwise); the others through their
  own runtime (``ai_edge_litert``, ``onnxruntime``), every core;
- an export that fails its check is converted here all the same, measured and marked;
- metric on the whole test split through that runtime: top-1 accuracy (classification), or
  pixel accuracy and mean IoU over the non-void pixels (segmentation), at the model's input size.

Task-specific on purpose (benchmarks are not the core): classification and segmentation.
"""

import argparse
import json
import pathlib
import statistics
import time

import numpy as np

QUANTIZATIONS = [("onnx", "none"), ("litert", "none"), ("litert", "float16"), ("litert", "int8")]
VOID = 255


def _folder_bytes(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _median_ms(call, batch, repeats: int) -> float:
    call(batch)
    call(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call(batch)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class _Score:
    """Accumulates the task's metric over the test split: accuracy, or a confusion matrix."""

    def __init__(self, task: str, classes: int):
        self.task, self.classes = task, classes
        self.correct = self.total = 0
        self.confusion = np.zeros((classes, classes), np.int64)

    def add(self, outputs, labels):
        predicted, labels = np.asarray(outputs).argmax(-1), np.asarray(labels)
        if self.task == "classification":
            self.correct += int((predicted == labels).sum())
            self.total += len(labels)
            return
        valid = labels != VOID
        self.confusion += np.bincount(labels[valid].astype(np.int64) * self.classes + predicted[valid],
                                      minlength=self.classes ** 2).reshape(self.classes, self.classes)

    def result(self) -> dict:
        if self.task == "classification":
            return {"accuracy": self.correct / self.total}
        truth, guessed, hits = self.confusion.sum(1), self.confusion.sum(0), np.diag(self.confusion)
        union = truth + guessed - hits
        present = truth > 0
        return {"pixel_accuracy": float(hits.sum() / self.confusion.sum()),
                "mean_iou": float(np.mean(hits[present] / union[present]))}


def measure(task: str, workdir, export_dir, repeats: int = 7) -> dict:
    """Export ``workdir`` in every format into ``export_dir`` and measure each; returns the table's rows."""
    import tensorflow as tf

    import kerasapps
    from kerasapps.runs import make_run
    from kerasapps.serving.formats import load_converted

    from kerasapps.errors import ExportCheckFailed
    from kerasapps.serving.formats import FILE_NAMES, convert
    from kerasapps.training.runner import _first_examples

    task_run = make_run(task, use_workdir_config=True, workdir=workdir, export_dir=export_dir)
    task_run.resolved["precision"] = "float32"
    task_run.load_trained()
    core = task_run.task.tensor_core(task_run.model)
    exports, refused = {}, {}
    exports[("savedmodel", "none")] = kerasapps.export(task, workdir=workdir, export_dir=export_dir, verbose=0).export_path
    for fmt, quantize in QUANTIZATIONS:
        try:
            exports[(fmt, quantize)] = kerasapps.export(task, workdir=workdir, export_dir=export_dir, format=fmt,
                                                        quantize=quantize, verbose=0).export_path
        except ExportCheckFailed as exc:  # measured all the same (converted here, unchecked), and marked
            refused[(fmt, quantize)] = str(exc)
            path = pathlib.Path(export_dir) / "unchecked" / f"{fmt}-{quantize}"
            path.mkdir(parents=True, exist_ok=True)
            representative = _first_examples(task_run.datasets["train"], core.inputs_of, 256)
            convert(core, fmt, quantize, path / FILE_NAMES[fmt], representative)
            exports[(fmt, quantize)] = path
    test = [(np.asarray(core.inputs_of(batch)), np.asarray(batch[1])) for batch in task_run.datasets["test"]]
    inputs = np.concatenate([x for x, _ in test])
    batches = {1: inputs[:1], 32: inputs[:32]}
    classes = len(core.classes)

    @tf.function
    def keras_call(x):  # the trained model, as the SavedModel's serving function calls it
        return task_run.model(x, training=False)

    rows = []
    for (fmt, quantize), path in exports.items():
        if fmt == "savedmodel":
            size = _folder_bytes(path)
            run = lambda x: keras_call(tf.constant(x)).numpy()  # noqa: E731
            runtime = f"TensorFlow {tf.__version__}"
        else:
            converted = load_converted(path)
            size = converted.path.stat().st_size
            run = converted.predict
            runtime = "ai-edge-litert" if fmt == "litert" else "onnxruntime"
        score = _Score(task, classes)
        for x, labels in test:
            score.add(run(x), labels)
        rows.append({"format": fmt, "quantization": quantize, "path": str(path), "bytes": size, "runtime": runtime,
                     "batch1_ms": _median_ms(run, batches[1], repeats),
                     "batch32_ms": _median_ms(run, batches[32], repeats),
                     **score.result(), "test_examples": len(inputs),
                     **({"refused": refused[(fmt, quantize)]} if (fmt, quantize) in refused else {})})
    return {"task": task, "workdir": str(workdir), "rows": rows}


def table(result: dict) -> list[str]:
    """Markdown lines of ``measure``'s result."""
    metric = "accuracy" if result["task"] == "classification" else "mean_iou"
    float32 = next(r for r in result["rows"] if r["format"] == "litert" and r["quantization"] == "none")
    lines = [f"| format | size | size vs LiteRT float32 | batch 1 (ms) | batch 32 (ms) | {metric.replace('_', ' ')} |",
             "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        name = row["format"] + ("" if row["quantization"] == "none" else f" {row['quantization']}")
        name += " (failed the check: not written)" if "refused" in row else ""
        lines.append(f"| {name} | {row['bytes'] / 1024:.0f} KiB | {row['bytes'] / float32['bytes']:.2f} | "
                     f"{row['batch1_ms']:.2f} | {row['batch32_ms']:.2f} | {row[metric]:.4f} |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["classification", "segmentation"])
    parser.add_argument("--workdir", required=True, help="a trained run (not modified: exports go to --export-dir)")
    parser.add_argument("--export-dir", required=True)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    from benchmarks.machine import describe_machine

    result = measure(args.task, args.workdir, args.export_dir, args.repeats)
    result["machine"] = describe_machine()
    print(f"machine: {result['machine']}")
    for line in table(result):
        print(line)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
