"""POST /stripe/webhook: only correctly signed, recent events of the types we handle are enqueued.

The real gateway application on a real port, the real Celery publisher and Redis broker; no worker runs,
so what was enqueued is read from the payments queue in Redis. Signatures are made by the Stripe stand-in's
signer, which computes them exactly as Stripe does.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from marketbot.fakes.stripe import FakeStripe
from marketbot.fakes.telegram import FakeTelegram
from tasks.names import PROCESS_STRIPE_EVENT, QUEUE_PAYMENTS
from tests.support.gateway import gateway_env, run_with_gateway

WEBHOOK_SECRET = "whsec_gateway_test"


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture(scope="module")
def signer() -> FakeStripe:
    return FakeStripe(webhook_secret=WEBHOOK_SECRET)  # never started: only its signing is used


def event(event_type: str = "checkout.session.completed") -> dict[str, Any]:
    session_id = f"cs_test_{uuid.uuid4().hex}"
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": {"id": session_id, "object": "checkout.session", "status": "complete"}},
    }


def enqueued(redis_url: str, event_id: str) -> list[list[Any]]:
    """Args of PROCESS_STRIPE_EVENT tasks for `event_id` waiting in the payments queue."""
    found = []
    for raw in redis.Redis.from_url(redis_url).lrange(QUEUE_PAYMENTS, 0, -1):
        message = json.loads(raw)
        if message["headers"].get("task") != PROCESS_STRIPE_EVENT:
            continue
        args = json.loads(base64.b64decode(message["body"]))[0]
        if args[0] == event_id:
            found.append(args)
    return found


def post(env: dict[str, str], body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async def scenario(http: Any, base: str) -> tuple[int, dict[str, Any]]:
        async with http.post(f"{base}/stripe/webhook", data=body, headers=headers) as response:
            return response.status, await response.json()

    return run_with_gateway(env, scenario)


@pytest.fixture
def env(redis_url: str, telegram: FakeTelegram) -> dict[str, str]:
    return gateway_env(redis_url, telegram.base_url, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)


def signed(
    signer: FakeStripe, payload: dict[str, Any], *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, indent=2).encode()
    return body, {"Content-Type": "application/json", "Stripe-Signature": signer.sign(body, timestamp)}


def test_a_signed_checkout_event_is_enqueued_with_its_id_type_and_session(
    env: dict[str, str], signer: FakeStripe, redis_url: str
) -> None:
    payload = event()
    body, headers = signed(signer, payload)

    status, answer = post(env, body, headers)

    assert (status, answer["outcome"]) == (200, "enqueued")
    session_id = payload["data"]["object"]["id"]
    assert enqueued(redis_url, payload["id"]) == [[payload["id"], "checkout.session.completed", session_id]]


def test_a_forged_signature_is_refused_and_nothing_enqueued(
    env: dict[str, str], signer: FakeStripe, redis_url: str
) -> None:
    payload = event()
    forger = FakeStripe(webhook_secret="whsec_not_ours")
    body, headers = signed(forger, payload)

    assert post(env, body, headers)[0] == 400
    assert enqueued(redis_url, payload["id"]) == []


def test_a_body_changed_after_signing_is_refused(
    env: dict[str, str], signer: FakeStripe, redis_url: str
) -> None:
    payload = event()
    body, headers = signed(signer, payload)
    tampered = body.replace(b"checkout.session.completed", b"checkout.session.expired")

    assert post(env, tampered, headers)[0] == 400
    assert enqueued(redis_url, payload["id"]) == []


def test_a_missing_signature_is_refused(env: dict[str, str], redis_url: str) -> None:
    payload = event()

    assert post(env, json.dumps(payload).encode(), {"Content-Type": "application/json"})[0] == 400
    assert enqueued(redis_url, payload["id"]) == []


def test_a_replayed_request_older_than_five_minutes_is_refused(
    env: dict[str, str], signer: FakeStripe, redis_url: str
) -> None:
    payload = event()
    body, headers = signed(signer, payload, timestamp=int(time.time()) - 301)

    assert post(env, body, headers)[0] == 400
    assert enqueued(redis_url, payload["id"]) == []


def test_a_signed_body_that_is_not_an_event_is_refused(env: dict[str, str], signer: FakeStripe) -> None:
    body = b"not json at all"
    assert post(env, body, {"Stripe-Signature": signer.sign(body)})[0] == 400


def test_event_types_we_do_not_handle_are_acknowledged_without_enqueueing(
    env: dict[str, str], signer: FakeStripe, redis_url: str
) -> None:
    payload = event("charge.refunded")
    body, headers = signed(signer, payload)

    status, answer = post(env, body, headers)

    assert (status, answer["outcome"]) == (200, "ignored")
    assert enqueued(redis_url, payload["id"]) == []


def test_broker_unreachable_answers_503_so_stripe_retries(
    telegram: FakeTelegram, signer: FakeStripe, tmp_path: Any
) -> None:
    dead = f"unix://{tmp_path}/no-redis-here.sock?db=0"
    env = gateway_env(dead, telegram.base_url, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    body, headers = signed(signer, event())

    assert post(env, body, headers)[0] == 503


def test_without_a_webhook_secret_nothing_is_accepted(
    redis_url: str, telegram: FakeTelegram, signer: FakeStripe
) -> None:
    payload = event()
    body, headers = signed(signer, payload)

    assert post(gateway_env(redis_url, telegram.base_url), body, headers)[0] == 503
    assert enqueued(redis_url, payload["id"]) == []
