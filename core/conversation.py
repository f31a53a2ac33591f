"""What the bot says back: pure rules from (command, who is asking) to replies and state changes.

No I/O here: the worker loads the user, calls `respond`, stores the returned changes and the replies
(through the outbox) in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.callbacks import RoleChoice
from core.commands import (
    CancelDialog,
    ChooseRole,
    InvalidCallback,
    SendText,
    ShareLocation,
    ShowHelp,
    SlowDown,
    StartBot,
    UnknownCommand,
    UnsupportedInput,
    UserCommand,
)
from core.i18n import t
from core.messages import InlineButton, Reply, RequestKeyboard


@dataclass(frozen=True)
class UserView:
    """The parts of a stored user that conversation rules need."""

    telegram_user_id: int
    chat_id: int
    language: str
    first_name: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Decision:
    replies: tuple[Reply, ...] = ()
    set_role: str | None = None
    set_location: tuple[float, float] | None = None
    audit: tuple[str, ...] = field(default=())


def welcome(user: UserView) -> Reply:
    if user.first_name:
        title = t("welcome.title_named", user.language, first_name=user.first_name)
    else:
        title = t("welcome.title", user.language)
    text = f"{title}\n\n{t('welcome.body', user.language)}"
    keyboard = (
        (InlineButton(t("button.find_food", user.language), callback_data=RoleChoice("customer").encode()),),
        (InlineButton(t("button.sell_food", user.language), callback_data=RoleChoice("business").encode()),),
    )
    return Reply(chat_id=user.chat_id, text=text, inline_keyboard=keyboard)


def respond(command: UserCommand, user: UserView) -> Decision:
    lang = user.language

    def say(key: str, **params: object) -> Reply:
        return Reply(chat_id=user.chat_id, text=t(key, lang, **params))

    match command:
        case StartBot():
            return Decision(replies=(welcome(user),))
        case ShowHelp():
            return Decision(replies=(say("help"),))
        case CancelDialog():
            # No dialogs exist yet beyond the welcome; say so plainly rather than pretend.
            return Decision(
                replies=(
                    Reply(
                        chat_id=user.chat_id, text=t("nothing_to_cancel", lang), remove_reply_keyboard=True
                    ),
                )
            )
        case ChooseRole(role="customer"):
            reply = Reply(
                chat_id=user.chat_id,
                text=t("role.customer", lang),
                reply_keyboard=RequestKeyboard(t("button.share_location", lang)),
            )
            return Decision(replies=(reply,), set_role="customer")
        case ChooseRole(role="business"):
            # What follows (registration, or where the business stands) needs the database: the worker's.
            return Decision(set_role="business")
        case ShareLocation(latitude=lat, longitude=lon):
            reply = Reply(chat_id=user.chat_id, text=t("location.saved", lang), remove_reply_keyboard=True)
            return Decision(replies=(reply,), set_location=(lat, lon))
        case UnknownCommand(command=name):
            return Decision(replies=(say("unknown_command", command=name),))
        case SendText():
            return Decision(replies=(say("unknown_text"),))
        case UnsupportedInput():
            return Decision(replies=(say("unsupported_input"),))
        case InvalidCallback():
            return Decision(replies=(say("invalid_callback"),))
        case SlowDown():
            return Decision(replies=(say("slow_down"),))
    raise AssertionError(f"unhandled command kind {command.kind}")  # pragma: no cover - exhaustive match


def apology(user: UserView) -> Reply:
    """What a user sees when their update could not be processed because of a bug on our side."""
    return Reply(chat_id=user.chat_id, text=t("error.generic", user.language))
