"""Image dimensions from the first bytes of PNG, JPEG, GIF, WebP and BMP files, without decoding.

The server checks width x height against its pixel limit before TensorFlow ever
allocates the decoded image, so a 1 MB PNG that claims 20000 x 20000 pixels is
refused at the cost of reading its header.

Example::

    image_size(open("a.png", "rb").read())   # (640, 480, "PNG")
"""

from __future__ import annotations

import struct


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


def image_size(data: bytes) -> tuple[int, int, str]:
    """(width, height, format) read from the header; NotAnImage if it is none of the formats."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return (*_png(data), "PNG")
    if data.startswith(b"\xff\xd8\xff"):
        return (*_jpeg(data), "JPEG")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return (*_gif(data), "GIF")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return (*_webp(data), "WebP")
    if data.startswith(b"BM"):
        return (*_bmp(data), "BMP")
    raise NotAnImage("not a PNG, JPEG, GIF, WebP or BMP image")
