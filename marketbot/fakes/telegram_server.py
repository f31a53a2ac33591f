"""Server machinery of the fake Telegram Bot API: thread + event loop, HTTP endpoint, update delivery.

The fake must serve the real aiogram client (an HTTP server) while test code runs synchronously on another
thread, so the server owns a daemon thread with its own asyncio loop; shared state is only touched under
``FakeTelegramState.lock``. Update delivery follows Telegram: one update at a time per bot, in order, by
webhook with retries until 2xx, or held for getUpdates long polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import threading
import time
import traceback
from typing import Any

import aiohttp
from aiohttp import web

from marketbot.fakes.background import BackgroundServer
from marketbot.fakes.telegram_methods import (
    GET_UPDATES_CONFLICT,
    Described,
    canonical_method,
    check_injected,
    dispatch,
    prepare_get_updates,
)
from marketbot.fakes.telegram_params import decode_params
from marketbot.fakes.telegram_state import ApiError, FakeTelegramState, RecordedCall
from marketbot.fakes.telegram_wire import post_update, read_request_fields

__all__ = ["FakeTelegramServer"]

logger = logging.getLogger("marketbot.fakes.telegram")

_TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")
_RETRY_DELAYS = (0.2, 0.5, 1.0)
_TERMINATED = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)


def _where(exc: BaseException) -> str:
    """Exception type and innermost location, without its message (which may quote user data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    location = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{location}"


class FakeTelegramServer(BackgroundServer):
    """The HTTP side and Telegram's update delivery; ``FakeTelegram`` adds the test-facing API."""

    server_name = "Telegram"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "marketbot_test_bot",
        per_chat_limit: tuple[int, float] = (4, 1.0),
        global_limit: tuple[int, float] = (30, 1.0),
    ) -> None:
        self.host = host
        self.port = port
        self.base_url = ""
        self.webhook_timeout = 10.0
        self.webhook_deliveries: list[tuple[int, int]] = []
        self._state = FakeTelegramState(
            bot_username=bot_username, per_chat_limit=per_chat_limit, global_limit=global_limit
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopped = False
        self._closing = False
        self._changed: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None

    # -- settings that tests may change while running -----------------------------------------------------

    @property
    def per_chat_limit(self) -> tuple[int, float]:
        return self._state.per_chat_limit

    @per_chat_limit.setter
    def per_chat_limit(self, value: tuple[int, float]) -> None:
        with self._state.lock:
            self._state.per_chat_limit = value

    @property
    def global_limit(self) -> tuple[int, float]:
        return self._state.global_limit

    @global_limit.setter
    def global_limit(self, value: tuple[int, float]) -> None:
        with self._state.lock:
            self._state.global_limit = value

    @property
    def bot_username(self) -> str:
        return self._state.bot_username

    @bot_username.setter
    def bot_username(self, value: str) -> None:
        with self._state.lock:
            self._state.bot_username = value

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def _startup(self) -> None:
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        self._install_extra_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        # No access log: request paths contain the bot token, which must never reach logs.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        shown = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        self.base_url = f"http://{shown}:{self.port}"
        self._client = aiohttp.ClientSession()
        self._state.on_change = self._notify_threadsafe
        self._worker = asyncio.get_running_loop().create_task(self._webhook_worker())

    def _install_extra_routes(self, app: web.Application) -> None:
        """Hook for routes beside the Bot API (the sandbox control API); none here."""

    async def _shutdown(self) -> None:
        self._state.on_change = None
        self._closing = True
        self._notify()  # lets pending long polls answer before the server goes away
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- wake-ups between the test thread and the server loop -----------------------------------------------

    def _notify(self) -> None:
        """Wake every coroutine waiting for queue/webhook changes (runs on the server loop)."""
        event, self._changed = self._changed, asyncio.Event()
        if event is not None:
            event.set()

    def _notify_threadsafe(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            if threading.current_thread() is self._thread:
                self._notify()
            else:
                loop.call_soon_threadsafe(self._notify)
        except RuntimeError:
            pass

    @staticmethod
    async def _wait(event: asyncio.Event | None, seconds: float | None) -> None:
        """Sleep until ``event`` is set or ``seconds`` pass (None: no limit)."""
        if event is None:
            await asyncio.sleep(seconds or 0.05)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    # -- HTTP -----------------------------------------------------------------------------------------------

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _handle_api(self, request: web.Request) -> web.Response:
        received = time.monotonic()
        token = request.match_info["token"]
        raw_method = request.match_info["method"]
        method = canonical_method(raw_method) or raw_method
        params: dict[str, Any] = {}
        try:
            if not _TOKEN_RE.fullmatch(token):
                raise ApiError(401, "Unauthorized")
            if canonical_method(raw_method) is None:
                raise ApiError(404, "Not Found")
            params = decode_params(await read_request_fields(request))
            with self._state.lock:
                self._state.bot_id = int(token.split(":", 1)[0])
            if method == "getUpdates":
                result: Any = await self._get_updates(params)
            else:
                with self._state.lock:
                    result = dispatch(self._state, method, token, params, received)
            status, body = 200, self._success(result)
        except ApiError as exc:
            status, body = exc.status, exc.body()
        except Exception as exc:  # answer like Telegram's 500 so the client sees a clean API error, not HTML
            logger.error("fake telegram: %s crashed: %s", method, _where(exc))
            status, body = 500, ApiError(500, "Internal Server Error").body()
        text = json.dumps(body, ensure_ascii=False)
        self._record(method, token, params, status, text, received)
        return web.Response(text=text, status=status, content_type="application/json")

    @staticmethod
    def _success(result: Any) -> dict[str, Any]:
        if isinstance(result, Described):
            return {"ok": True, "result": result.result, "description": result.description}
        return {"ok": True, "result": result}

    def _record(
        self, method: str, token: str, params: dict[str, Any], status: int, text: str, at: float
    ) -> None:
        call = RecordedCall(
            method=method, token=token, params=params, status=status, response=json.loads(text), at=at
        )
        with self._state.lock:
            self._state.calls.append(call)
        logger.debug("fake telegram: %s -> %s", method, status)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """getUpdates with long polling; a newer poll ends an older one with 409, as on Telegram."""
        with self._state.lock:
            check_injected(self._state, "getUpdates")
            limit, timeout = prepare_get_updates(self._state, params)
            self._state.poll_generation += 1
            generation = self._state.poll_generation
        self._notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            with self._state.lock:
                if self._state.webhook is not None:
                    raise ApiError(409, GET_UPDATES_CONFLICT)
                if self._state.poll_generation != generation:
                    raise ApiError(409, _TERMINATED)
                updates = copy.deepcopy(self._state.pending(limit))
            remaining = deadline - loop.time()
            if updates or remaining <= 0 or self._closing:
                return updates
            await self._wait(event, remaining)

    # -- webhook delivery -----------------------------------------------------------------------------------

    async def _webhook_worker(self) -> None:
        """Deliver queued updates one at a time, in order; retry failures (0.2 s, 0.5 s, then every 1 s)."""
        failures = 0
        while True:
            event = self._changed
            try:
                delivered = await self._deliver_next()
            except Exception as exc:  # a bug here must not silently stop every later delivery
                logger.error("fake telegram: webhook delivery crashed: %s", _where(exc))
                delivered = False
            if delivered is None:
                failures = 0
                await self._wait(event, None)
            elif delivered:
                failures = 0
            else:
                await asyncio.sleep(_RETRY_DELAYS[min(failures, len(_RETRY_DELAYS) - 1)])
                failures += 1

    async def _deliver_next(self) -> bool | None:
        """POST the oldest pending update; None when there is nothing to send, else whether it got a 2xx."""
        with self._state.lock:
            hook = self._state.webhook
            self._state.pending(1)
            item = self._state.updates[0] if hook is not None and self._state.updates else None
            payload = copy.deepcopy(item.payload) if item is not None else None
        if hook is None or item is None or payload is None or self._client is None:
            return None
        attempt = await post_update(self._client, hook.url, hook.secret_token, payload, self.webhook_timeout)
        self.webhook_deliveries.append((item.update_id, attempt.status))
        logger.debug("fake telegram: webhook delivery -> %s", attempt.status)
        if attempt.error is not None:
            with self._state.lock:
                hook.last_error_date = int(time.time())
                hook.last_error_message = attempt.error
            return False
        with self._state.lock:
            if self._state.updates and self._state.updates[0] is item:
                self._state.updates.pop(0)
        if attempt.reply is not None:
            self._execute_reply(hook.token, attempt.reply)
        return True

    def _execute_reply(self, token: str, fields: list[tuple[str, Any]]) -> None:
        """Run a method call a webhook answered with, as Telegram does (its result goes nowhere)."""
        received = time.monotonic()
        raw_method = str(dict(fields).get("method", ""))
        method = canonical_method(raw_method) or raw_method
        params: dict[str, Any] = {}
        try:
            params = decode_params([(k, v) for k, v in fields if k != "method"])
            if method == "getUpdates" or canonical_method(raw_method) is None:
                raise ApiError(404, "Not Found")
            with self._state.lock:
                status, body = 200, self._success(dispatch(self._state, method, token, params, received))
        except ApiError as exc:
            status, body = exc.status, exc.body()
        self._record(method, token, params, status, json.dumps(body, ensure_ascii=False), received)
