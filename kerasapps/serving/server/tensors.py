"""TF Serving's JSON encoding of tensors: request bodies to arrays, arrays to response bodies.

Row format (``{"instances": [...]}``) lists one item per example: the input's value when the
signature has one input, else an object of input name -> value. Columnar format
(``{"inputs": ...}``) gives each input whole. Binary strings travel as ``{"b64": "..."}``;
outputs whose name ends in ``_bytes`` are always sent that way, as TF Serving does.

Example::

    inputs, row_format = parse_predict_body(body, specs)   # {"image_bytes": array([b"..."], dtype=object)}
    encode_predict_response(outputs, row_format)           # {"predictions": [...]}
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np

# numpy's (and so a request tensor's) most dimensions; deeper lists cannot be an input.
MAX_DIMENSIONS = 64


class BadRequest(ValueError):
    """The request cannot be served as sent: answered with HTTP 400 and ``{"error": message}``."""


def parse_json_body(raw: bytes):
    """The request body's JSON value; BadRequest for malformed JSON or nesting too deep to read."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON in the request body: {exc}") from None
    except RecursionError:  # Python's JSON reader recurses once per level
        raise BadRequest("the request body nests arrays or objects too deeply to read; an input has at most "
                         f"{MAX_DIMENSIONS} dimensions") from None


def _decode_value(value, is_string: bool, where: str, depth: int = 0):
    """Nested JSON lists -> nested Python lists with ``{"b64": ...}`` decoded and strings as bytes."""
    if isinstance(value, list):
        if depth == MAX_DIMENSIONS:
            raise BadRequest(f"{where}: nested more than {MAX_DIMENSIONS} lists deep; an input has at most "
                             f"{MAX_DIMENSIONS} dimensions")
        return [_decode_value(v, is_string, where, depth + 1) for v in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise BadRequest(f"{where}: an object value must be {{\"b64\": \"<base64 string>\"}}, got keys {sorted(value)}")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"{where}: the \"b64\" value is not valid base64") from None
    if is_string:
        if not isinstance(value, str):
            raise BadRequest(f"{where}: expected a string or {{\"b64\": ...}}, got {type(value).__name__}")
        return value.encode("utf-8")
    return value


def to_array(value, spec, name: str) -> np.ndarray:
    """One input's JSON value as a numpy array of the signature's dtype, checked against its shape."""
    import tensorflow as tf

    is_string = spec.dtype == tf.string
    decoded = _decode_value(value, is_string, f"input {name!r}")
    try:
        if is_string:
            array = np.array(decoded, dtype=object)
            if array.dtype != object or any(not isinstance(x, bytes) for x in array.ravel()):
                raise ValueError("ragged")
        else:
            if any(isinstance(x, (str, bytes)) for x in np.ravel(np.array(decoded, dtype=object))):
                raise BadRequest(f"input {name!r}: expected numbers ({spec.dtype.name}), got strings")
            array = np.array(decoded, dtype=spec.dtype.as_numpy_dtype)
    except BadRequest:
        raise
    except (ValueError, TypeError, OverflowError):
        raise BadRequest(f"input {name!r}: not a rectangular array of {spec.dtype.name} values") from None
    if not spec.shape.is_compatible_with(array.shape):
        raise BadRequest(f"input {name!r}: shape {list(array.shape)} does not fit the signature's "
                         f"{[d if d is not None else -1 for d in spec.shape.as_list()]}")
    return array


def parse_predict_body(body, specs: dict) -> tuple[dict, bool]:
    """(input name -> array, True for row format) from a parsed ``:predict`` request body."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with \"instances\" or \"inputs\"")
    if ("instances" in body) == ("inputs" in body):
        raise BadRequest("the request body needs exactly one of \"instances\" (row format) or \"inputs\" (columnar format)")
    names = sorted(specs)
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise BadRequest("\"instances\" must be a non-empty list")
        if len(names) == 1 and not (isinstance(rows[0], dict) and set(rows[0]) - {"b64"}):
            columns = {names[0]: rows}
        else:
            for i, row in enumerate(rows):
                if not isinstance(row, dict):
                    raise BadRequest(f"instances[{i}] must be an object of input name -> value (the model takes {', '.join(names)})")
                _check_names(row, specs, f"instances[{i}]")
            columns = {name: [row[name] for row in rows] for name in names}
        return {name: to_array(value, specs[name], name) for name, value in columns.items()}, True
    given = body["inputs"]
    if not (isinstance(given, dict) and set(given) - {"b64"}):
        if len(names) != 1:
            raise BadRequest(f"\"inputs\" must be an object of input name -> value (the model takes {', '.join(names)})")
        given = {names[0]: given}
    _check_names(given, specs, "inputs")
    return {name: to_array(given[name], specs[name], name) for name in names}, False


def _check_names(given: dict, specs: dict, where: str) -> None:
    unknown = sorted(set(given) - set(specs))
    missing = sorted(set(specs) - set(given))
    if unknown or missing:
        problem = f"unknown input {unknown[0]!r}" if unknown else f"missing input {missing[0]!r}"
        raise BadRequest(f"{where}: {problem}; the model takes {', '.join(sorted(specs))}")


def _json_value(array: np.ndarray, binary: bool):
    if array.dtype == object or array.dtype.kind == "S":
        flat = [{"b64": base64.b64encode(x).decode("ascii")} if binary else x.decode("utf-8", "replace")
                for x in array.ravel()]
        return np.array(flat, dtype=object).reshape(array.shape).tolist() if array.ndim else flat[0]
    return array.tolist()


def encode_predict_response(outputs: dict, row_format: bool) -> dict:
    """TF Serving's ``{"predictions": ...}`` (row format) or ``{"outputs": ...}`` (columnar) body."""
    names = sorted(outputs)
    values = {name: _json_value(outputs[name], name.endswith("_bytes")) for name in names}
    if not row_format:
        return {"outputs": values[names[0]] if len(names) == 1 else values}
    sizes = {name: (outputs[name].shape[0] if outputs[name].ndim else None) for name in names}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise BadRequest(f"the outputs' first dimensions differ ({sizes}): use the columnar format (\"inputs\")")
    if len(names) == 1:
        return {"predictions": values[names[0]]}
    rows = next(iter(sizes.values()))
    return {"predictions": [{name: values[name][i] for name in names} for i in range(rows)]}
