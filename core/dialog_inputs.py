"""What a person can answer inside a guided dialog, independent of Telegram's shapes.

The worker turns each command into one of these; dialogs (core.registration, core.offer_wizard) accept the
kinds each step asks for and re-ask on anything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.callbacks import DialogChoice


@dataclass(frozen=True)
class TextInput:
    text: str


@dataclass(frozen=True)
class LocationInput:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class ContactInput:
    phone_number: str
    is_own: bool


@dataclass(frozen=True)
class PhotoInput:
    """Telegram file ids of the largest size (for the card) and a small one (for lists)."""

    file_id: str
    thumb_file_id: str


@dataclass(frozen=True)
class ButtonInput:
    choice: DialogChoice


@dataclass(frozen=True)
class OtherInput:
    content_type: str


DialogInput = TextInput | LocationInput | ContactInput | PhotoInput | ButtonInput | OtherInput

__all__ = [
    "ButtonInput",
    "ContactInput",
    "DialogInput",
    "LocationInput",
    "OtherInput",
    "PhotoInput",
    "TextInput",
]
