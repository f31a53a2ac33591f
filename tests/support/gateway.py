"""Run the real gateway application in-process on a real port, for tests that drive it over HTTP."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from aiohttp.test_utils import TestServer

from bot_gateway.app import create_app
from marketbot.settings import load_settings
from tasks.app import create_app as create_celery_app

T = TypeVar("T")
SECRET = "test-webhook-secret"


def gateway_env(redis_url: str, telegram_base_url: str, **extra: str) -> dict[str, str]:
    env = {
        "REDIS_URL": redis_url,
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token",
        "TELEGRAM_API_BASE_URL": telegram_base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
    }
    env.update(extra)
    return env


def run_with_gateway(
    env: dict[str, str],
    scenario: Callable[[aiohttp.ClientSession, str], Awaitable[T]],
    *,
    polling: bool = False,
) -> T:
    """Start the gateway with `env` applied, run `scenario(http, base_url)`, stop it."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = load_settings()
        app = create_app(settings, celery_app=create_celery_app(settings), polling=polling)

        async def main() -> T:
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            try:
                async with aiohttp.ClientSession() as http:
                    return await scenario(http, str(server.make_url("")).rstrip("/"))
            finally:
                await server.close()

        return asyncio.run(main())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def post_update(
    http: aiohttp.ClientSession,
    base: str,
    update: Any,
    *,
    secret: str | None = SECRET,
    raw: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    body = raw if raw is not None else __import__("json").dumps(update).encode()
    async with http.post(f"{base}/telegram/webhook", data=body, headers=headers) as response:
        return response.status, await response.json()
