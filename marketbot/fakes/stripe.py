"""A faithful local stand-in for the Stripe HTTP API (Checkout Sessions, Refunds, Events), for tests and the
local sandbox.

Stripe cannot be reached from our machines, and mocking stripe-python would hide the mistakes that break in
production (wrong parameter nesting, idempotency keys reused with other parameters, unsigned or replayed
webhooks). So production code keeps the real client and only its base address points here:
``stripe.StripeClient(key, base_addresses={"api": fake.base_url})``.

The fake speaks Stripe's wire format (form-encoded bodies with bracket nesting, JSON objects with ``object``
and prefixed ids, errors as ``{"error": {type, code, message, param}}`` so stripe-python raises the right
exception classes), honours ``Idempotency-Key`` (replay, or ``idempotency_error`` on other parameters) and
plays the customer's and Stripe's other roles: ``complete_checkout`` pays a session, events are signed like
Stripe's and POSTed to ``webhook_url`` with retries until a 2xx, in no guaranteed order.

Deviations from Stripe, on purpose: only ``mode=payment`` with inline ``price_data``; the hosted page is a
tiny local form at ``{base_url}/pay/{id}``; any ``sk_test_``/``rk_test_`` key is accepted; idempotent results
are kept for successful requests only; webhook retries are quick (0.2 s, 0.5 s, then every 1 s).

Run ``python -m marketbot.fakes.stripe --port 12111 --webhook-url URL`` for a standalone server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import logging
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from marketbot.fakes.background import BackgroundServer
from marketbot.fakes.stripe_api import Context, dispatch, expire_session
from marketbot.fakes.stripe_page import install_pay_routes
from marketbot.fakes.stripe_payments import complete_session, finish_async
from marketbot.fakes.stripe_state import (
    API_VERSION,
    FakeStripeState,
    IdempotentResult,
    RecordedRequest,
    StripeApiError,
    decode_form,
)

__all__ = ["FakeStripe", "RecordedRequest", "StripeApiError", "main"]

logger = logging.getLogger("marketbot.fakes.stripe")

_RETRY_DELAYS = (0.2, 0.5, 1.0)
_KEY_PREFIXES = ("sk_test_", "rk_test_")


@dataclass(frozen=True)
class _Delay:
    method: str
    path_prefix: str
    seconds: float


class FakeStripe(BackgroundServer):
    """The fake Stripe API server plus the customer and webhook sides; see the module docstring."""

    server_name = "Stripe"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_url: str | None = None,
        webhook_secret: str = "whsec_test_secret",  # noqa: S107 - a test-mode secret, not a credential
    ) -> None:
        self.host = host
        self.port = port
        self.base_url = ""
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.webhook_timeout = 10.0
        self.webhook_deliveries: list[tuple[str, int]] = []
        self._state = FakeStripeState()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopped = False
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._delays: list[_Delay] = []
        self._delays_started = 0
        # Webhook delivery faults Stripe really produces: events held back (late), each sent several
        # times (at-least-once), or released in another order than they happened.
        self._delivery_lock = threading.Lock()
        self._holding = False
        self._held: list[dict[str, Any]] = []
        self.deliveries_per_event = 1

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def _startup(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/v1/{tail:.*}", self._handle_api)
        install_pay_routes(app, self)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        shown = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        self.base_url = f"http://{shown}:{self.port}"
        self._client = aiohttp.ClientSession()
        self._state.on_event = self._on_event
        self._spawn(self._expiry_sweeper())

    async def _shutdown(self) -> None:
        self._state.on_event = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expiry_sweeper(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            with self._state.lock:
                self._state.sweep_expired()

    # -- assertions -----------------------------------------------------------------------------------------

    def calls(self, path_prefix: str | None = None) -> list[RecordedRequest]:
        """Snapshot of recorded API requests, optionally only those whose path starts with ``path_prefix``."""
        with self._state.lock:
            calls = list(self._state.requests)
        return [c for c in calls if path_prefix is None or c.path.startswith(path_prefix)]

    def clear_calls(self) -> None:
        with self._state.lock:
            self._state.requests.clear()

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event generated, oldest first (copies)."""
        with self._state.lock:
            return copy.deepcopy(self._state.events)

    def wait_for_deliveries(self, count: int, *, status: int | None = None, timeout: float = 10.0) -> None:
        """Wait until ``count`` webhook attempts (with this HTTP status, if given) were made."""
        deadline = time.monotonic() + timeout
        while True:
            seen = [d for d in list(self.webhook_deliveries) if status is None or d[1] == status]
            if len(seen) >= count:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"expected {count} webhook deliveries within {timeout}s, got {self.webhook_deliveries}"
                )
            time.sleep(0.02)

    # -- fault injection ------------------------------------------------------------------------------------

    def delay_next(self, path_prefix: str, seconds: float, *, method: str = "POST", times: int = 1) -> None:
        """Answer the next ``times`` ``method`` requests under ``path_prefix`` ``seconds`` late.

        The request is processed at once, as Stripe would; only its answer is held back (a slow network or a
        slow Stripe). A client that gives up or dies meanwhile has made the change without hearing of it,
        which is what idempotency keys are for. ``delays_started`` counts the answers held so far.
        """
        with self._state.lock:
            self._delays.extend(_Delay(method.upper(), path_prefix, seconds) for _ in range(times))

    @property
    def delays_started(self) -> int:
        with self._state.lock:
            return self._delays_started

    def wait_for_delayed(self, count: int = 1, *, timeout: float = 10.0) -> None:
        """Wait until ``count`` answers are (or were) being held back by ``delay_next``."""
        deadline = time.monotonic() + timeout
        while self.delays_started < count:
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} delayed request(s) within {timeout}s")
            time.sleep(0.02)

    def _take_delay(self, method: str, path: str) -> float:
        with self._state.lock:
            for index, delay in enumerate(self._delays):
                if delay.method == method and path.startswith(delay.path_prefix):
                    del self._delays[index]
                    self._delays_started += 1
                    return delay.seconds
        return 0.0

    # -- the customer's and Stripe's side -------------------------------------------------------------------

    def complete_checkout(self, session_id: str, *, async_payment: bool = False) -> dict[str, Any]:
        """The customer pays; ``async_payment`` leaves the payment processing until succeed/fail below."""
        with self._state.lock:
            return copy.deepcopy(complete_session(self._state, session_id, async_payment=async_payment))

    def expire_checkout(self, session_id: str) -> dict[str, Any]:
        """Expire an open session like ``POST /v1/checkout/sessions/{id}/expire`` (else StripeApiError)."""
        with self._state.lock:
            return copy.deepcopy(expire_session(self._state, session_id))

    def succeed_async_payment(self, session_id: str) -> dict[str, Any]:
        with self._state.lock:
            return copy.deepcopy(finish_async(self._state, session_id, succeeded=True))

    def fail_async_payment(self, session_id: str) -> dict[str, Any]:
        with self._state.lock:
            return copy.deepcopy(finish_async(self._state, session_id, succeeded=False))

    def advance_time(self, seconds: float) -> None:
        """Move the fake's clock forward (object timestamps, expiry); open sessions past expires_at expire."""
        with self._state.lock:
            self._state.clock_offset += seconds
            self._state.sweep_expired()

    def find_session(self, session_id: str) -> dict[str, Any] | None:
        """The Checkout Session as now stored (a copy), or None."""
        with self._state.lock:
            self._state.sweep_expired()
            return copy.deepcopy(self._state.sessions.get(session_id))

    # -- webhooks -------------------------------------------------------------------------------------------

    def sign(self, payload: bytes, timestamp: int | None = None) -> str:
        """The ``Stripe-Signature`` header for ``payload``, as Stripe computes it."""
        ts = int(time.time()) if timestamp is None else timestamp
        signed = f"{ts}.".encode() + payload
        digest = hmac.new(self.webhook_secret.encode(), signed, hashlib.sha256).hexdigest()
        return f"t={ts},v1={digest}"

    def hold_deliveries(self) -> None:
        """Keep new events instead of delivering them (a webhook endpoint that is late or unreachable)."""
        with self._delivery_lock:
            self._holding = True

    def release_deliveries(self, *, reverse: bool = False, times: int = 1) -> list[str]:
        """Deliver the held events (newest first with ``reverse``), each ``times`` times; stop holding.

        Returns the ids of the events released, in the order they were sent.
        """
        with self._delivery_lock:
            held, self._held, self._holding = self._held, [], False
        if reverse:
            held.reverse()
        for event in held:
            self.send_event(event, times=times)
        return [str(event.get("id")) for event in held]

    @property
    def held_events(self) -> list[dict[str, Any]]:
        with self._delivery_lock:
            return list(self._held)

    def send_event(self, event: dict[str, Any], *, times: int = 1) -> None:
        """(Re)deliver ``event`` ``times`` times to ``webhook_url``, each attempt retried until a 2xx."""
        for _ in range(times):
            self._queue_delivery(event)

    def _on_event(self, event: dict[str, Any]) -> None:
        """A new event happened on the account: deliver it (or hold it back), as configured."""
        with self._delivery_lock:
            if self._holding:
                self._held.append(copy.deepcopy(event))
                return
        for _ in range(max(1, self.deliveries_per_event)):
            self._queue_delivery(event)

    def _queue_delivery(self, event: dict[str, Any]) -> None:
        loop = self._loop
        if self.webhook_url is None or loop is None or loop.is_closed() or self._stopped:
            return
        payload = copy.deepcopy(event)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(lambda: self._spawn(self._deliver(payload)))

    async def _deliver(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, indent=2).encode()
        failures = 0
        while self.webhook_url is not None and self._client is not None:
            status = 0
            try:
                async with self._client.post(
                    self.webhook_url,
                    data=body,
                    headers={
                        "Content-Type": "application/json; charset=utf-8",
                        "Stripe-Signature": self.sign(body),
                        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                    },
                    timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
                ) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.debug("fake stripe: webhook %s failed: %s", event.get("id"), type(exc).__name__)
            self.webhook_deliveries.append((str(event.get("id")), status))
            if 200 <= status < 300:
                return
            await asyncio.sleep(_RETRY_DELAYS[min(failures, len(_RETRY_DELAYS) - 1)])
            failures += 1

    # -- HTTP -----------------------------------------------------------------------------------------------

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        body = StripeApiError(404, f"Unrecognized request URL ({request.method}: {request.path}).").body()
        return web.json_response(body, status=404)

    async def _handle_api(self, request: web.Request) -> web.Response:
        received = time.time()
        method, path = request.method.upper(), request.path.rstrip("/")
        pairs = list(parse_qsl(request.query_string, keep_blank_values=True))
        if method == "POST":
            pairs += parse_qsl(await request.text(), keep_blank_values=True)
        params = decode_form(pairs)
        key = request.headers.get("Idempotency-Key")
        extra: dict[str, str] = {"Request-Id": f"req_{secrets.token_hex(7)}", "Stripe-Version": API_VERSION}
        try:
            self._authenticate(request.headers.get("Authorization", ""))
            with self._state.lock:
                replay = self._replay(key, method, path, params) if method == "POST" else None
                if replay is not None:
                    status, body = replay.status, copy.deepcopy(replay.body)
                    extra["Idempotent-Replayed"] = "true"
                else:
                    body = dispatch(self._state, method, path, params, Context(self.base_url, key))
                    status = 200
                    if key and method == "POST":
                        self._state.remember(
                            key, IdempotentResult(method, path, params, status, copy.deepcopy(body), received)
                        )
        except StripeApiError as exc:
            status, body = exc.status, exc.body()
        except Exception as exc:  # answer like Stripe's 500 so the client sees a clean API error
            logger.error("fake stripe: %s %s crashed: %s", method, path, type(exc).__name__, exc_info=True)
            status, body = 500, StripeApiError(500, "An unknown error occurred", type="api_error").body()
        if key:
            extra["Idempotency-Key"] = key
        record = RecordedRequest(
            method=method,
            path=path,
            params=params,
            headers=dict(request.headers),
            status=status,
            response=copy.deepcopy(body),
            at=received,
        )
        with self._state.lock:
            self._state.requests.append(record)
        delay = self._take_delay(method, path)
        if delay > 0:
            await asyncio.sleep(delay)
        return web.json_response(body, status=status, headers=extra)

    @staticmethod
    def _authenticate(header: str) -> None:
        scheme, _, key = header.partition(" ")
        if not header:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if scheme.lower() != "bearer" or not key.startswith(_KEY_PREFIXES) or len(key) <= 8:
            shown = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else key
            raise StripeApiError(401, f"Invalid API Key provided: {shown}", code="api_key_invalid")

    def _replay(
        self, key: str | None, method: str, path: str, params: dict[str, Any]
    ) -> IdempotentResult | None:
        if not key:
            return None
        stored = self._state.idempotency.get(key)
        if stored is None or stored.at < time.time() - 24 * 3600:
            return None
        if (stored.method, stored.path) != (method, path):
            raise StripeApiError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they were first used "
                f"for ({stored.method} {stored.path} vs {method} {path}). Try using a key other than '{key}' "
                "if you meant to execute a different request.",
                type="idempotency_error",
            )
        if stored.params != params:
            raise StripeApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        return stored


def main(argv: list[str] | None = None) -> None:
    """Standalone fake Stripe for the local sandbox."""
    parser = argparse.ArgumentParser(description="Fake Stripe API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--webhook-secret", default="whsec_test_secret")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with FakeStripe(
        host=args.host, port=args.port, webhook_url=args.webhook_url, webhook_secret=args.webhook_secret
    ) as fake:
        print(f"fake Stripe listening on {fake.base_url}", flush=True)
        done.wait()


if __name__ == "__main__":
    main()
