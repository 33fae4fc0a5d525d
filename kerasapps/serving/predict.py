"""Running an exported SavedModel's ``serving_default`` on files or strings (``kerasapps predict``).

Inputs whose name ends in ``_bytes`` are read from files (TF Serving's
convention for binary data); other string inputs take the arguments as text,
with ``-`` for the lines of standard input and ``@FILE`` for the lines of FILE.
Outputs ending in ``_bytes`` are written as files under ``out``; the rest are
printed.

Example::

    for record in predict_inputs("saved_models/classification/1", ["a.png"], Path("preds")):
        print(record)   # {"input": "a.png", "label": "red circle", "class_id": 0, ...}
"""

from __future__ import annotations

import os
import pathlib
import sys

from kerasapps.errors import UsageError, tf_error_cause
from kerasapps.data.images import check_image_file, image_format


def load_signature(model_dir):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    path = pathlib.Path(model_dir)
    if not (path / "saved_model.pb").exists():
        raise UsageError(f"{model_dir} is not a SavedModel folder (no saved_model.pb)")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise UsageError(f"cannot load SavedModel {model_dir}: {str(exc).splitlines()[0]}") from None
    if "serving_default" not in loaded.signatures:
        raise UsageError(f"{model_dir} has no serving_default signature")
    return loaded, loaded.signatures["serving_default"]


def _output_value(name, value, stem: str, out: pathlib.Path):
    import numpy as np

    array = value.numpy()[0]
    if name.endswith("_bytes"):
        data = bytes(array)
        suffix = {"PNG": ".png", "JPEG": ".jpg"}.get(image_format(data[:16]) or "", ".bin")
        target = out / f"{stem or 'input'}_{name[:-6]}{suffix}"
        try:
            out.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except OSError as exc:
            raise UsageError(f"cannot write {target} (--out {out}): {exc.strerror or exc}") from None
        return str(target)
    if isinstance(array, bytes):
        return array.decode("utf-8", "replace")
    if array.dtype.kind in "OS" and array.size <= 64:  # a row of texts (top-k labels, say)
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in array.ravel().tolist()]
    if np.ndim(array) == 0:
        # float32 widened to a Python float prints its binary noise (0.3023000061...): round it.
        return round(float(array), 4) if array.dtype.kind == "f" else array.item()
    if array.size > 16 and array.dtype.kind == "f":
        top = np.argsort(array.ravel())[::-1][:3]
        return {f"top{i + 1}": [int(j), round(float(array.ravel()[j]), 4)] for i, j in enumerate(top)}
    if array.size > 16:  # a mask or an embedding: too big to print whole
        return f"<{array.dtype} array of shape {list(array.shape)}>"
    return np.round(array.astype(np.float64), 4).tolist() if array.dtype.kind == "f" else array.tolist()


def _text_items(inputs):
    """Expand ``-`` (standard input) and ``@FILE`` into their lines; other arguments stay as they are."""
    for item in inputs:
        if item == "-":
            try:
                yield from sys.stdin.buffer.read().decode("utf-8").splitlines()
            except UnicodeDecodeError as exc:
                raise UsageError(f"standard input is not valid UTF-8 text ({exc.reason} at byte {exc.start})") from None
        elif item.startswith("@"):
            try:
                yield from pathlib.Path(item[1:]).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read {item[1:]}: {getattr(exc, 'strerror', None) or exc}") from None
        else:
            try:
                item.encode("utf-8")  # arguments that are not UTF-8 arrive as lone surrogates
            except UnicodeEncodeError:
                raise UsageError(f"input {item.encode('utf-8', 'replace').decode()!r} is not valid UTF-8 text") from None
            yield item


def _extra_values(specs, given: dict) -> dict:
    """Tensors for the signature's numeric inputs: ``given`` values, else an empty batch."""
    import tensorflow as tf

    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise UsageError(f"--with {unknown[0]}: the model has no such input (it takes {', '.join(sorted(specs))})")
    values = {}
    for name, spec in specs.items():
        if spec.dtype == tf.string and name in given:  # a fixed text beside the main input (a caption to score)
            if name.endswith("_bytes"):
                raise UsageError(f"--with {name}: files are the inputs on the command line, not --with values")
            values[name] = tf.constant([given[name]])
            continue
        if spec.dtype == tf.string:
            raise UsageError(f"kerasapps predict handles one text or file input; the model takes {', '.join(sorted(specs))}")
        if name in given:
            try:
                number = float(given[name]) if spec.dtype.is_floating else int(given[name])
            except ValueError:
                raise UsageError(f"--with {name}={given[name]}: expected a number ({spec.dtype.name})") from None
            values[name] = tf.constant([number], spec.dtype)
        elif spec.shape.rank == 1 and spec.shape[0] is None:
            values[name] = tf.zeros([0], spec.dtype)
        else:
            raise UsageError(f"input {name!r} needs a value: --with {name}=VALUE")
    return values


def _file_stem(text: str) -> str:
    """A file name for outputs made from a text input: its words, joined, shortened."""
    words = "".join(c if c.isalnum() else "_" for c in text.strip().lower()).strip("_")
    return "_".join(filter(None, words.split("_")))[:60] or "input"


def _unique_stem(path: pathlib.Path | None, text_stem: str, used: set) -> str:
    """The stem output files of one input are named after: the file's stem (``a`` for ``a.png``),
    its name when another input had that stem (``a_jpg`` for ``a.jpg``), then a counter."""
    candidates = [path.stem, path.name.replace(".", "_")] if path is not None else [text_stem]
    stem = next((c for c in candidates if c not in used), None)
    number = 2
    while stem is None:
        stem = f"{candidates[-1]}_{number}" if f"{candidates[-1]}_{number}" not in used else None
        number += 1
    used.add(stem)
    return stem


def predict_inputs(model_dir, inputs, out: pathlib.Path, extra_values: dict | None = None):
    """Yield one dict of readable outputs per input (file path or string).

    The signature's one string input (``*_bytes``: a file; else text) takes each
    input in turn; its other inputs take ``extra_values`` (name -> str): numbers, or one text
    for every input (a second string input, e.g. the caption an image is scored against).
    """
    import tensorflow as tf

    _loaded, signature = load_signature(model_dir)
    specs = signature.structured_input_signature[1]
    given = dict(extra_values or {})
    main = [name for name, spec in specs.items() if spec.dtype == tf.string and name not in given]
    if len(main) != 1:
        strings = [name for name, spec in specs.items() if spec.dtype == tf.string]
        hint = " (give all but one with --with NAME=TEXT)" if len(strings) > 1 else ""
        raise UsageError(f"kerasapps predict needs one text or file input; {model_dir} takes {', '.join(sorted(specs))}{hint}")  # sorted: a loaded signature's order varies
    input_name = main[0]
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; name a folder for the image outputs")
    extras = _extra_values({n: s for n, s in specs.items() if n != input_name}, given)
    is_file = input_name.endswith("_bytes")
    if not is_file:
        inputs = _text_items(inputs)
    stems: set[str] = set()
    for item in inputs:
        if is_file:
            value = tf.constant([check_image_file(item)])
        else:
            value = tf.constant([item])
        try:
            outputs = signature(**{input_name: value}, **extras)
        except tf.errors.InvalidArgumentError as exc:
            raise UsageError(f"{item}: the model could not read it ({tf_error_cause(exc)})") from None
        record = {"input": item}
        stem = _unique_stem(pathlib.Path(item) if is_file else None, _file_stem(item), stems)
        for name in sorted(outputs):
            record[name] = _output_value(name, outputs[name], stem, out)
        yield record
