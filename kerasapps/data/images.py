"""Image codecs shared by every task: headers read without decoding, file checks, folders of images,
in-graph decoding and PNG encoding.

Example::

    images = decode_images(image_bytes, size=(64, 64))  # inside a serving function

    # A fully convolutional model at each image's own size (stride 8: sides padded to multiples of 8):
    image, size = pad_to_multiple(decode_image(one_image_bytes), 8)
    png = to_png_bytes(crop_to(model(image[None])[0], size))
"""

from __future__ import annotations

import os
import pathlib
import struct

from kerasapps.data.splits import split_by_hash
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


# -- headers: image dimensions without decoding (the server's and the file readers' pixel check) --
class NotAnImage(ValueError):
    """The bytes are no PNG, JPEG, GIF, WebP or BMP image, or their header is cut short."""


def _png(data: bytes):
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise NotAnImage("PNG without an IHDR header")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _gif(data: bytes):
    if len(data) < 10:
        raise NotAnImage("GIF header cut short")
    return struct.unpack("<HH", data[6:10])


def _bmp(data: bytes):
    if len(data) < 26:
        raise NotAnImage("BMP header cut short")
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _webp(data: bytes):
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise NotAnImage("WebP header cut short or of an unknown kind")


# Start-of-frame markers (baseline, progressive, lossless, ...): they carry the frame's size.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes):
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            raise NotAnImage("JPEG with a broken marker")
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            offset += 2
            continue
        length = struct.unpack(">H", data[offset + 2:offset + 4])[0]
        if marker in _JPEG_SOF:
            if offset + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[offset + 5:offset + 9])
            return width, height
        offset += 2 + length
    raise NotAnImage("JPEG without a frame header")


_HEADER_READERS = {"PNG": _png, "JPEG": _jpeg, "GIF": _gif, "WEBP": _webp, "BMP": _bmp}


def image_dimensions(data: bytes) -> tuple[int, int, str]:
    """(width, height, format) read from the first bytes of an encoded image, without decoding;
    NotAnImage if it is none of the formats or its header is cut short.

    Example::

        image_dimensions(open("a.png", "rb").read())   # (640, 480, "PNG")
    """
    kind = image_format(data)
    if kind is None:
        raise NotAnImage("not a PNG, JPEG, GIF, WebP or BMP image")
    return (*_HEADER_READERS[kind](data), kind)


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
    """Graph op: height x width as each encoded image's header declares it (int64 of ``image_bytes``'s
    shape, a scalar or a batch; 0 if unknown), read without decoding: PNG IHDR, JPEG frame header,
    GIF screen, BMP info header, WebP VP8/VP8L/VP8X. Elementwise over a batch, so a serving function
    checks a whole batch with one set of ops rather than one per image."""
    import tensorflow as tf

    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    flat = tf.reshape(image_bytes, [-1])
    head = tf.strings.join([tf.strings.substr(flat, 0, 32), tf.constant(b"\0" * 32)])
    b = tf.cast(tf.io.decode_raw(tf.strings.substr(head, 0, 32), tf.uint8), tf.int64)  # [N, 32]

    def number(start, length, big_endian):
        digits = [b[:, start + i] for i in range(length)]
        digits = digits if big_endian else digits[::-1]
        value = tf.zeros_like(b[:, 0])
        for digit in digits:
            value = value * 256 + digit
        return value

    def starts(magic: bytes, at: int = 0):
        return tf.reduce_all(tf.stack([tf.equal(b[:, at + i], c) for i, c in enumerate(magic)], axis=-1), axis=-1)

    png = number(16, 4, True) * number(20, 4, True)
    gif = number(6, 2, False) * number(8, 2, False)
    bmp_height = number(22, 4, False)
    bmp = number(18, 4, False) * tf.where(bmp_height >= 2**31, 2**32 - bmp_height, bmp_height)
    vp8x = (1 + number(24, 3, False)) * (1 + number(27, 3, False))
    vp8 = tf.bitwise.bitwise_and(number(26, 2, False), 0x3FFF) * tf.bitwise.bitwise_and(number(28, 2, False), 0x3FFF)
    bits = number(21, 4, False)
    vp8l = (1 + tf.bitwise.bitwise_and(bits, 0x3FFF)) * (1 + tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 14), 0x3FFF))
    webp = tf.where(starts(b"VP8X", 12), vp8x, tf.where(starts(b"VP8L", 12), vp8l, vp8))
    # A JPEG's size is in its frame header, after markers of any length: TensorFlow reads it, one
    # image at a time, for the JPEGs only.
    is_jpeg = starts(b"\xff\xd8\xff")
    jpegs = tf.where(is_jpeg)
    jpeg_sizes = tf.map_fn(lambda one: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(one)[:2], tf.int64)),
                           tf.gather_nd(flat, jpegs), fn_output_signature=tf.int64)
    jpeg = tf.scatter_nd(jpegs, jpeg_sizes, tf.shape(flat, out_type=tf.int64))
    is_webp = tf.logical_and(starts(b"RIFF"), starts(b"WEBP", 8))
    zero = tf.zeros_like(png)
    pixels = tf.where(starts(b"\x89PNG"), png, tf.where(is_jpeg, jpeg, tf.where(starts(b"GIF8"), gif, tf.where(
        starts(b"BM"), bmp, tf.where(is_webp, webp, zero)))))
    return tf.reshape(pixels, tf.shape(image_bytes))


def _pixel_limit_check(image_bytes):
    """The assertion that no image of ``image_bytes`` (one or a batch) declares more than
    :func:`max_image_pixels` pixels."""
    import tensorflow as tf

    limit = max_image_pixels()
    return tf.debugging.assert_less_equal(
        declared_pixels(image_bytes), tf.constant(limit, tf.int64),
        message=f"image too large: its header declares more than {limit} pixels (the limit, "
                f"${MAX_PIXELS_ENV} when the model was exported)")


def decode_checked(image_bytes, channels: int = 3):
    """Graph op: ``tf.io.decode_image`` (first frame of an animation) of one encoded image, refused
    with a clear error, before anything is allocated, when its header declares more than
    :func:`max_image_pixels` pixels. Use it wherever untrusted bytes are decoded (serving)."""
    import tensorflow as tf

    with tf.control_dependencies([_pixel_limit_check(image_bytes)]):
        return _decode_unchecked(image_bytes, channels)


def _decode_unchecked(image_bytes, channels: int):
    import tensorflow as tf

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
    if size < 0:  # the whole file: its header is there, so its size can be checked before decoding
        return check_image_bytes(data, str(path))
    if image_format(data[:16]) is None:
        raise UsageError(f"{path} is not a PNG, JPEG, GIF, BMP or WebP image (corrupt or wrong file?)")
    return data


def check_image_bytes(data: bytes, label: str = "image") -> bytes:
    """Check encoded image bytes as :func:`check_image_file` checks a file (``label`` names them
    in the error): a known format, a readable header, at most :func:`max_image_pixels` pixels.

    Returns ``data``, unchanged.
    """
    if image_format(data[:16]) is None:
        raise UsageError(f"{label} is not a PNG, JPEG, GIF, BMP or WebP image (corrupt or wrong file?)")
    try:
        width, height, _ = image_dimensions(data)
    except NotAnImage as exc:
        raise UsageError(f"{label}: {exc} (corrupt or truncated file?)") from None
    if width * height > max_image_pixels():
        raise UsageError(f"{label}: {width}x{height} pixels is over the limit of {max_image_pixels()} "
                         f"(set ${MAX_PIXELS_ENV} to allow larger images)")
    return data


def check_image_file(path) -> bytes:
    """Read an image file and return its bytes; UsageError naming the file if it is not an image,
    its header is broken, or it declares more pixels than :func:`max_image_pixels`.

    Returns the file's bytes.
    """
    return _read_checked(path)


def check_image_files(paths) -> None:
    """Check the magic bytes of many files cheaply (reads 16 bytes of each).

    Returns None; the first file that is not an image is a UsageError naming it.
    """
    for path in paths:
        _read_checked(path, 16)


def decode_image(image_bytes, size=None, channels: int = 3, antialias: bool = False):
    """Decode one encoded PNG/JPEG/GIF/BMP image to float32 ``[H, W, C]`` in 0..255: at its own
    size when ``size`` is None, else resized to ``size`` (height, width). Graph code.

    Returns a float32 tensor ``[H, W, channels]`` in 0..255.

    ``channels=3`` turns grey and RGBA images into RGB (palette PNGs through their palette).
    """
    return _float_image(decode_checked(image_bytes, channels), size, antialias)


def _float_image(image, size=None, antialias: bool = False):
    """A decoded image as float32 0..255, resized to ``size`` (height, width) unless it is None."""
    import tensorflow as tf

    image = tf.cast(image, tf.float32)
    return image if size is None else tf.image.resize(image, size, antialias=antialias)


def pad_to_multiple(image, multiple: int):
    """Pad ``[H, W, C]`` (or ``[N, H, W, C]``) at the bottom and right, mirroring the edge, so that
    both sides are multiples of ``multiple`` (a network's total stride). Returns ``(padded, [H, W])``:
    :func:`crop_to` takes the output back to the input's size. Graph code."""
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    size = tf.shape(image)[-3:-1]
    extra = (multiple - size % multiple) % multiple
    paddings = [[0, extra[0]], [0, extra[1]], [0, 0]]
    if image.shape.rank == 4:
        paddings = [[0, 0]] + paddings
    # REFLECT needs the padding shorter than the side; SYMMETRIC allows it equal.
    return tf.pad(image, paddings, mode="SYMMETRIC" if multiple > 1 else "CONSTANT"), size


def crop_to(image, size):
    """The top-left ``size`` (height, width) of ``[H, W, C]`` or ``[N, H, W, C]``: undoes :func:`pad_to_multiple`.

    Returns the cropped tensor, of the input's rank.
    """
    return image[..., : size[0], : size[1], :]


def to_png_bytes(images):
    """Graph code: ``[H, W, C]`` -> a PNG ``tf.string`` scalar, ``[N, H, W, C]`` -> ``tf.string [N]``.

    Returns a ``tf.string`` scalar for one image, ``tf.string [N]`` for a batch.

    Float images are taken as 0..255, rounded and clipped; uint8 ones are encoded as they are.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    if images.dtype != tf.uint8:
        images = tf.cast(tf.round(tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 255.0)), tf.uint8)
    if images.shape.rank == 3:
        return tf.io.encode_png(images)
    return tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.TensorSpec([], tf.string))


def decode_images(image_bytes, size, channels: int = 3):
    """Decode a batch ``[N]`` of encoded PNG/JPEG strings to float32 ``[N, H, W, C]`` in 0..255.

    Returns a float32 tensor ``[N, size[0], size[1], channels]`` in 0..255.

    Graph-friendly: use it inside a SavedModel's serving function.
    """
    import tensorflow as tf

    with tf.control_dependencies([_pixel_limit_check(image_bytes)]):  # once for the batch, before any decoding
        return tf.map_fn(lambda one: _float_image(_decode_unchecked(one, channels), size), image_bytes,
                         fn_output_signature=tf.TensorSpec([size[0], size[1], channels], tf.float32))


def encode_png(image) -> bytes:
    """Encode a uint8 ``[H, W, C]`` array as PNG bytes.

    Returns the PNG file's bytes.
    """
    import numpy as np
    import tensorflow as tf

    return tf.io.encode_png(np.asarray(image, dtype=np.uint8)).numpy()


def list_image_files(folder) -> list[pathlib.Path]:
    """Image files directly in ``folder`` (by suffix), sorted by name.

    Returns the paths, sorted by name (an empty list when there are none).
    """
    folder = pathlib.Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


SPLIT_FOLDERS = {"train": ("train",), "validation": ("val", "validation", "valid"), "test": ("test",)}
SPLITS = tuple(SPLIT_FOLDERS)


def split_folders(root) -> dict[str, pathlib.Path]:
    """The split folders directly under ``root``: ``train/``, ``val/`` (or ``validation/``,
    ``valid/``) and ``test/``, those that exist.

    Returns ``{split: folder}`` for the split folders that exist (possibly empty).
    """
    root = pathlib.Path(root)
    found = {}
    for split, names in SPLIT_FOLDERS.items():
        folder = next((root / name for name in names if (root / name).is_dir()), None)
        if folder is not None:
            found[split] = folder
    return found


def read_image_folder(root, *, labelled: bool = False, layout: str = "", test_required: bool = True) -> dict:
    """The image files of a folder, split three ways and every file checked, before any training.

    Layouts: split folders ``root/train``, ``root/val`` (or ``validation``), ``root/test``, or
    the images directly in ``root``, split 80/10/10 by a stable hash of their relative paths.
    With split folders and no validation folder, 10% of train (by the same hash) is validation.
    With ``labelled=True`` the images sit in one subfolder per class inside each of those
    (``root/train/cat/1.png``, or ``root/cat/1.png``) and the items are ``(path, class name)``.

    Returns ``{"train": [...], "validation": [...], "test": [...]}``. A split without images, a
    class folder not in train, a missing test folder (with ``test_required``) or a file that is
    no image is a UsageError naming it; ``layout`` is quoted in the messages to say what is expected.

    Example::

        files = read_image_folder("data/pets", labelled=True)
        files["train"][0]   # (PosixPath("data/pets/train/cat/1.png"), "cat")
    """
    root = pathlib.Path(root)
    hint = f" (layout: {layout})" if layout else ""

    def items_in(folder):
        if not labelled:
            return list_image_files(folder)
        return [(f, class_dir.name) for class_dir in sorted(p for p in folder.iterdir() if p.is_dir())
                for f in list_image_files(class_dir)]

    def path_of(item):
        return item[0] if labelled else item

    folders = split_folders(root)
    if "train" in folders:
        files = {split: items_in(folder) for split, folder in folders.items()}
        if "validation" not in folders:
            files.update(split_by_hash(files["train"], lambda item: str(path_of(item).relative_to(root)),
                                       (("train", 0.9), ("validation", 0.1))))
        if "test" not in folders:
            if test_required:
                raise UsageError(f"{root} has train/ but no test/ folder{hint}")
            files["test"] = files["validation"]
    else:
        files = split_by_hash(items_in(root), lambda item: str(path_of(item).relative_to(root)))
    if not files["train"]:
        raise UsageError(f"no images found{' in class folders' if labelled else ''} under {root}{hint}")
    for split in SPLITS:
        if not files[split]:
            raise UsageError(f"{root}: the {split} split has no images{hint}")
    if labelled:
        classes = {c for _, c in files["train"]}
        for split in SPLITS:
            unknown = {c for _, c in files[split]} - classes
            if unknown:
                raise UsageError(f"{root}/{split} has classes not in train: {', '.join(sorted(unknown))}")
    check_image_files(path_of(item) for split in SPLITS for item in files[split])
    return {split: files[split] for split in SPLITS}


def read_image(path, size, channels: int = 3):
    """tf.data-friendly: read and decode one image file to float32 ``size`` x ``channels``.

    Returns a float32 tensor ``[size[0], size[1], channels]`` in 0..255.
    """
    import tensorflow as tf

    return decode_image(tf.io.read_file(path), size, channels)


def probe_image(path) -> tuple[int, int, int]:
    """(height, width, channels) of one image file.

    Returns ``(height, width, channels)`` read from the file's header, without decoding it.
    """
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
