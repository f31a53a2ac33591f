"""Pickup codes, and the Telegram deep link that carries one.

A code is 6 characters from a 31-character alphabet with no look-alikes (no 0/O, 1/I/L), about 887 million
codes, shown as "ABC-234" so it is easy to read aloud at a busy counter. It is not a secret on its own:
redeeming also requires the venue's owner, and the code must match the order it names.

`normalize_code` accepts what staff type: any case, spaces and dashes anywhere, full-width characters.
It does not map 0/O/1/I/L to anything: both sides of each of those look-alike pairs are left out of the
alphabet, so any of them means the code was misread, and guessing a replacement could redeem someone
else's order. The caller asks the person to read the code again.

The deep link payload is what follows `https://t.me/<bot>?start=`. Telegram allows 1-64 characters from
A-Za-z0-9_- there. Ours is "p_" + the order UUID's 16 bytes in unpadded base64url (22 characters, which may
themselves contain "_" or "-") + "_" + code: always 31 characters, so it is parsed by position, not split.
Links can be forwarded or edited by anyone, so parsing is strict (canonical base64, exact code) and
returns None for anything we did not produce; the handler then checks the code against the order.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import unicodedata
from collections.abc import Callable
from typing import Final, NamedTuple
from uuid import UUID

CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH: Final = 6
MAX_START_PARAMETER_CHARS: Final = 64  # Telegram's limit for /start deep-link parameters

_DEEP_LINK_PREFIX: Final = "p_"
_UUID_B64_CHARS: Final = 22
_PAYLOAD_CHARS: Final = len(_DEEP_LINK_PREFIX) + _UUID_B64_CHARS + 1 + CODE_LENGTH
_PAYLOAD = re.compile(rf"p_([A-Za-z0-9_-]{{{_UUID_B64_CHARS}}})_([{CODE_ALPHABET}]{{{CODE_LENGTH}}})")
_CODE = re.compile(rf"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
# What people put between characters when typing a code they read: spaces and every kind of dash.
_CODE_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]+")
_MAX_TYPED_CHARS: Final = 64
# Largest multiple of the alphabet size that fits in a byte: bytes at or above it are discarded, so every
# character is equally likely (plain `byte % 31` would favour the first few).
_UNBIASED_BYTE_LIMIT: Final = 256 - 256 % len(CODE_ALPHABET)


class PickupLink(NamedTuple):
    order_id: UUID
    code: str


def generate_pickup_code(rng: random.Random | Callable[[int], bytes]) -> str:
    """A new code. Pass `secrets.token_bytes` (or `random.SystemRandom()`) in production, a seeded
    `random.Random` in tests. Uniqueness among a venue's open orders is the repository's job."""
    if isinstance(rng, random.Random):
        return "".join(rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    chars: list[str] = []
    while len(chars) < CODE_LENGTH:
        for byte in rng(CODE_LENGTH):
            if byte < _UNBIASED_BYTE_LIMIT and len(chars) < CODE_LENGTH:
                chars.append(CODE_ALPHABET[byte % len(CODE_ALPHABET)])
    return "".join(chars)


def normalize_code(text: str | None) -> str | None:
    """The code in canonical form ("ABC234"), or None if `text` is not a possible code."""
    if not isinstance(text, str) or len(text) > _MAX_TYPED_CHARS:
        return None
    compact = _CODE_SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    # ASCII check before upper(): "ß".upper() is "SS", and we never want a code to grow while normalizing.
    if not compact.isascii():
        return None
    candidate = compact.upper()
    return candidate if _CODE.fullmatch(candidate) else None


def display_code(code: str) -> str:
    """Show "ABC234" as "ABC-234": two groups of three are easier to read aloud; normalize_code undoes it."""
    return f"{code[:3]}-{code[3:]}"


def deep_link_payload(order_id: UUID, code: str) -> str:
    """The /start parameter for an order's pickup link (31 characters of A-Za-z0-9_-)."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError("code must be a canonical pickup code (see normalize_code)")
    encoded = base64.urlsafe_b64encode(order_id.bytes).decode("ascii").rstrip("=")
    return f"{_DEEP_LINK_PREFIX}{encoded}_{code}"


def parse_deep_link_payload(text: str | None) -> PickupLink | None:
    """The (order id, code) in a payload we produced, or None for anything else. Never raises."""
    if not isinstance(text, str) or len(text) != _PAYLOAD_CHARS:
        return None
    match = _PAYLOAD.fullmatch(text)
    if match is None:
        return None
    encoded, code = match.groups()
    try:
        raw = base64.urlsafe_b64decode(encoded + "==")
    except (binascii.Error, ValueError):  # pragma: no cover - the regex already admits only valid base64url
        return None
    # 22 characters carry 132 bits for 128: a payload whose spare bits are set decodes to the same UUID,
    # but it is not one we produced, so it is refused (one order, one link).
    if len(raw) != 16 or base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != encoded:
        return None
    return PickupLink(UUID(bytes=raw), code)


def pickup_qr_data(order_id: UUID, code: str, bot_username: str | None) -> str:
    """What an order's QR code holds: the deep link the business scans to redeem it, or (without a known
    bot username) the bare payload; the business can always type the code instead."""
    payload = deep_link_payload(order_id, code)
    if bot_username:
        return f"https://t.me/{bot_username.lstrip('@')}?start={payload}"
    return payload
