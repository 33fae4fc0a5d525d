"""LiteRT and ONNX exports of a task's tensor core, checked through their own runtimes.

A SavedModel (:mod:`kerasapps.serving.export`) carries the whole serving function: decoding,
resizing, class names, beam search. String inputs and those ops do not convert, so
``kerasapps export TASK --format litert|onnx`` converts the task's *tensor core* instead
(:meth:`kerasapps.api.Task.tensor_core`: pixels in, scores out). The converted file is run
through the format's own runtime (``ai_edge_litert``, ``onnxruntime``) on held-out inputs and
compared with the Keras model; only when it agrees within :data:`TOLERANCES` is it written, with
a ``kerasapps.json`` beside it saying how to feed it and read it::

    saved_models/
      classification/1/            SavedModels only: TF Serving's model folder, unchanged
      classification-litert/1/     model.tflite + kerasapps.json
      classification-onnx/1/       model.onnx + kerasapps.json

Each format has its own model folder, versioned and written atomically as SavedModels are, so
TF Serving pointed at ``saved_models/classification`` never meets a version without
``saved_model.pb`` (it would report it as a failed load), and ``kerasapps serve saved_models``
skips folders that hold no SavedModel version.

Example::

    core = task.tensor_core(model)
    path = export_converted(task.name, core, "saved_models", "litert", "int8",
                            representative=train_images[:256], check_inputs=test_images[:64])
    load_converted(path).predict(test_images[:8])          # through LiteRT, no TensorFlow call
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import re
import sys
import tempfile
from typing import Any, Callable

import numpy as np

from kerasapps.errors import ExportCheckFailed, UsageError

FORMATS = ("savedmodel", "litert", "onnx")
QUANTIZATIONS = ("none", "float16", "int8")
FILE_NAMES = {"litert": "model.tflite", "onnx": "model.onnx"}
METADATA_FILE = "kerasapps.json"
NEEDS = {"litert": ("ai_edge_litert",), "onnx": ("tf2onnx", "onnx", "onnxruntime")}  # modules each format imports
CHECK_EXAMPLES = 64  # held-out examples each converted model is checked on before it is written

# The check a converted model must pass against the Keras model on CHECK_EXAMPLES held-out inputs.
# within: share of output values whose |converted - keras| <= atol x max(1, largest |keras output|);
# not the largest difference alone, because an argmax inside the model (argmax pooling indices)
# flips where a flat image region makes a tie, and moves a few values by far more than rounding.
# agreement: share of argmax-over-the-last-axis predictions that agree (top-1 for one score vector
# per example, per pixel for per-pixel scores), for cores whose outputs are class scores.
# int8 also: decided_agreement, the agreement on the outputs whose top score leads the runner-up by
# at least decided_margin x that scale. int8 rounds every activation to one of 256 steps, so where
# the model's two best classes nearly tie it may flip them (and two scores that round to the same
# step tie); where the model decides clearly it must not. Measured on CamVid's SegNet-Basic (90x120,
# 64 val frames): 94.5% of pixels agree, half of the rest ties of int8 logits, the others at a
# median lead of 0.03; 99.0% agree where the lead is >= 0.1 (81% of pixels); the int8 file's mean
# IoU was higher than float32's (docs/export-formats.md).
TOLERANCES = {
    "none": {"atol": 1e-4, "within": 0.99, "agreement": 0.995},    # float32: the same arithmetic, reordered
    "float16": {"atol": 1e-2, "within": 0.99, "agreement": 0.98},  # float16 weights, float32 arithmetic
    "int8": {"agreement": 0.90, "decided_margin": 0.1, "decided_agreement": 0.98},  # full-integer
}
INT8_WITHOUT_SCORES = {"atol": 0.1, "within": 0.99}  # int8 of a core whose outputs are not class scores
TOLERANCE_KEYS = {key for figures in (*TOLERANCES.values(), INT8_WITHOUT_SCORES) for key in figures}


@dataclasses.dataclass
class TensorCore:
    """What a LiteRT or ONNX export converts: a Keras model with one numeric input and one
    numeric output, and what a user of the converted file must do around it.

    Attributes:
        model: the Keras model (its weights are the run's).
        preprocessing: how raw inputs become the model's input (sizes, value range, layout).
        postprocessing: what the output means and how to read a prediction from it.
        classes: names of the classes on the output's last axis, or None.
        scores: whether the output's last axis holds class scores (argmax = prediction); the
            int8 check then counts agreeing predictions.
        inputs_of: a batch of the task's datasets -> the model's input array (default: the
            first element of an ``(inputs, labels)`` pair).
        tolerances: ``{quantization: {key: value}}`` replacing figures of :data:`TOLERANCES` for
            this core's check, for outputs the default check judges wrongly (e.g. a task with
            many classes that often nearly tie may accept less int8 agreement). Keys are those
            of :data:`TOLERANCES` (and ``atol``/``within`` for int8); the figures used are
            recorded in ``kerasapps.json``.

    Example (in a task's ``tensor_core``)::

        return TensorCore(model, "RGB 0..255 float32 [N, 64, 64, 3]", "softmax probabilities",
                          classes=self.info["class_names"], tolerances={"int8": {"agreement": 0.85}})
    """

    model: Any
    preprocessing: str
    postprocessing: str
    classes: list | None = None
    scores: bool = True
    inputs_of: Callable = dataclasses.field(default=lambda batch: batch[0] if isinstance(batch, tuple) else batch)
    tolerances: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):  # a plugin's mistake, named when the core is made rather than after a conversion
        for quantize, figures in self.tolerances.items():
            if quantize not in TOLERANCES:
                raise ValueError(f"TensorCore tolerances: no quantization {quantize!r} (one of {', '.join(TOLERANCES)})")
            unknown = set(figures) - TOLERANCE_KEYS
            if unknown:
                raise ValueError(f"TensorCore tolerances[{quantize!r}]: unknown {', '.join(sorted(unknown))} "
                                 f"(known: {', '.join(sorted(TOLERANCE_KEYS))})")
            for key, value in figures.items():
                if not isinstance(value, (int, float)) or not 0 <= value <= (1 if key != "atol" else float("inf")):
                    raise ValueError(f"TensorCore tolerances[{quantize!r}][{key!r}]: expected a number"
                                     f"{' >= 0' if key == 'atol' else ' in 0..1'}, got {value!r}")
            merged = self.tolerance(quantize)
            for pair in (("atol", "within"), ("decided_margin", "decided_agreement")):
                if (pair[0] in merged) != (pair[1] in merged):
                    raise ValueError(f"TensorCore tolerances[{quantize!r}]: {' and '.join(pair)} go together")
            if not self.scores and {"agreement", "decided_margin"} & set(merged):
                raise ValueError(f"TensorCore tolerances[{quantize!r}]: agreement figures need scores=True")

    def tolerance(self, quantize: str) -> dict:
        """The figures this core's ``quantize`` export is checked against: :data:`TOLERANCES`
        (with :data:`INT8_WITHOUT_SCORES` where the outputs are no class scores), then ``tolerances``.

        Returns a dict of the check's figures (see :data:`TOLERANCES`)."""
        tolerance = dict(TOLERANCES[quantize])
        if not self.scores:  # no argmax to agree on
            tolerance = {key: value for key, value in tolerance.items() if key in ("atol", "within")}
            tolerance = {**INT8_WITHOUT_SCORES, **tolerance}
        return {**tolerance, **self.tolerances.get(quantize, {})}


def default_tensor_core(task, model) -> TensorCore:
    """The tensor core of a compiled Keras model with one float image input ``[N, H, W, C]`` of
    0..255 pixels and one output; the class names are ``task.info["class_names"]`` when the task
    keeps them there. Any other model is refused with a :class:`UsageError` saying why.

    Returns a :class:`TensorCore` wrapping ``model`` itself.

    Example::

        core = default_tensor_core(task, model)   # core.model is model
    """
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if not inputs or not outputs:
        raise UsageError(f"its model ({type(model).__name__}) is no functional Keras model with inputs and outputs")
    if len(inputs) != 1 or len(outputs) != 1:
        names = ", ".join(getattr(t, "name", "?") for t in inputs)
        raise UsageError(f"its model takes {len(inputs)} input(s) ({names}) and returns {len(outputs)} output(s), "
                         "not one image in and one tensor out")
    spec = inputs[0]
    shape, dtype = tuple(spec.shape), str(spec.dtype)
    if len(shape) != 4 or not dtype.startswith("float") or None in shape[1:]:
        raise UsageError(f"its model's input {spec.name!r} is {dtype} {list(shape)}, not float images [N, H, W, C] "
                         "of a fixed size")
    _, height, width, channels = shape
    classes = (getattr(task, "info", None) or {}).get("class_names")
    out_shape = tuple(outputs[0].shape)
    scores = bool(classes) and out_shape[-1] == len(classes)
    return TensorCore(
        model,
        preprocessing=(f"decode the image, resize it to {height}x{width} (bilinear), {channels} channel(s) "
                       f"({'grey' if channels == 1 else 'RGB'}); float32 pixel values 0..255, not rescaled (the "
                       f"model rescales); layout [N, {height}, {width}, {channels}] (NHWC), any batch size N"),
        postprocessing=("the model's output as Keras computes it; argmax over the last axis is the predicted "
                        "class, its index into 'classes'" if scores else "the model's output as Keras computes it"),
        classes=list(classes) if classes else None,
        scores=scores,
    )


# -- conversion -------------------------------------------------------------------------
def _converter_settings(quantize: str, representative) -> dict:
    """``tf.lite.TFLiteConverter`` settings for ``quantize``, as ``model.export`` passes them on."""
    import tensorflow as tf

    # Builtin ops only: Keras's default adds SELECT_TF_OPS (Flex), whose kernels the
    # ai-edge-litert runtime does not ship, so a Flex model would convert and then fail to load
    # on the device; without it the converter names the op instead.
    if quantize == "none":
        return {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize == "float16":
        return {"optimizations": [tf.lite.Optimize.DEFAULT],
                "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS], "supported_types": [tf.float16]}}

    def representative_dataset():  # one example per call, as the calibration expects
        for example in representative:
            yield [example[np.newaxis].astype(np.float32)]

    # Full-integer: every op int8 (an op without an int8 kernel is refused, named); the input and
    # output stay float32 (quantized and dequantized at the edges), so the interface is float32's.
    return {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative_dataset,
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}}


def convert(core: TensorCore, fmt: str, quantize: str, path, representative=None) -> None:
    """Convert ``core.model`` to ``fmt`` ("litert" or "onnx") into the file ``path``.

    Both go through Keras's own ``model.export``: for LiteRT it writes a SavedModel of the model's
    call and runs ``tf.lite.TFLiteConverter.from_saved_model`` with the settings given (a
    converter built ``from_concrete_functions`` instead left BatchNormalization's statistics as
    uninitialised variables: NaN outputs); for ONNX it runs tf2onnx (``from_function``), the
    maintained TensorFlow converter, with Keras's patch for NumPy 2. A model the converter cannot
    handle raises :class:`UsageError` naming the op.

    Example::

        convert(core, "onnx", "none", "model.onnx")
    """
    import tensorflow as tf

    spec = core.model.inputs[0]
    signature = [tf.TensorSpec([None, *spec.shape[1:]], tf.float32, name=_input_name(core))]
    captured = _Captured()
    try:
        with captured.stderr():  # the converters' C++ and tf2onnx logging: parsed below, not shown
            if fmt == "litert":
                core.model.export(str(path), format="litert", verbose=False, input_signature=signature,
                                  **_converter_settings(quantize, representative))
            else:
                core.model.export(str(path), format="onnx", verbose=False, input_signature=signature)
    except Exception as exc:  # noqa: BLE001 - every converter failure is reported as the reason it gives
        raise UsageError(f"the {fmt} converter cannot convert it: {_conversion_failure(exc, captured.text)}") from None
    if not pathlib.Path(path).is_file():
        raise UsageError(f"the {fmt} converter wrote no file: {_conversion_failure(None, captured.text)}")


def _input_name(core: TensorCore) -> str:
    name = getattr(core.model.inputs[0], "name", "") or "input"
    return re.sub(r"[^A-Za-z0-9_]", "_", name.split(":")[0])


def _conversion_failure(exc, logged: str) -> str:
    """The converter's reason in one line: the ops it cannot handle when it names them."""
    text = f"{exc or ''}\n{logged}"
    ops = re.findall(r"TF Select ops: ([^\n]+)", text)
    ops += re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)
    ops += re.findall(r"Tensorflow op \[[^\]]*?: (\w+)\] is not supported", text)
    ops += re.findall(r"[Qq]uantization (?:is )?not (?:yet )?supported for op:? '?(\w+)", text)
    if ops:
        names = sorted({name.strip() for found in ops for name in found.split(",") if name.strip()})
        return f"op(s) {', '.join(names)} not supported"
    lines = [line.strip() for line in str(exc or logged).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


class _Captured:
    """File descriptor 2 sent to a temporary file (C++ logging bypasses ``sys.stderr``)."""

    text = ""

    @contextlib.contextmanager
    def stderr(self):
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                self.text = sink.read().decode(errors="replace")


# -- running a converted file -------------------------------------------------------------
class ConvertedModel:
    """A converted file run through its format's own runtime, without TensorFlow:
    ``predict(inputs)`` on a float32 array ``[N, ...]`` returns the output array.

    ``path`` is a ``model.tflite`` / ``model.onnx`` file or the version folder holding one.
    ``threads``: the runtime's intra-op threads (default: every core, as TensorFlow uses).

    Example::

        model = ConvertedModel("saved_models/classification-litert/1")
        scores = model.predict(images)              # images: float32 [N, 28, 28, 1], 0..255
    """

    def __init__(self, path, threads: int | None = None):
        path = pathlib.Path(path)
        if path.is_dir():
            found = [path / name for name in FILE_NAMES.values() if (path / name).is_file()]
            if not found:
                raise UsageError(f"{path} holds no {' or '.join(FILE_NAMES.values())}")
            path = found[0]
        self.path = path
        self.format = "litert" if path.suffix == ".tflite" else "onnx"
        threads = threads or os.cpu_count() or 1
        if self.format == "litert":
            from ai_edge_litert.interpreter import Interpreter

            self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self._batch = None
            detail, out = self._interpreter.get_input_details()[0], self._interpreter.get_output_details()[0]
            self.inputs = [{"name": detail["name"], "shape": _shape(detail["shape_signature"]),
                            "dtype": np.dtype(detail["dtype"]).name}]
            self.outputs = [{"name": out["name"], "shape": _shape(out["shape_signature"]),
                             "dtype": np.dtype(out["dtype"]).name}]
        else:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.inputs = [{"name": i.name, "shape": _shape(i.shape), "dtype": _onnx_dtype(i.type)}
                           for i in self._session.get_inputs()]
            self.outputs = [{"name": o.name, "shape": _shape(o.shape), "dtype": _onnx_dtype(o.type)}
                            for o in self._session.get_outputs()]

    def predict(self, inputs, batch_size: int = 32) -> np.ndarray:
        """The output for ``inputs`` (float32 ``[N, ...]``), run ``batch_size`` rows at a time."""
        inputs = np.asarray(inputs, np.float32)
        parts = [self._run(inputs[start:start + batch_size]) for start in range(0, len(inputs), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self.format == "onnx":
            return self._session.run(None, {self.inputs[0]["name"]: batch})[0]
        interpreter = self._interpreter
        if self._batch != batch.shape:
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], batch.shape)
            interpreter.allocate_tensors()
            self._batch = batch.shape
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def load_converted(path, threads: int | None = None) -> ConvertedModel:
    """A LiteRT or ONNX export (its version folder or file) as a :class:`ConvertedModel`.

    Example::

        load_converted("saved_models/segmentation-onnx/1").predict(images).argmax(-1)   # masks
    """
    return ConvertedModel(path, threads)


def _shape(shape) -> list:
    return [int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None for d in shape]


def _onnx_dtype(type_name: str) -> str:
    return {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
            "tensor(int32)": "int32"}.get(type_name, type_name)


# -- the check ------------------------------------------------------------------------------
def check_converted(converted: ConvertedModel, core: TensorCore, inputs: np.ndarray, quantize: str) -> dict:
    """Compare ``converted`` with ``core.model`` on ``inputs`` against :data:`TOLERANCES`
    (as ``core.tolerances`` changes them: :meth:`TensorCore.tolerance`).

    Returns the figures (``max_abs_diff``, ``scale``, ``within``, ``argmax_agreement``,
    ``tolerance``, ``passed``). Example::

        check_converted(load_converted(path), core, test_images[:64], "int8")["passed"]
    """
    expected = np.asarray(core.model.predict(inputs, batch_size=32, verbose=0), np.float32)
    got = converted.predict(inputs)
    if got.shape != expected.shape:
        return {"examples": len(inputs), "passed": False,
                "reason": f"output shape {list(got.shape)} is not the Keras model's {list(expected.shape)}"}
    scale = max(1.0, float(np.abs(expected).max()))
    difference = np.abs(got - expected)
    tolerance = core.tolerance(quantize)
    within = float((difference <= tolerance["atol"] * scale).mean()) if "atol" in tolerance else None
    agreement = float((got.argmax(-1) == expected.argmax(-1)).mean()) if core.scores else None
    decided = (decided_agreement(expected, got, tolerance["decided_margin"] * scale)
               if core.scores and "decided_margin" in tolerance else None)
    failed = []
    if within is not None and within < tolerance["within"]:
        failed.append(f"{within:.4f} of the output values within {tolerance['atol']:g} x {scale:.3g}, "
                      f"< {tolerance['within']}")
    if "agreement" in tolerance and agreement < tolerance["agreement"]:
        failed.append(f"argmax agreement {agreement:.4f} < {tolerance['agreement']}")
    if decided and decided["agreement"] is not None and decided["agreement"] < tolerance["decided_agreement"]:
        failed.append(f"argmax agreement {decided['agreement']:.4f} where the Keras model's top score leads by >= "
                      f"{tolerance['decided_margin']:g} x {scale:.3g} ({decided['share']:.2f} of the outputs), "
                      f"< {tolerance['decided_agreement']}")
    return {"examples": len(inputs), "max_abs_diff": float(difference.max()), "scale": scale, "within": within,
            "argmax_agreement": agreement,
            **({"decided_agreement": decided["agreement"], "decided_share": decided["share"]} if decided else {}),
            "tolerance": tolerance, "passed": not failed, **({"reason": "; ".join(failed)} if failed else {})}


def decided_agreement(expected: np.ndarray, got: np.ndarray, margin: float) -> dict:
    """The argmax agreement of ``got`` with ``expected`` (scores on the last axis) on the outputs
    whose top score in ``expected`` leads the runner-up by at least ``margin``.

    Returns ``{"agreement": share or None where no output leads by that much, "share": share of
    the outputs that do}``. Example::

        decided_agreement(keras_scores, litert_scores, 0.1)["agreement"]   # e.g. 0.99
    """
    if expected.shape[-1] < 2:  # one score: nothing to lead
        return {"agreement": None, "share": 0.0}
    top_two = np.sort(expected, axis=-1)[..., -2:]
    clear = (top_two[..., 1] - top_two[..., 0]) >= margin
    same = got.argmax(-1) == expected.argmax(-1)
    return {"agreement": float(same[clear].mean()) if clear.any() else None, "share": float(clear.mean())}


# -- the export -------------------------------------------------------------------------------
def export_converted(task_name: str, core: TensorCore, export_dir, fmt: str, quantize: str = "none", *,
                     check_inputs, representative=None, metadata: dict | None = None) -> pathlib.Path:
    """Convert ``core`` to ``fmt``, check it on ``check_inputs`` through the format's runtime and
    write it as the next version of ``<export_dir>/<task>-<fmt>/`` with ``kerasapps.json``.

    Conversion and check run in a temporary folder outside ``export_dir``: a refusal
    (:class:`UsageError`, e.g. an op the converter lacks) or a failed check
    (:class:`ExportCheckFailed`) leaves nothing there. ``representative``: inputs for int8
    calibration (the run's training data). Returns the version folder.

    Example::

        export_converted("classification", core, "saved_models", "onnx", check_inputs=test_images[:64])
    """
    from kerasapps.serving.export import publish_version

    check_format(fmt, quantize)
    if fmt not in FILE_NAMES:
        raise UsageError(f"export_converted writes {' or '.join(FILE_NAMES)}, not {fmt} (SavedModels: "
                         "kerasapps.serving.export.export_saved_model)")
    if quantize == "int8" and (representative is None or not len(representative)):
        raise UsageError("int8 quantization needs a representative sample of training inputs; none was given")
    check_inputs = np.asarray(check_inputs, np.float32)
    with tempfile.TemporaryDirectory(prefix="kerasapps-convert-") as scratch:
        model_file = pathlib.Path(scratch) / "model" / FILE_NAMES[fmt]
        model_file.parent.mkdir()
        convert(core, fmt, quantize, model_file, representative)
        description = f"{fmt}{'' if quantize == 'none' else ' ' + quantize}"
        with _Captured().stderr():  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate" line
            converted = ConvertedModel(model_file)
            try:
                check = check_converted(converted, core, check_inputs, quantize)
            except RuntimeError as exc:  # the file converted but its runtime cannot run it (seen: XNNPACK
                # refusing an int8 tensor whose calibrated range was absurd): a file no one can use
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ExportCheckFailed(
                    f"the {description} model does not run in {_runtime_name(fmt)} ({reason}); nothing written"
                    + ("; --quantize float16 keeps more precision" if quantize == "int8" else "")) from None
        if not check["passed"]:
            raise ExportCheckFailed(
                f"the {description} model disagrees with the Keras model on {check['examples']} held-out examples "
                f"({check['reason']}); nothing written" + ("; --quantize float16 keeps more precision"
                                                           if quantize == "int8" else ""))
        meta = {
            "task": task_name, "format": fmt, "quantization": quantize, "file": model_file.name,
            "bytes": model_file.stat().st_size,
            "inputs": converted.inputs, "outputs": converted.outputs,
            "preprocessing": core.preprocessing, "postprocessing": core.postprocessing, "classes": core.classes,
            "check": {**check, "against": "the Keras model", "runtime": _runtime_name(fmt)},
            **({"representative_examples": len(representative)} if quantize == "int8" else {}),
            "converter": _converter_versions(fmt),
            **(metadata or {}),
        }
        (model_file.parent / METADATA_FILE).write_text(json.dumps(meta, indent=2, default=str))
        return publish_version(model_file.parent, export_dir, f"{task_name}-{fmt}")


def check_format(fmt: str, quantize: str = "none") -> None:
    """Refuse an unknown format or quantization, or quantization for another format than LiteRT,
    with a :class:`UsageError`. Example: ``check_format("litert", "int8")``."""
    if fmt not in FORMATS:
        raise UsageError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize not in QUANTIZATIONS:
        raise UsageError(f"quantize: expected one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if quantize != "none" and fmt != "litert":
        raise UsageError(f"--quantize {quantize} is for --format litert (LiteRT's post-training quantization); "
                         f"{fmt} exports float32")
    import importlib.util

    missing = [name for name in NEEDS.get(fmt, ()) if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"--format {fmt} needs {', '.join(missing)}, not installed: pip install 'kerasapps[formats]'")


def _runtime_name(fmt: str) -> str:
    from importlib.metadata import version

    name = "ai-edge-litert" if fmt == "litert" else "onnxruntime"
    return f"{name} {version(name)}"


def _converter_versions(fmt: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    names = ["tensorflow", "keras"] + (["tf2onnx", "onnx"] if fmt == "onnx" else [])
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


__all__ = ["CHECK_EXAMPLES", "ConvertedModel", "ExportCheckFailed", "FORMATS", "QUANTIZATIONS", "TOLERANCES",
           "TensorCore", "check_converted", "check_format", "convert", "default_tensor_core", "export_converted",
           "load_converted"]
