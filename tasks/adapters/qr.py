"""Pickup QR codes, drawn as PNG images at send time.

The outbox stores only the text to encode (see core.messages.QR_PAYLOAD_FIELD), never image bytes: the row
stays small, and the image is drawn again on every attempt. Drawing is deterministic (segno picks the same
version and mask for the same text), so a retried send uploads exactly the bytes the failed one tried to.
"""

from __future__ import annotations

import io

# 10 pixels per module with the 4-module quiet zone the QR standard asks for: a pickup deep link (version
# 3-4, 29-33 modules) becomes a ~410 px square, which stays sharp after Telegram's JPEG re-encoding and
# scans from a phone screen held up at a counter.
QR_SCALE = 10
QR_BORDER = 4
# Medium error correction (~15 %): survives screen glare and cracked displays without growing the symbol
# much; segno raises it further when that fits in the same version.
QR_ERROR = "m"
QR_FILENAME = "pickup-code.png"


def qr_png(data: str) -> bytes:
    """The PNG of a QR code (never a Micro QR: phone scanners often ignore those) encoding `data`.

    Raises ValueError for empty data or data too long for any QR version.
    """
    if not data:
        raise ValueError("nothing to encode in the QR code")
    # Imported when a process draws its first code (~40 ms, once), not at every outbound worker's start: the
    # order confirmation that carries it has a 300 ms budget with room for that once.
    import segno

    code = segno.make_qr(data, error=QR_ERROR)
    out = io.BytesIO()
    code.save(out, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return out.getvalue()
