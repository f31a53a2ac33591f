"""Uploaded photos in the fake Telegram server: is it an image, and how big is it?

Telegram decodes every uploaded photo and answers ``400 Bad Request: IMAGE_PROCESS_FAILED`` when it can't, so
a sender that uploads broken bytes must fail here too. The fake reads just enough of each format to be
honest about it: a PNG's chunk structure and checksums (and that its image data inflates), a JPEG's frame
header between its start and end markers, a GIF's screen descriptor. Other formats Telegram accepts (WebP,
BMP, ...) are refused; MarketBot never uploads them.
"""

from __future__ import annotations

import struct
import zlib

from marketbot.fakes.telegram_state import ApiError, bad_request

__all__ = ["image_size"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Telegram's photo limits: width + height at most 10000, and neither side more than 20 times the other.
MAX_SIDES = 10_000
MAX_RATIO = 20
# JPEG start-of-frame markers (baseline, progressive, ...), which carry the image size; not DHT/JPG/DAC.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an uploaded photo, or Telegram's error for an upload it can't use as one."""
    if not data:
        raise bad_request("file must be non-empty")
    if data.startswith(PNG_SIGNATURE):
        size = _png_size(data)
    elif data.startswith(b"\xff\xd8"):
        size = _jpeg_size(data)
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        size = struct.unpack("<HH", data[6:10])
    else:
        size = None
    if size is None or min(size) <= 0:
        raise _process_failed()
    width, height = size
    if width + height > MAX_SIDES or max(width, height) > MAX_RATIO * min(width, height):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    return width, height


def _process_failed() -> ApiError:
    return bad_request("IMAGE_PROCESS_FAILED")


def _png_size(data: bytes) -> tuple[int, int] | None:
    """Walk the chunks (lengths, CRCs, IHDR first, IEND last) and inflate the image data."""
    pos = len(PNG_SIGNATURE)
    size: tuple[int, int] | None = None
    idat = bytearray()
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        end = pos + 12 + length
        if end > len(data) or len(body) != length:
            return None
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(kind + body) != crc:
            return None
        if size is None and (kind != b"IHDR" or length != 13):
            return None
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            try:
                zlib.decompress(bytes(idat))
            except zlib.error:
                return None
            return size if idat else None
        pos = end
    return None  # truncated: no IEND


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size from the first start-of-frame segment, in a file that ends with the end-of-image marker."""
    if not data.endswith(b"\xff\xd9"):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None
