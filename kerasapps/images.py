"""Image codecs shared by every task: file checks, in-graph decoding, PNG encoding.

Example::

    images = decode_images(image_bytes, size=(64, 64))  # inside a serving function
"""

from __future__ import annotations

import pathlib

from kerasapps.errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}


def image_format(data: bytes) -> str | None:
    """Return "PNG", "JPEG", "GIF" or "BMP" from the file's magic bytes, else None."""
    for magic, name in _SIGNATURES.items():
        if data.startswith(magic):
            return name
    return None


def _read_checked(path, size: int = -1) -> bytes:
    """Read ``size`` bytes of ``path`` (all by default); UsageError naming the file if it is no image."""
    try:
        with open(path, "rb") as f:
            data = f.read(size)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if image_format(data[:16]) is None:
        raise UsageError(f"{path} is not a PNG, JPEG, GIF or BMP image (corrupt or wrong file?)")
    return data


def check_image_file(path) -> bytes:
    """Read an image file and return its bytes; UsageError naming the file if it is not an image."""
    return _read_checked(path)


def check_image_files(paths) -> None:
    """Check the magic bytes of many files cheaply (reads 16 bytes of each)."""
    for path in paths:
        _read_checked(path, 16)


def decode_image(image_bytes, size, channels: int = 3):
    """Decode one encoded image (any size) to float32 ``[H, W, C]`` in 0..255, resized to ``size``."""
    import tensorflow as tf

    image = tf.io.decode_image(image_bytes, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return tf.image.resize(tf.cast(image, tf.float32), size)


def decode_images(image_bytes, size, channels: int = 3):
    """Decode a batch ``[N]`` of encoded PNG/JPEG strings to float32 ``[N, H, W, C]`` in 0..255.

    Graph-friendly: use it inside a SavedModel's serving function.
    """
    import tensorflow as tf

    return tf.map_fn(
        lambda b: decode_image(b, size, channels),
        image_bytes,
        fn_output_signature=tf.TensorSpec([size[0], size[1], channels], tf.float32),
    )


def encode_png(image) -> bytes:
    """Encode a uint8 ``[H, W, C]`` array as PNG bytes."""
    import numpy as np
    import tensorflow as tf

    return tf.io.encode_png(np.asarray(image, dtype=np.uint8)).numpy()


def list_image_files(folder) -> list[pathlib.Path]:
    """Image files directly in ``folder`` (by suffix), sorted by name."""
    folder = pathlib.Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path, size, channels: int = 3):
    """tf.data-friendly: read and decode one image file to float32 ``size`` x ``channels``."""
    import tensorflow as tf

    return decode_image(tf.io.read_file(path), size, channels)


def probe_image(path) -> tuple[int, int, int]:
    """(height, width, channels) of one image file."""
    import tensorflow as tf

    image = tf.io.decode_image(check_image_file(path), expand_animations=False)
    return tuple(int(d) for d in image.shape)
