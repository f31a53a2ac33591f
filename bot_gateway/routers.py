"""aiogram routers that turn updates into core commands. They decide nothing: they only classify.

Each handler returns a command (aiogram hands the return value back from `feed_update`); the ingest step
enqueues it. Routers are included in a deliberate order: commands before free text, text before the
catch-all for other content types.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message, Update, User

from core.callbacks import RoleChoice, decode
from core.commands import (
    Actor,
    CancelDialog,
    ChooseRole,
    FindFood,
    InvalidCallback,
    ListMyOffers,
    NewOffer,
    OpenAdmin,
    PressButton,
    RedeemPickup,
    SendPhoto,
    SendText,
    ShareContact,
    ShareLocation,
    ShowHelp,
    ShowMyOrders,
    ShowStats,
    ShowTodaysOrders,
    StartBot,
    UnknownCommand,
    UnsupportedInput,
)

_START_PARAMETER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TEXT = 4096


def correlation_id_for(update_id: int) -> str:
    return f"tg-{update_id}"


def _base(update: Update, user: User, chat_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "update_id": update.update_id,
        "actor": Actor(
            telegram_user_id=user.id,
            chat_id=chat_id,
            first_name=user.first_name,
            username=user.username,
            language_code=user.language_code,
        ),
        "received_at": datetime.now(UTC),
        "correlation_id": correlation_id_for(update.update_id),
        **extra,
    }


async def on_start(message: Message, command: CommandObject, event_update: Update) -> StartBot:
    parameter = command.args if command.args and _START_PARAMETER.match(command.args) else None
    assert message.from_user is not None
    return StartBot(**_base(event_update, message.from_user, message.chat.id), start_parameter=parameter)


async def on_help(message: Message, event_update: Update) -> ShowHelp:
    assert message.from_user is not None
    return ShowHelp(**_base(event_update, message.from_user, message.chat.id))


async def on_cancel(message: Message, event_update: Update) -> CancelDialog:
    assert message.from_user is not None
    return CancelDialog(**_base(event_update, message.from_user, message.chat.id))


async def on_unknown_command(message: Message, event_update: Update) -> UnknownCommand:
    assert message.from_user is not None and message.text is not None
    name = message.text.split(maxsplit=1)[0][:33]
    return UnknownCommand(**_base(event_update, message.from_user, message.chat.id), command=name)


async def on_admin(message: Message, event_update: Update) -> OpenAdmin:
    assert message.from_user is not None
    return OpenAdmin(**_base(event_update, message.from_user, message.chat.id))


async def on_new_offer(message: Message, event_update: Update) -> NewOffer:
    assert message.from_user is not None
    return NewOffer(**_base(event_update, message.from_user, message.chat.id))


async def on_my_offers(message: Message, event_update: Update) -> ListMyOffers:
    assert message.from_user is not None
    return ListMyOffers(**_base(event_update, message.from_user, message.chat.id))


async def on_find(message: Message, event_update: Update) -> FindFood:
    assert message.from_user is not None
    return FindFood(**_base(event_update, message.from_user, message.chat.id))


async def on_my_orders(message: Message, event_update: Update) -> ShowMyOrders:
    assert message.from_user is not None
    return ShowMyOrders(**_base(event_update, message.from_user, message.chat.id))


async def on_redeem(message: Message, command: CommandObject, event_update: Update) -> RedeemPickup:
    assert message.from_user is not None
    return RedeemPickup(
        **_base(event_update, message.from_user, message.chat.id), code=(command.args or "")[:64]
    )


async def on_today(message: Message, event_update: Update) -> ShowTodaysOrders:
    assert message.from_user is not None
    return ShowTodaysOrders(**_base(event_update, message.from_user, message.chat.id))


async def on_stats(message: Message, event_update: Update) -> ShowStats:
    assert message.from_user is not None
    return ShowStats(**_base(event_update, message.from_user, message.chat.id))


THUMB_MIN_WIDTH = 320  # big enough for a list card, small enough to load fast


async def on_photo(message: Message, event_update: Update) -> SendPhoto:
    assert message.from_user is not None and message.photo
    sizes = sorted(message.photo, key=lambda size: size.width * size.height)
    thumb = next((size for size in sizes if size.width >= THUMB_MIN_WIDTH), sizes[-1])
    return SendPhoto(
        **_base(event_update, message.from_user, message.chat.id),
        file_id=sizes[-1].file_id,
        thumb_file_id=thumb.file_id,
    )


async def on_contact(message: Message, event_update: Update) -> ShareContact:
    assert message.from_user is not None and message.contact is not None
    contact = message.contact
    return ShareContact(
        **_base(event_update, message.from_user, message.chat.id),
        phone_number=contact.phone_number[:32],
        # Telegram sets user_id when the contact is a Telegram user; the share button sends one's own.
        is_own=contact.user_id == message.from_user.id,
    )


async def on_location(message: Message, event_update: Update) -> ShareLocation:
    assert message.from_user is not None and message.location is not None
    return ShareLocation(
        **_base(event_update, message.from_user, message.chat.id),
        latitude=message.location.latitude,
        longitude=message.location.longitude,
    )


async def on_text(message: Message, event_update: Update) -> SendText:
    assert message.from_user is not None and message.text is not None
    return SendText(**_base(event_update, message.from_user, message.chat.id), text=message.text[:MAX_TEXT])


async def on_other_content(message: Message, event_update: Update) -> UnsupportedInput:
    assert message.from_user is not None
    return UnsupportedInput(
        **_base(event_update, message.from_user, message.chat.id), content_type=str(message.content_type)
    )


async def on_button(query: CallbackQuery, event_update: Update) -> ChooseRole | PressButton | InvalidCallback:
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    base = _base(
        event_update,
        query.from_user,
        chat_id,
        callback_query_id=query.id,
        message_id=query.message.message_id if query.message is not None else None,
    )
    action = decode(query.data)
    if isinstance(action, RoleChoice):
        return ChooseRole(**base, role=action.role)
    if action is not None and query.data is not None:
        # Well-formed, but what it names (and whether this user may do it) is the worker's to check.
        return PressButton(**base, data=query.data)
    return InvalidCallback(**base)


def build_routers() -> list[Router]:
    """Fresh routers each time: an aiogram Router can be attached to only one dispatcher."""
    messages = Router(name="private_messages")
    # Only private chats: the bot is not meant to be used from groups, where it would answer strangers.
    messages.message.filter(F.chat.type == "private", F.from_user.is_not(None))
    messages.message.register(on_start, CommandStart())
    messages.message.register(on_help, Command("help"))
    messages.message.register(on_cancel, Command("cancel"))
    messages.message.register(on_admin, Command("admin"))
    messages.message.register(on_new_offer, Command("newoffer"))
    messages.message.register(on_my_offers, Command("myoffers"))
    messages.message.register(on_find, Command("find"))
    messages.message.register(on_my_orders, Command("orders"))
    messages.message.register(on_redeem, Command("redeem"))
    messages.message.register(on_today, Command("today"))
    messages.message.register(on_stats, Command("stats"))
    messages.message.register(on_unknown_command, F.text.startswith("/"))
    messages.message.register(on_location, F.location)
    messages.message.register(on_contact, F.contact)
    messages.message.register(on_photo, F.photo)
    messages.message.register(on_text, F.text)
    messages.message.register(on_other_content)
    buttons = Router(name="buttons")
    buttons.callback_query.register(on_button)
    return [messages, buttons]
