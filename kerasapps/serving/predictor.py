"""An exported SavedModel's ``serving_default`` as a Python object: :func:`load` -> :class:`Predictor`.

Only TensorFlow is needed (no plugin, no Keras): the export is served as TensorFlow Serving
serves it. Image inputs (a signature input named ``*_bytes``) take file paths, encoded bytes,
PIL images or uint8 NumPy arrays ``[H, W, 3]``; text inputs take strings. Results are plain
Python: strings, numbers, NumPy arrays (masks, scores) and PIL images (generated pictures);
in a notebook each shows itself inline (the input, and the output beside it).

Example::

    predictor = load("saved_models/classification/1")
    [result] = predictor.predict(["cat.png"])
    result["label"], result["scores"]       # "cat", array([...], dtype=float32)
    result                                  # in Jupyter: the picture and its label
"""

from __future__ import annotations

import base64
import functools
import html
import io
import os
import pathlib

from kerasapps.data.images import check_image_bytes, check_image_file
from kerasapps.errors import UsageError, tf_error_cause
from kerasapps.serving.predict import load_signature

# Colours of mask classes in the inline picture (class id modulo the list).
MASK_PALETTE = ((128, 128, 128), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128))


def _pil():
    try:
        from PIL import Image
    except ImportError:  # results are NumPy arrays then
        return None
    return Image


def _png(array) -> bytes:
    from kerasapps.data.images import encode_png

    return encode_png(array)


def encode_image_input(item, index: int) -> bytes:
    """The encoded bytes of one image input: a path, bytes, a PIL image or a uint8 array ``[H, W, C]``."""
    import numpy as np

    if isinstance(item, (str, os.PathLike)):
        return check_image_file(item)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return check_image_bytes(bytes(item), f"input {index} (bytes)")
    image_class = _pil()
    if image_class is not None and isinstance(item, image_class.Image):
        buffer = io.BytesIO()
        item.convert("RGB").save(buffer, format="PNG")
        return buffer.getvalue()
    if isinstance(item, np.ndarray):
        if item.ndim == 2:
            item = item[..., None]
        if item.ndim != 3 or item.shape[-1] not in (1, 3, 4):
            raise UsageError(f"input {index}: an image array must be [height, width, 1, 3 or 4], not {list(item.shape)}")
        if item.dtype != np.uint8:
            if item.dtype.kind != "f" or np.nanmin(item) < 0 or np.nanmax(item) > 255:
                raise UsageError(f"input {index}: an image array must be uint8, or floats in 0..255 (got {item.dtype})")
            item = np.round(item).astype(np.uint8)
        return check_image_bytes(_png(item), f"input {index} (array)")
    raise UsageError(f"input {index}: expected a file path, bytes, a PIL image or a NumPy array for an image, "
                     f"not {type(item).__name__}")


def _to_python(name: str, value):
    """One example's output as plain Python: text, numbers, arrays, pictures."""
    import numpy as np

    if isinstance(value, bytes):
        if name.endswith("_bytes"):
            import tensorflow as tf

            pixels = tf.io.decode_image(value, expand_animations=False).numpy()
            image_class = _pil()
            return image_class.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels) if image_class else pixels
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OS":
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value.ravel().tolist()]
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


class Prediction(dict):
    """One input's outputs (output name -> plain Python value), with the input in ``.input``.

    Shows itself inline in a notebook: the input image (or text), then each output (text,
    numbers, a mask over the input, a generated picture)."""

    def __init__(self, outputs: dict, input=None, input_image: bytes | None = None):
        super().__init__(outputs)
        self.input = input
        self._input_image = input_image

    @functools.cached_property
    def _input_pixels(self):  # decoded once, however many outputs are drawn over it
        if self._input_image is None:
            return None
        import tensorflow as tf

        return tf.io.decode_image(self._input_image, channels=3, expand_animations=False).numpy()

    def _cell(self, name: str, value) -> str:
        import numpy as np

        image_class = _pil()
        if image_class is not None and isinstance(value, image_class.Image):
            return _img_tag(np.asarray(value.convert("RGB")))
        if isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind in "iu":
            pixels = self._input_pixels
            return _img_tag(mask_overlay(value, pixels)) + f"<br><small>mask {value.shape[0]}x{value.shape[1]}, " \
                f"classes {sorted(set(np.unique(value).tolist()))[:12]}</small>"
        if isinstance(value, np.ndarray) and value.ndim == 3 and value.shape[-1] in (1, 3) and value.size > 64:
            return _img_tag(value)
        if isinstance(value, np.ndarray):
            if value.size <= 16:
                return html.escape(np.array2string(np.round(value, 4), separator=", "))
            return html.escape(f"{value.dtype} array of shape {list(value.shape)}")
        if isinstance(value, float):
            return f"{value:.4g}"
        return html.escape(str(value))

    def _repr_html_(self) -> str:
        rows = []
        pixels = self._input_pixels
        if pixels is not None:
            rows.append(f"<tr><th>input</th><td>{_img_tag(pixels)}</td></tr>")
        elif isinstance(self.input, str):
            rows.append(f"<tr><th>input</th><td>{html.escape(self.input)}</td></tr>")
        for name, value in self.items():
            rows.append(f"<tr><th>{html.escape(name)}</th><td>{self._cell(name, value)}</td></tr>")
        return "<table>" + "".join(rows) + "</table>"


class Predictions(list):
    """The :class:`Prediction` of each input, in order; inline in a notebook, one after another."""

    def _repr_html_(self) -> str:
        return "".join(p._repr_html_() for p in self)


def _img_tag(pixels, max_side: int = 256) -> str:
    import numpy as np

    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    height, width = pixels.shape[:2]
    scale = max(1, max_side // max(height, width, 1))  # small images drawn larger, crisp
    data = base64.b64encode(_png(pixels.astype(np.uint8))).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" width="{width * scale}" height="{height * scale}" '
            f'style="image-rendering: pixelated">')


def mask_overlay(mask, pixels=None):
    """A uint8 RGB picture of a class-id mask ``[H, W]``: each class in its own colour, blended
    half and half with ``pixels`` (the input image, resized to the mask) when given.

    Returns a uint8 array ``[H, W, 3]``.
    """
    import numpy as np

    palette = np.asarray(MASK_PALETTE, np.float32)
    mask = np.asarray(mask)
    colours = palette[np.mod(np.where(mask < 0, 0, mask), len(palette))]
    if pixels is not None:
        import tensorflow as tf

        image = tf.image.resize(tf.cast(pixels, tf.float32), mask.shape[:2]).numpy()
        colours = 0.5 * colours + 0.5 * image[..., :3]
    return np.round(colours).astype(np.uint8)


class Predictor:
    """An export's ``serving_default``, called from Python (see :func:`load`).

    ``input_name`` is the signature's input that :meth:`predict` feeds (its one string input
    without a value in ``predict``'s keyword arguments); ``inputs`` and ``outputs`` name the
    signature's tensors.
    """

    def __init__(self, export_dir):
        import tensorflow as tf

        self.export_dir = pathlib.Path(export_dir)
        self._loaded, self.signature = load_signature(self.export_dir)
        self.input_specs = dict(self.signature.structured_input_signature[1])
        self.inputs = sorted(self.input_specs)
        self.outputs = sorted(self.signature.structured_outputs)
        self._strings = [name for name, spec in self.input_specs.items() if spec.dtype == tf.string]

    def __repr__(self) -> str:
        return f"Predictor({str(self.export_dir)!r}, inputs={self.inputs}, outputs={self.outputs})"

    def predict(self, inputs, **values) -> Predictions:
        """Run the signature on each of ``inputs`` (one item or a list): image inputs take file
        paths, bytes, PIL images or uint8 arrays; text inputs take strings. ``values`` give the
        signature's other inputs by name (a number, or one text for every input).

        Returns a :class:`Predictions` list, one :class:`Prediction` (a dict of plain Python
        values) per input. A bad input is a :class:`kerasapps.UsageError` naming it.

        Example::

            load("saved_models/translation/1").predict("a dog runs .")[0]["translation"]
        """
        import tensorflow as tf

        main = [name for name in self._strings if name not in values]
        if len(main) != 1:
            raise UsageError(f"{self.export_dir} takes {', '.join(self.inputs)}: give every input but one "
                             f"as a keyword argument, and the items of the remaining one as predict's inputs")
        input_name = main[0]
        unknown = sorted(set(values) - set(self.input_specs))
        if unknown:
            raise UsageError(f"{unknown[0]}: the model has no such input (it takes {', '.join(self.inputs)})")
        extras = {}
        for name, spec in self.input_specs.items():
            if name == input_name:
                continue
            if name in values:
                try:
                    extras[name] = tf.constant([values[name]], spec.dtype)
                except (TypeError, ValueError) as exc:
                    raise UsageError(f"{name}={values[name]!r}: expected {spec.dtype.name} ({exc})") from None
            elif spec.shape.rank == 1 and spec.shape[0] is None and spec.dtype != tf.string:
                extras[name] = tf.zeros([0], spec.dtype)
            else:
                raise UsageError(f"input {name!r} needs a value: predict(..., {name}=VALUE)")
        is_image = input_name.endswith("_bytes")
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]  # one item or a list of them
        results = Predictions()
        for index, item in enumerate(items):
            if is_image:
                encoded = encode_image_input(item, index)
            else:
                if not isinstance(item, str):
                    raise UsageError(f"input {index}: {input_name} takes text, not {type(item).__name__}")
                encoded = item.encode("utf-8")
            try:
                outputs = self.signature(**{input_name: tf.constant([encoded])}, **extras)
            except tf.errors.InvalidArgumentError as exc:
                label = item if isinstance(item, (str, os.PathLike)) else f"input {index}"
                raise UsageError(f"{label}: the model could not read it ({tf_error_cause(exc)})") from None
            record = {name: _to_python(name, outputs[name].numpy()[0]) for name in sorted(outputs)}
            results.append(Prediction(record, input=item, input_image=encoded if is_image else None))
        return results


def load(export_dir) -> Predictor:
    """Load an exported SavedModel (``saved_models/TASK/VERSION``) for prediction from Python.

    Returns a :class:`Predictor`; ``predictor.predict(inputs)`` gives plain Python results that
    show themselves in a notebook. A folder that is no SavedModel is a :class:`kerasapps.UsageError`.

    Example::

        predictor = kerasapps.load("saved_models/captioning/1")
        predictor.predict(["beach.jpg"])[0]["caption"]
    """
    return Predictor(export_dir)


__all__ = ["Prediction", "Predictions", "Predictor", "load", "mask_overlay"]
