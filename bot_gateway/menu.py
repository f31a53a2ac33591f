"""The bot's command menu: what Telegram shows behind the "/" button and the Menu button.

Registered once per gateway start with setMyCommands (default scope, every chat type). English is the
default list; a language whose catalog translates the descriptions gets its own list, so Telegram shows
each user the menu in their app's language. Setting the menu is cosmetic: a failure (Telegram down, a bad
description) is logged and the gateway carries on.
"""

from __future__ import annotations

import asyncio

import structlog
from aiogram import Bot
from aiogram.types import BotCommand

from core.i18n import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES, t

log = structlog.get_logger(__name__)

# In menu order: what customers do first, then what businesses do, then help.
MENU_COMMANDS = ("find", "orders", "newoffer", "myoffers", "today", "redeem", "stats", "help", "cancel")
# A slow Telegram must not keep a retry loop alive past shutdown; one attempt per start is enough, since
# Telegram keeps the menu from the previous start.
REGISTER_TIMEOUT_S = 15.0


def menu_commands(lang: str = DEFAULT_LANGUAGE) -> list[BotCommand]:
    return [BotCommand(command=name, description=t(f"menu.{name}", lang)) for name in MENU_COMMANDS]


def menus_by_language() -> dict[str | None, list[BotCommand]]:
    """None (the default, English) and every language whose descriptions differ from English.

    Telegram takes two-letter ISO 639-1 codes here, so "zh-Hans" is registered as "zh".
    """
    default = menu_commands()
    menus: dict[str | None, list[BotCommand]] = {None: default}
    for lang in SUPPORTED_LANGUAGES:
        if lang == DEFAULT_LANGUAGE:
            continue
        translated = menu_commands(lang)
        if translated != default:
            menus[lang.split("-", 1)[0]] = translated
    return menus


async def register_menu(bot: Bot) -> bool:
    """Set the menu for every language; True when Telegram accepted all of it. Never raises."""
    ok = True
    menus = menus_by_language()
    for language_code, commands in menus.items():
        try:
            async with asyncio.timeout(REGISTER_TIMEOUT_S):
                await bot.set_my_commands(commands, language_code=language_code)
        except Exception as exc:  # cosmetic: never let the menu stop the gateway
            ok = False
            log.warning("bot_menu_not_set", language=language_code or "default", error=type(exc).__name__)
    if ok:
        log.info("bot_menu_set", languages=len(menus))
    return ok
