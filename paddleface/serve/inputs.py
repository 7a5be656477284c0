"""Turning request bodies into BGR images, with one-sentence errors and size limits.

Everything here is plain Python (no web framework), so the rules are testable alone.
"""
from __future__ import annotations

import base64
import binascii
import struct
from typing import Optional, Tuple

import numpy as np

from ..errors import PaddleFaceError
from ..image_io import decode_image


class RequestError(Exception):
    """A client error: an HTTP status and a one-sentence message for the JSON body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0xD8 or marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        # start-of-frame markers (all but DHT C4, JPG C8 and DAC CC) carry the frame size
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def _webp_size(data: bytes) -> Optional[Tuple[int, int]]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def image_dimensions(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) read from the header of a PNG, JPEG, GIF, BMP or WebP file, without
    decoding it; None for other formats or a header too short to tell."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:2] == b"BM" and len(data) >= 26:
        if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
            return struct.unpack("<HH", data[18:22])
        w, h = struct.unpack("<ii", data[18:26])
        return abs(w), abs(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def pixel_limit_error(name: str, width: int, height: int, max_pixels: int) -> RequestError:
    return RequestError(413, f"{name} is {width}x{height} ({width * height / 1e6:.1f} megapixels), "
                             f"over this service's limit of {max_pixels / 1e6:.1f} megapixels; "
                             "downscale it before sending.")


def decode_upload(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """Encoded image bytes -> BGR uint8, refusing images over ``max_pixels`` before their
    pixels are allocated (a small PNG can hold a huge blank image)."""
    if not data:
        raise RequestError(400, f"{name} is empty: send the bytes of a JPEG, PNG, BMP or WebP image.")
    size = image_dimensions(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise pixel_limit_error(name, size[0], size[1], max_pixels)
    try:
        image = decode_image(data, name)
    except PaddleFaceError:
        raise RequestError(400, f"{name} is not an image this service can decode "
                                "(send JPEG, PNG, BMP or WebP bytes).") from None
    h, w = image.shape[:2]
    if w * h > max_pixels:  # formats whose header we do not read
        raise pixel_limit_error(name, w, h, max_pixels)
    return image


def decode_base64_image(text, name: str, max_pixels: int) -> np.ndarray:
    """A base64 string (optionally a ``data:image/...;base64,`` URL) -> BGR uint8."""
    if not isinstance(text, str):
        raise RequestError(400, f"{name} must be a base64 string, not {type(text).__name__}.")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"{name} is not valid base64.") from None
    return decode_upload(data, name, max_pixels)
