"""Image codecs shared by every task: file checks, in-graph decoding, PNG encoding.

Example::

    images = decode_images(image_bytes, size=(64, 64))  # inside a serving function
"""

from __future__ import annotations

import os
import pathlib

from kerasapps.errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# Decoding allocates height x width x channels bytes whatever the file's size: a 1 MB PNG can declare
# 20000 x 20000 pixels (a decompression bomb). Images over this many pixels are refused before decoding.
MAX_PIXELS_ENV = "KERASAPPS_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 40_000_000
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}


def image_format(data: bytes) -> str | None:
    """Return "PNG", "JPEG", "GIF", "BMP" or "WEBP" from the file's magic bytes, else None."""
    for magic, name in _SIGNATURES.items():
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def max_image_pixels() -> int:
    """The pixel limit of decoded images: ``$KERASAPPS_MAX_IMAGE_PIXELS``, else 40 megapixels.

    Read when a graph is traced, so an exported SavedModel keeps the limit it was exported with.
    """
    value = os.environ.get(MAX_PIXELS_ENV, "")
    try:
        limit = int(value) if value else DEFAULT_MAX_PIXELS
    except ValueError:
        raise UsageError(f"{MAX_PIXELS_ENV} must be a positive integer, got {value!r}") from None
    if limit < 1:
        raise UsageError(f"{MAX_PIXELS_ENV} must be a positive integer, got {value!r}")
    return limit


def declared_pixels(image_bytes):
    """Graph op: height x width as the encoded image's header declares it (int64; 0 if unknown),
    read without decoding: PNG IHDR, JPEG frame header, GIF screen, BMP info header, WebP VP8/VP8L/VP8X."""
    import tensorflow as tf

    head = tf.strings.join([tf.strings.substr(image_bytes, 0, 32), tf.constant(b"\0" * 32)])
    b = tf.cast(tf.io.decode_raw(tf.strings.substr(head, 0, 32), tf.uint8), tf.int64)

    def number(start, length, big_endian):
        digits = [b[start + i] for i in range(length)]
        digits = digits if big_endian else digits[::-1]
        value = tf.constant(0, tf.int64)
        for digit in digits:
            value = value * 256 + digit
        return value

    def starts(magic: bytes, at: int = 0):
        return tf.reduce_all(tf.stack([tf.equal(b[at + i], c) for i, c in enumerate(magic)]))

    png = number(16, 4, True) * number(20, 4, True)
    gif = number(6, 2, False) * number(8, 2, False)
    bmp_height = number(22, 4, False)
    bmp = number(18, 4, False) * tf.where(bmp_height >= 2**31, 2**32 - bmp_height, bmp_height)
    vp8x = (1 + number(24, 3, False)) * (1 + number(27, 3, False))
    vp8 = tf.bitwise.bitwise_and(number(26, 2, False), 0x3FFF) * tf.bitwise.bitwise_and(number(28, 2, False), 0x3FFF)
    bits = number(21, 4, False)
    vp8l = (1 + tf.bitwise.bitwise_and(bits, 0x3FFF)) * (1 + tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 14), 0x3FFF))
    webp = tf.where(starts(b"VP8X", 12), vp8x, tf.where(starts(b"VP8L", 12), vp8l, vp8))
    is_jpeg = starts(b"\xff\xd8\xff")
    jpeg = tf.cond(is_jpeg, lambda: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64)),
                   lambda: tf.constant(0, tf.int64))
    is_webp = tf.logical_and(starts(b"RIFF"), starts(b"WEBP", 8))
    return tf.case([(starts(b"\x89PNG"), lambda: png), (is_jpeg, lambda: jpeg), (starts(b"GIF8"), lambda: gif),
                    (starts(b"BM"), lambda: bmp), (is_webp, lambda: webp)], default=lambda: tf.constant(0, tf.int64))


def decode_checked(image_bytes, channels: int = 3):
    """Graph op: ``tf.io.decode_image`` (first frame of an animation) of one encoded image, refused
    with a clear error, before anything is allocated, when its header declares more than
    :func:`max_image_pixels` pixels. Use it wherever untrusted bytes are decoded (serving)."""
    import tensorflow as tf

    limit = max_image_pixels()
    check = tf.debugging.assert_less_equal(
        declared_pixels(image_bytes), tf.constant(limit, tf.int64),
        message=f"image too large: its header declares more than {limit} pixels (the limit, "
                f"${MAX_PIXELS_ENV} when the model was exported)")
    with tf.control_dependencies([check]):
        image = tf.io.decode_image(image_bytes, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return image


def _read_checked(path, size: int = -1) -> bytes:
    """Read ``size`` bytes of ``path`` (all by default); UsageError naming the file if it is no image."""
    try:
        with open(path, "rb") as f:
            data = f.read(size)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if image_format(data[:16]) is None:
        raise UsageError(f"{path} is not a PNG, JPEG, GIF, BMP or WebP image (corrupt or wrong file?)")
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

    image = decode_checked(image_bytes, channels)
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


def find_undecodable_image(folder) -> pathlib.Path | None:
    """The first image file under ``folder`` (by path) that TensorFlow cannot decode, else None.

    For naming the file after a decoding error inside tf.data, whose message names no file."""
    import tensorflow as tf

    for path in sorted(p for p in pathlib.Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            tf.io.decode_image(path.read_bytes(), expand_animations=False)
        except (tf.errors.InvalidArgumentError, OSError):
            return path
    return None
