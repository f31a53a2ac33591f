"""The fake Stripe server, driven through the real stripe-python client exactly as production code uses it.

These tests pin what other tests rely on: Stripe's wire format and object shapes (stripe-python must parse
them), its error shapes (mapped to the right exception classes), idempotency semantics, and webhook delivery
with signatures that ``stripe.Webhook.construct_event`` accepts.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any, cast

import pytest
import stripe
from aiohttp import web
from stripe.params.checkout import SessionCreateParams

from marketbot.fakes.stripe import FakeStripe
from marketbot.fakes.stripe_state import decode_form

SECRET = "whsec_test_secret"


class Receiver:
    """A small aiohttp webhook endpoint in its own thread; answers ``statuses`` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[bytes, str]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), request.headers.get("Stripe-Signature", "")))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_123", base_addresses={"api": fake.base_url}, max_network_retries=0)


def session_params(**overrides: Any) -> SessionCreateParams:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {"currency": "sgd", "unit_amount": 450, "product_data": {"name": "Bento"}},
                "quantity": 2,
            },
            {
                "price_data": {"currency": "sgd", "unit_amount": 300, "product_data": {"name": "Bread"}},
                "quantity": 1,
            },
        ],
        "success_url": "https://example.test/ok?s={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://example.test/cancel",
        "expires_at": int(time.time()) + 3600,
        "metadata": {"reservation_id": "42"},
        "client_reference_id": "res-42",
    }
    params.update(overrides)
    return cast(SessionCreateParams, params)


def test_decode_form_nests_brackets() -> None:
    pairs = [("a[0][b]", "1"), ("a[0][c][d]", "x"), ("a[1][b]", "2"), ("expand[]", "p"), ("expand[]", "q")]
    assert decode_form(pairs) == {"a": [{"b": "1", "c": {"d": "x"}}, {"b": "2"}], "expand": ["p", "q"]}


def test_create_and_retrieve_session(fake: FakeStripe, client: stripe.StripeClient) -> None:
    created = client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "k1"})
    assert created.id.startswith("cs_test_")
    assert created.object == "checkout.session"
    assert (created.status, created.payment_status) == ("open", "unpaid")
    assert created.amount_total == 1200 and created.currency == "sgd"
    assert created.metadata is not None and created.metadata["reservation_id"] == "42"
    assert created.client_reference_id == "res-42"
    assert created.url == f"{fake.base_url}/pay/{created.id}"
    again = client.v1.checkout.sessions.retrieve(created.id)
    assert again.id == created.id and again.amount_total == 1200 and again.livemode is False
    call = fake.calls("/v1/checkout/sessions")[0]
    assert call.headers["Idempotency-Key"] == "k1"
    assert call.params["line_items"][1]["price_data"]["product_data"]["name"] == "Bread"

    jpy = [
        {
            "price_data": {"currency": "jpy", "unit_amount": 500, "product_data": {"name": "Onigiri"}},
            "quantity": 3,
        }
    ]
    yen = client.v1.checkout.sessions.create(params=session_params(line_items=jpy))
    assert yen.amount_total == 1500 and yen.currency == "jpy"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"


def test_idempotency(fake: FakeStripe, client: stripe.StripeClient) -> None:
    params = session_params()
    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k1"})
    second = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k1"})
    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(fake._state.sessions) == 1
    with pytest.raises(stripe.IdempotencyError) as err:
        client.v1.checkout.sessions.create(
            params={**params, "client_reference_id": "other"}, options={"idempotency_key": "k1"}
        )
    assert "same parameters" in str(err.value)


def test_validation_errors(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as soon:
        client.v1.checkout.sessions.create(params=session_params(expires_at=int(time.time()) + 600))
    assert soon.value.param == "expires_at" and soon.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as late:
        client.v1.checkout.sessions.create(params=session_params(expires_at=int(time.time()) + 25 * 3600))
    assert late.value.param == "expires_at"
    bad = [
        {"price_data": {"currency": "sgd", "unit_amount": -1, "product_data": {"name": "x"}}, "quantity": 1}
    ]
    with pytest.raises(stripe.InvalidRequestError) as negative:
        client.v1.checkout.sessions.create(params=session_params(line_items=bad))
    assert negative.value.param == "line_items[0][price_data][unit_amount]"


def test_bad_api_key(fake: FakeStripe) -> None:
    wrong = stripe.StripeClient("pk_test_123", base_addresses={"api": fake.base_url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        wrong.v1.checkout.sessions.create(params=session_params())
    assert fake.calls()[-1].status == 401


def test_expire(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired" and expired.url is None
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.expire(session.id)
    assert "open" in str(err.value)
    assert [e["type"] for e in fake.events] == ["checkout.session.expired"]
    other = client.v1.checkout.sessions.create(params=session_params())
    fake.advance_time(2 * 3600)
    assert client.v1.checkout.sessions.retrieve(other.id).status == "expired"


def test_complete_checkout_and_async(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    fake.complete_checkout(session.id)
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    intent = paid.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert intent.id.startswith("pi_") and intent.status == "succeeded" and intent.amount == 1200
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)

    later = client.v1.checkout.sessions.create(params=session_params())
    fake.complete_checkout(later.id, async_payment=True)
    assert client.v1.checkout.sessions.retrieve(later.id).payment_status == "unpaid"
    fake.succeed_async_payment(later.id)
    assert client.v1.checkout.sessions.retrieve(later.id).payment_status == "paid"
    failing = client.v1.checkout.sessions.create(params=session_params())
    fake.complete_checkout(failing.id, async_payment=True)
    fake.fail_async_payment(failing.id)
    types = [e["type"] for e in fake.events]
    assert types == [
        "checkout.session.completed",
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.completed",
        "checkout.session.async_payment_failed",
    ]
    event = client.v1.events.retrieve(fake.events[0]["id"])
    assert event.type == "checkout.session.completed"
    listed = client.v1.events.list(params={"type": "checkout.session.async_payment_*", "limit": 10})
    assert [e.type for e in listed.data] == [
        "checkout.session.async_payment_failed",
        "checkout.session.async_payment_succeeded",
    ]


def test_pay_page(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=session_params(success_url=None))
    assert session.url is not None
    with urllib.request.urlopen(session.url, timeout=5) as page:
        assert b"Pay" in page.read()
    request = urllib.request.Request(session.url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=5) as done:
        assert done.status == 200
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_the_pay_page_offers_every_outcome_a_customer_or_bank_can_produce(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    def submit(session_id: str, action: str) -> tuple[int, str]:
        request = urllib.request.Request(
            f"{fake.base_url}/pay/{session_id}", data=f"action={action}".encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    declined = client.v1.checkout.sessions.create(params=session_params(success_url=None))
    status, page = submit(declined.id, "decline")
    assert status == 402 and "Your card was declined" in page
    assert client.v1.checkout.sessions.retrieve(declined.id).status == "open"  # nothing happened

    submit(declined.id, "expire")
    assert client.v1.checkout.sessions.retrieve(declined.id).status == "expired"

    delayed = client.v1.checkout.sessions.create(params=session_params(success_url=None))
    status, page = submit(delayed.id, "pay_delayed")
    assert status == 200 and "The bank confirms" in page
    assert client.v1.checkout.sessions.retrieve(delayed.id).payment_status == "unpaid"
    submit(delayed.id, "bank_confirms")
    assert client.v1.checkout.sessions.retrieve(delayed.id).payment_status == "paid"
    types = [e["type"] for e in fake.events if e["data"]["object"]["id"] in (declined.id, delayed.id)]
    assert types == [
        "checkout.session.expired",
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
    ]


def test_webhook_delivery_is_signed() -> None:
    with Receiver() as receiver, FakeStripe(webhook_url=receiver.url, webhook_secret=SECRET) as fake:
        client = stripe.StripeClient(
            "sk_test_1", base_addresses={"api": fake.base_url}, max_network_retries=0
        )
        session = client.v1.checkout.sessions.create(params=session_params())
        fake.complete_checkout(session.id)
        fake.wait_for_deliveries(1, status=200)
        payload, header = receiver.received[0]
        event = stripe.Webhook.construct_event(payload, header, SECRET)
        assert event.type == "checkout.session.completed"
        assert event.data.object["id"] == session.id and event.data.object["payment_status"] == "paid"
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(payload, header, "whsec_other")
        fake.send_event(fake.events[0], times=2)
        fake.wait_for_deliveries(3, status=200)
        ids = {json.loads(body)["id"] for body, _ in receiver.received}
        assert ids == {fake.events[0]["id"]} and len(receiver.received) == 3


def test_webhooks_can_arrive_late_out_of_order_and_more_than_once() -> None:
    with Receiver() as receiver, FakeStripe(webhook_url=receiver.url, webhook_secret=SECRET) as fake:
        client = stripe.StripeClient(
            "sk_test_1", base_addresses={"api": fake.base_url}, max_network_retries=0
        )
        # Late: while held, nothing reaches the endpoint
        fake.hold_deliveries()
        session = client.v1.checkout.sessions.create(params=session_params())
        fake.complete_checkout(session.id, async_payment=True)
        fake.succeed_async_payment(session.id)
        assert [e["type"] for e in fake.held_events] == [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
        ]
        assert receiver.received == []

        # Out of order and twice: released newest first, each event delivered two times
        released = fake.release_deliveries(reverse=True, times=2)
        fake.wait_for_deliveries(4, status=200)
        assert released == [fake.events[1]["id"], fake.events[0]["id"]]
        delivered = [json.loads(body)["type"] for body, _ in receiver.received]
        assert sorted(delivered) == sorted(
            ["checkout.session.completed"] * 2 + ["checkout.session.async_payment_succeeded"] * 2
        )

        # Every event twice, from now on
        fake.deliveries_per_event = 2
        client.v1.checkout.sessions.expire(client.v1.checkout.sessions.create(params=session_params()).id)
        fake.wait_for_deliveries(6, status=200)
        assert [json.loads(body)["type"] for body, _ in receiver.received[4:]] == [
            "checkout.session.expired"
        ] * 2


def test_webhook_retries_on_non_2xx() -> None:
    with Receiver(statuses=[500, 503]) as receiver, FakeStripe(webhook_url=receiver.url) as fake:
        client = stripe.StripeClient(
            "sk_test_1", base_addresses={"api": fake.base_url}, max_network_retries=0
        )
        session = client.v1.checkout.sessions.create(params=session_params())
        client.v1.checkout.sessions.expire(session.id)
        fake.wait_for_deliveries(1, status=200)
        event_id = fake.events[0]["id"]
        assert fake.webhook_deliveries == [(event_id, 500), (event_id, 503), (event_id, 200)]


def test_refunds(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    intent = fake.complete_checkout(session.id)["payment_intent"]
    partial = client.v1.refunds.create(
        params={"payment_intent": intent, "amount": 450, "reason": "requested_by_customer"},
        options={"idempotency_key": "refund-42-1"},
    )
    assert partial.id.startswith("re_") and partial.status == "succeeded" and partial.amount == 450
    replay = client.v1.refunds.create(
        params={"payment_intent": intent, "amount": 450, "reason": "requested_by_customer"},
        options={"idempotency_key": "refund-42-1"},
    )
    assert replay.id == partial.id
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"payment_intent": intent, "amount": 1000})
    assert too_much.value.param == "amount"
    rest = client.v1.refunds.create(params={"payment_intent": intent})
    assert rest.amount == 750
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": intent})
    assert again.value.code == "charge_already_refunded"
    assert [e["type"] for e in fake.events][-2:] == ["refund.created", "charge.refunded"]
    assert fake.events[-1]["data"]["object"]["refunded"] is True


def test_list_sessions(fake: FakeStripe, client: stripe.StripeClient) -> None:
    old = client.v1.checkout.sessions.create(params=session_params())
    fake.advance_time(100)
    since = int(time.time() + 100)
    new = [
        client.v1.checkout.sessions.create(params=session_params(expires_at=since + 3600)) for _ in range(3)
    ]
    fake.complete_checkout(new[0].id)
    listed = client.v1.checkout.sessions.list(params={"created": {"gte": since}, "limit": 2})
    assert [s.id for s in listed.data] == [new[2].id, new[1].id] and listed.has_more
    rest = client.v1.checkout.sessions.list(params={"created": {"gte": since}, "starting_after": new[1].id})
    assert [s.id for s in rest.data] == [new[0].id] and not rest.has_more
    everything = [s.id for s in client.v1.checkout.sessions.list(params={"limit": 100}).auto_paging_iter()]
    assert old.id in everything and len(everything) == 4
    complete = client.v1.checkout.sessions.list(params={"status": "complete"})
    assert [s.id for s in complete.data] == [new[0].id]
    query = urllib.parse.urlsplit(fake.calls("/v1/checkout/sessions")[-1].path).path
    assert query == "/v1/checkout/sessions"


def test_a_delayed_answer_arrives_late_but_the_request_took_effect_at_once(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    fake.delay_next("/v1/checkout/sessions", 2.0)
    slow = stripe.StripeClient("sk_test_123", base_addresses={"api": fake.base_url}, max_network_retries=0)
    started = time.monotonic()
    created: list[Any] = []
    thread = threading.Thread(
        target=lambda: created.append(
            slow.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "late"})
        )
    )
    thread.start()
    fake.wait_for_delayed(1)
    # The session exists while its creator is still waiting for the answer; the same key replays it.
    (stored,) = [c for c in fake.calls("/v1/checkout/sessions") if c.method == "POST"]
    assert fake.find_session(stored.response["id"]) is not None
    replay = client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "late"})
    assert replay.id == stored.response["id"] and time.monotonic() - started < 2.0
    thread.join(10)
    assert created[0].id == replay.id and time.monotonic() - started >= 2.0
    # Only the next matching request was delayed, and other paths or methods never were.
    assert fake.delays_started == 1
    client.v1.checkout.sessions.retrieve(replay.id)
    assert fake.delays_started == 1
