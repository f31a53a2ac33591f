"""Read back the black-and-white PNGs our QR codes are drawn as, to check what a phone would scan."""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_pixels(data: bytes) -> list[list[int]]:
    """Rows of 0 (black) / 1 (white) from a 1-bit greyscale PNG, every scanline filter undone."""
    width, height = png_size(data)
    bit_depth, colour_type = data[24], data[25]
    assert (bit_depth, colour_type) == (1, 0), "expected 1-bit greyscale"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = (width + 7) // 8
    rows: list[list[int]] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - 1] if i else 0  # sub-byte depths filter against the previous byte
            up = previous[i]
            up_left = previous[i - 1] if i else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + predictor) & 0xFF
        rows.append([(line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
        previous = line
    return rows


def qr_modules(data: bytes, *, scale: int, border: int) -> list[list[bool]]:
    """The QR modules (True = dark) read at each module's centre, quiet zone left out."""
    pixels = png_pixels(data)
    side = len(pixels) // scale - 2 * border
    centre = scale // 2
    return [
        [pixels[(border + r) * scale + centre][(border + c) * scale + centre] == 0 for c in range(side)]
        for r in range(side)
    ]
