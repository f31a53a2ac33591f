"""The command menu: the gateway registers it with Telegram on start, and a failure doesn't stop it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommand
from structlog.testing import capture_logs

from bot_gateway.menu import MENU_COMMANDS, menu_commands, menus_by_language
from marketbot.fakes.telegram import FakeTelegram
from tests.support.gateway import gateway_env, run_with_gateway


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


def commands_telegram_shows(telegram: FakeTelegram, language_code: str | None = None) -> list[BotCommand]:
    async def ask() -> list[BotCommand]:
        bot = Bot(
            "123456:TEST-token", session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url))
        )
        try:
            return await bot.get_my_commands(language_code=language_code)
        finally:
            await bot.session.close()

    return asyncio.run(ask())


def test_the_menu_lists_every_command_with_a_description_telegram_accepts() -> None:
    commands = menu_commands()

    assert [c.command for c in commands] == list(MENU_COMMANDS)
    assert commands[0].description == "Find food near you"
    assert commands[1].description == "My orders"
    for command in commands:  # plain text, as Telegram shows it: no markup, 1-256 characters
        assert 1 <= len(command.description) <= 256
        assert not set("<>&") & set(command.description)
    assert list(menus_by_language()) == [None]  # only English exists: it is the default for everyone


def test_the_gateway_registers_the_command_menu_when_it_starts(
    redis_url: str, telegram: FakeTelegram
) -> None:
    async def scenario(http: Any, base: str) -> None:
        await asyncio.to_thread(telegram.wait_for_calls, "setMyCommands")

    run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario)

    shown = commands_telegram_shows(telegram)
    assert [(c.command, c.description) for c in shown] == [
        (c.command, c.description) for c in menu_commands()
    ]
    assert [c.command for c in commands_telegram_shows(telegram, "en")] == []  # set once, as the default


def test_a_menu_telegram_refuses_does_not_stop_the_gateway(redis_url: str, telegram: FakeTelegram) -> None:
    telegram.fail_next("setMyCommands", status=500)

    async def scenario(http: Any, base: str) -> int:
        for _ in range(100):  # the refused call is not a success, so wait_for_calls won't see it
            if telegram.calls("setMyCommands"):
                break
            await asyncio.sleep(0.05)
        async with http.get(f"{base}/healthz") as response:
            return int(response.status)

    with capture_logs() as logs:
        status = run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario)

    assert status == 200
    [refused] = telegram.calls("setMyCommands")
    assert refused.status == 500
    assert any(entry["event"] == "bot_menu_not_set" for entry in logs)
