"""Small food pictures drawn here as PNG bytes, for the demo offers and the browser test's photo upload.

Offers need a photo and the sandbox has no camera roll, so each kind of food gets a simple flat drawing
(a plate with loaves, buns, sushi, a bowl of noodles, fruit, cake) in pure Python: no image library, no
network, the same bytes for the same picture every time.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable

Color = tuple[int, int, int]
KINDS = ("bread", "pastry", "sushi", "noodles", "produce", "cake")


class Canvas:
    def __init__(self, width: int, height: int, background: Color) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        row = bytes(color) * max(0, min(x1, self.width) - max(x0, 0))
        for y in range(max(y0, 0), min(y1, self.height)):
            start = (y * self.width + max(x0, 0)) * 3
            self.pixels[start : start + len(row)] = row

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color: Color) -> None:
        for y in range(max(int(cy - ry), 0), min(int(cy + ry) + 1, self.height)):
            dy = (y - cy) / ry
            if abs(dy) > 1:
                continue
            half = rx * (1 - dy * dy) ** 0.5
            self.rect(int(cx - half), y, int(cx + half) + 1, y + 1, color)

    def scaled(self, factor: int) -> Canvas:
        """The same picture `factor` times larger (each pixel becomes a factor x factor square)."""
        bigger = Canvas(self.width * factor, self.height * factor, (0, 0, 0))
        for y in range(self.height):
            row = self.pixels[y * self.width * 3 : (y + 1) * self.width * 3]
            wide = b"".join(bytes(row[x * 3 : x * 3 + 3]) * factor for x in range(self.width))
            for dy in range(factor):
                start = (y * factor + dy) * bigger.width * 3
                bigger.pixels[start : start + len(wide)] = wide
        return bigger

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3])
            for y in range(self.height)
        )

        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def _bread(c: Canvas, r: random.Random) -> None:
    for i in range(3):
        x, y = 100 + i * 60 + r.randint(-8, 8), 110 + (i % 2) * 30
        c.ellipse(x, y, 62, 30, (176, 112, 48))
        c.ellipse(x - 6, y - 6, 50, 20, (201, 138, 62))


def _pastry(c: Canvas, r: random.Random) -> None:
    for i in range(5):
        x, y = 80 + (i % 3) * 80 + r.randint(-6, 6), 100 + (i // 3) * 60
        c.ellipse(x, y, 36, 24, (214, 150, 52))
        c.ellipse(x, y - 4, 24, 12, (236, 184, 88))


def _sushi(c: Canvas, r: random.Random) -> None:
    c.rect(50, 70, 270, 170, (40, 40, 40))
    for i in range(4):
        x = 62 + i * 52
        c.rect(x, 95, x + 44, 145, (246, 244, 236))
        c.rect(x + 4, 92, x + 40, 110, (240, 120, 80) if i % 2 else (200, 40, 50))


def _noodles(c: Canvas, r: random.Random) -> None:
    c.ellipse(160, 130, 110, 60, (200, 80, 40))
    c.ellipse(160, 118, 96, 44, (238, 160, 60))
    for i in range(6):
        c.rect(90 + i * 24, 100 + r.randint(0, 12), 100 + i * 24, 140, (250, 220, 120))
    c.ellipse(130, 108, 14, 8, (250, 250, 240))
    c.ellipse(195, 112, 12, 7, (120, 170, 80))


def _produce(c: Canvas, r: random.Random) -> None:
    palette = [(220, 60, 50), (240, 150, 40), (110, 170, 60), (250, 210, 60), (150, 60, 120)]
    for _ in range(9):
        c.ellipse(r.randint(70, 250), r.randint(80, 160), 26, 24, r.choice(palette))


def _cake(c: Canvas, r: random.Random) -> None:
    c.rect(80, 80, 240, 160, (120, 190, 110))
    c.rect(80, 110, 240, 118, (250, 244, 220))
    c.rect(80, 140, 240, 148, (250, 244, 220))
    for i in range(5):
        c.ellipse(96 + i * 32, 78, 10, 10, (240, 240, 240))


_DRAW: dict[str, Callable[[Canvas, random.Random], None]] = {
    "bread": _bread,
    "pastry": _pastry,
    "sushi": _sushi,
    "noodles": _noodles,
    "produce": _produce,
    "cake": _cake,
}


def food_png(kind: str, *, seed: int = 0, scale: int = 1) -> bytes:
    """A 320 x 240 PNG (times `scale`) of a plate of `kind` food (one of KINDS); deterministic per seed."""
    rng = random.Random(f"{kind}:{seed}")
    table = [(246, 226, 206), (214, 230, 242), (226, 240, 214), (244, 222, 232)][rng.randrange(4)]
    canvas = Canvas(320, 240, table)
    canvas.ellipse(160, 130, 150, 95, (250, 250, 248))
    canvas.ellipse(160, 130, 130, 80, (238, 238, 234))
    _DRAW[kind](canvas, rng)
    return canvas.scaled(scale).png() if scale > 1 else canvas.png()
