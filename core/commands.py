"""Typed commands: what a Telegram update means, as the gateway hands it to the workers.

The gateway turns each update into exactly one command (or none) and enqueues it as JSON; workers parse it
back with `parse_command`. Commands are imperative and carry everything a worker needs, so the worker never
has to look at raw Telegram objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Actor(BaseModel):
    """Who sent the update. Personal fields are stored in the database but never logged."""

    model_config = ConfigDict(frozen=True)

    telegram_user_id: int
    chat_id: int
    first_name: str | None = None
    username: str | None = None
    language_code: str | None = None


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True)

    update_id: int
    actor: Actor
    received_at: datetime
    correlation_id: str
    # Set for button presses, so the worker can edit the message the button sits on.
    callback_query_id: str | None = None
    message_id: int | None = None


class StartBot(_Command):
    kind: Literal["start"] = "start"
    start_parameter: str | None = None


class ShowHelp(_Command):
    kind: Literal["help"] = "help"


class CancelDialog(_Command):
    kind: Literal["cancel"] = "cancel"


class ChooseRole(_Command):
    kind: Literal["choose_role"] = "choose_role"
    role: Literal["customer", "business"]


class SendText(_Command):
    kind: Literal["text"] = "text"
    text: str


class ShareLocation(_Command):
    kind: Literal["location"] = "location"
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class ShareContact(_Command):
    """A contact shared with Telegram's contact button; `is_own` when it is the sender's own number."""

    kind: Literal["contact"] = "contact"
    phone_number: str = Field(min_length=3, max_length=32)
    is_own: bool


class SendPhoto(_Command):
    """A photo: Telegram file ids of the largest size and of a list-thumbnail size."""

    kind: Literal["photo"] = "photo"
    file_id: str = Field(min_length=1, max_length=256)
    thumb_file_id: str = Field(min_length=1, max_length=256)


class NewOffer(_Command):
    kind: Literal["new_offer"] = "new_offer"


class ListMyOffers(_Command):
    kind: Literal["my_offers"] = "my_offers"


class FindFood(_Command):
    """ "Find food" (/find): offers near the customer's remembered location."""

    kind: Literal["find_food"] = "find_food"


class ShowMyOrders(_Command):
    kind: Literal["my_orders"] = "my_orders"


class RedeemPickup(_Command):
    """An owner redeems a customer's pickup code (typed after /redeem, or from the QR deep link)."""

    kind: Literal["redeem"] = "redeem"
    code: str = Field(max_length=64)


class ShowTodaysOrders(_Command):
    kind: Literal["todays_orders"] = "todays_orders"


class ShowStats(_Command):
    kind: Literal["stats"] = "stats"


class PressButton(_Command):
    """An inline button other than the role choice; `data` is decoded (and distrusted) by the worker."""

    kind: Literal["button"] = "button"
    data: str = Field(min_length=1, max_length=64)


class OpenAdmin(_Command):
    kind: Literal["admin"] = "admin"


class UnknownCommand(_Command):
    kind: Literal["unknown_command"] = "unknown_command"
    command: str


class UnsupportedInput(_Command):
    """A sticker, voice note, file… something we have no use for where the user sent it."""

    kind: Literal["unsupported"] = "unsupported"
    content_type: str


class InvalidCallback(_Command):
    """A button press whose data we cannot decode: stale keyboard, or forged by a client."""

    kind: Literal["invalid_callback"] = "invalid_callback"


class SlowDown(_Command):
    """The user exceeded the gateway's rate limit; tell them once per window."""

    kind: Literal["slow_down"] = "slow_down"


UserCommand = Annotated[
    StartBot
    | ShowHelp
    | CancelDialog
    | ChooseRole
    | SendText
    | ShareLocation
    | ShareContact
    | SendPhoto
    | NewOffer
    | ListMyOffers
    | FindFood
    | ShowMyOrders
    | RedeemPickup
    | ShowTodaysOrders
    | ShowStats
    | PressButton
    | OpenAdmin
    | UnknownCommand
    | UnsupportedInput
    | InvalidCallback
    | SlowDown,
    Field(discriminator="kind"),
]

_ADAPTER: TypeAdapter[UserCommand] = TypeAdapter(UserCommand)


def parse_command(raw: str | bytes) -> UserCommand:
    """Parse a command's JSON; raises pydantic.ValidationError on anything malformed."""
    return _ADAPTER.validate_json(raw)


def dump_command(command: UserCommand) -> str:
    return command.model_dump_json()
