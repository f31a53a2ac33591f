"""Executing refunds through Stripe: real PostgreSQL, the Stripe stand-in through the real stripe-python
client, and (once) a real Celery worker on the payments and outbound queues."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from core.callbacks import OfferManage, OrderAction
from db.models import Offer, Order, OutboxMessage, Payment, Refund, User
from db.offer_repositories import NewItem
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from marketbot.fakes.stripe import FakeStripe
from marketbot.fakes.telegram import FakeTelegram
from marketbot.harness import free_port, start_worker
from tasks import jobs, offer_flows, order_flows
from tasks.adapters.stripe_payments import CheckoutLine, StripePayments
from tasks.names import EXECUTE_REFUND
from tasks.refund_flows import MAX_ATTEMPTS, RefundOutcome, execute_refund
from tasks.refunds import request_refund
from tests.integration import seed
from tests.integration.order_seed import context, paid_order

NOW = datetime.now(UTC).replace(microsecond=0)
HOUR = timedelta(hours=1)
STRIPE_KEY = "sk_test_marketbot_refunds"


@pytest.fixture(scope="module")
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def payments(fake_stripe: FakeStripe) -> StripePayments:
    return StripePayments(secret_key=STRIPE_KEY, api_base_url=fake_stripe.base_url)


@pytest.fixture(autouse=True)
def _cutoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_flows, "cancel_cutoff", lambda: HOUR)


class Shop:
    """Committed rows for one test: a shop's offer and paid orders whose money sits in the fake Stripe."""

    def __init__(self, factory: sessionmaker[Session], payments: StripePayments, fake: FakeStripe) -> None:
        self.factory, self.payments, self.fake = factory, payments, fake
        with self.uow() as uow:
            self.owner = seed.user(uow, NOW, "Olivia")
            business = seed.verified_business(uow, self.owner, NOW, "Sunrise Bakery")
            self.business_id = business.id
            self.offer_id = seed.offer(
                uow,
                business,
                NOW,
                title="Pastry bag",
                start=NOW + 3 * HOUR,
                items=[NewItem("Croissant", 10, 300, 250)],
            ).id
            uow.commit()

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.factory)

    def paid_order(self, *, store_intent: bool = True) -> tuple[User, uuid.UUID, int, str]:
        """A buyer's paid order for 2 croissants: (buyer, order id, payment id, PaymentIntent id)."""
        checkout = self.payments.create_checkout(
            reservation_id=uuid.uuid4(),
            currency="SGD",
            lines=[CheckoutLine("Croissant", 250, 2)],
            hold_expires_at=datetime.now(UTC) + timedelta(minutes=15),
            now=datetime.now(UTC),
            success_url="https://t.me/marketbot_test_bot?start=paid",
            cancel_url="https://t.me/marketbot_test_bot?start=cancelled",
            metadata={"offer_id": str(self.offer_id)},
        )
        self.fake.complete_checkout(checkout.id)
        intent = str(self.payments.retrieve_checkout(checkout.id).payment_intent)
        with self.uow() as uow:
            buyer = seed.user(uow, NOW, "Ann")
            offer = uow.session.get(Offer, self.offer_id)
            assert offer is not None
            order, payment = paid_order(
                uow,
                buyer,
                offer,
                NOW,
                checkout_session_id=checkout.id,
                payment_intent_id=intent if store_intent else None,
            )
            uow.commit()
            return buyer, order.id, payment.id, intent

    def cancel_by_buyer(self, buyer: User, order_id: uuid.UUID) -> int:
        """The buyer cancels (committed); returns the id of the refund the cancellation requested."""
        with self.uow() as uow:
            ctx = context(buyer, NOW, button=OrderAction("cancel_confirmed", order_id.hex).encode())
            order_flows.order_action(ctx, uow, OrderAction("cancel_confirmed", order_id.hex))
            uow.commit()
        (job,) = ctx.jobs
        assert job.task == EXECUTE_REFUND
        return int(job.args[0])

    def run(self, refund_id: int, payments: StripePayments | None = None) -> RefundOutcome:
        return execute_refund(
            refund_id, uow_factory=self.uow, payments=payments or self.payments, now=lambda: NOW
        )

    def refund(self, refund_id: int) -> Refund:
        with self.factory() as session:
            refund = session.get(Refund, refund_id)
            assert refund is not None
            return refund

    def payment(self, payment_id: int) -> Payment:
        with self.factory() as session:
            payment = session.get(Payment, payment_id)
            assert payment is not None
            return payment

    def order_status(self, order_id: uuid.UUID) -> str:
        with self.factory() as session:
            order = session.get(Order, order_id)
            assert order is not None
            return order.status

    def messages_to(self, chat_id: int) -> list[str]:
        with self.factory() as session:
            rows = session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == chat_id)).all()
            return [str(row.payload.get("text", "")) for row in rows]

    def stripe_refunds(self, intent: str) -> list[dict[str, object]]:
        """Refunds the fake Stripe actually created for this PaymentIntent (replays not counted twice)."""
        created = {
            c.response["id"]: c
            for c in self.fake.calls("/v1/refunds")
            if c.method == "POST" and c.status == 200 and c.response.get("payment_intent") == intent
        }
        return [
            {"id": rid, "key": c.headers.get("Idempotency-Key"), "params": c.params}
            for rid, c in created.items()
        ]


@pytest.fixture
def shop(factory: sessionmaker[Session], payments: StripePayments, fake_stripe: FakeStripe) -> Shop:
    return Shop(factory, payments, fake_stripe)


def test_a_cancelled_orders_refund_goes_through_stripe_once_and_the_buyer_is_told(shop: Shop) -> None:
    # Given: a buyer cancelled their paid order
    buyer, order_id, payment_id, intent = shop.paid_order()
    refund_id = shop.cancel_by_buyer(buyer, order_id)

    # When: the refund task runs
    outcome = shop.run(refund_id)

    # Then: Stripe refunded the PaymentIntent once, in full, under our idempotency key
    refund = shop.refund(refund_id)
    (stripe_refund,) = shop.stripe_refunds(intent)
    assert stripe_refund["key"] == refund.idempotency_key == f"refund-payment-{payment_id}"
    assert stripe_refund["params"] == {"payment_intent": intent}
    # And: refund succeeded, payment refunded in full, the order stays cancelled (its refund says the rest)
    assert (refund.status, refund.stripe_refund_id, refund.succeeded_at) == (
        "succeeded",
        stripe_refund["id"],
        NOW,
    )
    payment = shop.payment(payment_id)
    assert (payment.status, payment.refunded_minor) == ("refunded", 500)
    assert shop.order_status(order_id) == "cancelled"
    # And: the buyer's message is in the outbox, to be sent once the task publishes it
    assert outcome.kind == "succeeded" and len(outcome.outbox_ids) == 1
    assert any(
        "Refund of SGD 5.00 for <b>Pastry bag</b> sent" in m for m in shop.messages_to(buyer.chat_id or 0)
    )
    with shop.uow() as uow:
        (page,) = order_flows.my_orders(context(buyer, NOW), uow, 0)
    assert "Cancelled · refunded to your card" in page.text


def test_a_refund_that_is_not_a_cancellation_marks_the_order_refunded(shop: Shop) -> None:
    _, order_id, payment_id, _ = shop.paid_order()
    with shop.uow() as uow:
        payment = uow.session.get(Payment, payment_id)
        assert payment is not None
        job = request_refund(uow, payment, order_id=order_id, reason="operator", now=NOW)
        uow.commit()
    assert job is not None

    assert shop.run(int(job.args[0])).kind == "succeeded"

    assert shop.order_status(order_id) == "refunded"


def test_the_payment_intent_is_read_from_the_checkout_session_when_we_never_stored_it(shop: Shop) -> None:
    buyer, order_id, payment_id, intent = shop.paid_order(store_intent=False)
    refund_id = shop.cancel_by_buyer(buyer, order_id)

    assert shop.run(refund_id).kind == "succeeded"

    assert len(shop.stripe_refunds(intent)) == 1
    assert shop.payment(payment_id).stripe_payment_intent_id == intent


def test_running_the_refund_task_twice_refunds_once_and_tells_the_buyer_once(shop: Shop) -> None:
    buyer, order_id, _, intent = shop.paid_order()
    refund_id = shop.cancel_by_buyer(buyer, order_id)

    first, second = shop.run(refund_id), shop.run(refund_id)

    assert (first.kind, second.kind) == ("succeeded", "already_succeeded")
    assert len(shop.stripe_refunds(intent)) == 1
    assert sum("Refund of" in m for m in shop.messages_to(buyer.chat_id or 0)) == 1


def test_a_crash_between_stripe_and_our_commit_is_repaired_by_the_retry_without_a_second_refund(
    shop: Shop,
) -> None:
    # Given: an earlier run got Stripe's refund but died before recording it
    buyer, order_id, _, intent = shop.paid_order()
    refund_id = shop.cancel_by_buyer(buyer, order_id)
    earlier = shop.payments.refund(
        payment_intent_id=intent, idempotency_key=shop.refund(refund_id).idempotency_key
    )

    # When: the task is redelivered
    assert shop.run(refund_id).kind == "succeeded"

    # Then: Stripe replayed the same refund (same key, same parameters) and we recorded that one
    assert [r["id"] for r in shop.stripe_refunds(intent)] == [earlier]
    assert shop.refund(refund_id).stripe_refund_id == earlier


def test_two_concurrent_runs_record_one_refund_and_one_message(shop: Shop) -> None:
    buyer, order_id, _, intent = shop.paid_order()
    refund_id = shop.cancel_by_buyer(buyer, order_id)
    outcomes: list[RefundOutcome] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        outcomes.append(shop.run(refund_id))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(o.kind for o in outcomes) == ["already_succeeded", "succeeded"]
    assert len(shop.stripe_refunds(intent)) == 1
    assert sum("Refund of" in m for m in shop.messages_to(buyer.chat_id or 0)) == 1


def test_a_refund_stripe_refuses_is_marked_failed_logged_and_never_reported_as_sent(shop: Shop) -> None:
    # Given: a payment whose PaymentIntent Stripe does not know
    buyer, order_id, payment_id, _ = shop.paid_order()
    with shop.uow() as uow:
        payment = uow.session.get(Payment, payment_id)
        assert payment is not None
        payment.stripe_payment_intent_id = f"pi_unknown_{uuid.uuid4().hex[:12]}"
        uow.commit()
    refund_id = shop.cancel_by_buyer(buyer, order_id)

    # When: the refund task runs
    with capture_logs() as logs:
        outcome = shop.run(refund_id)

    # Then: failed for operators to settle, with the reason and an ERROR line naming the refund
    refund = shop.refund(refund_id)
    assert outcome.kind == "failed" and outcome.outbox_ids == ()
    assert refund.status == "failed" and "InvalidRequestError" in (refund.last_error or "")
    assert "No such payment_intent" in (refund.last_error or "")
    assert [e for e in logs if e["event"] == "refund_failed" and e["log_level"] == "error"] == [
        {
            "event": "refund_failed",
            "log_level": "error",
            "refund_id": refund_id,
            "error": refund.last_error,
            "transient": False,
        }
    ]
    assert shop.payment(payment_id).status == "paid"
    assert not any("Refund of" in m for m in shop.messages_to(buyer.chat_id or 0))
    # And: running it again does not call Stripe again
    calls = len(shop.fake.calls("/v1/refunds"))
    assert shop.run(refund_id).kind == "failed" and len(shop.fake.calls("/v1/refunds")) == calls


def test_stripe_being_unreachable_is_retried_with_backoff_then_gives_up(shop: Shop) -> None:
    # Given: Stripe cannot be reached (nothing listens on that port)
    buyer, order_id, _, intent = shop.paid_order()
    refund_id = shop.cancel_by_buyer(buyer, order_id)
    down = StripePayments(
        secret_key=STRIPE_KEY, api_base_url=f"http://127.0.0.1:{free_port()}", max_network_retries=0
    )

    # When: the task runs twice against the outage
    first, second = shop.run(refund_id, down), shop.run(refund_id, down)

    # Then: each run counts an attempt and asks to be retried later, waiting longer each time
    assert (first.kind, second.kind) == ("retry", "retry")
    assert 0 < first.retry_after < second.retry_after
    refund = shop.refund(refund_id)
    assert (refund.status, refund.attempts) == ("requested", 2)
    assert "APIConnectionError" in (refund.last_error or "")

    # When: Stripe is back, the next retry refunds
    assert shop.run(refund_id).kind == "succeeded"
    assert len(shop.stripe_refunds(intent)) == 1


def test_a_refund_stuck_on_transient_errors_fails_after_the_last_attempt(shop: Shop) -> None:
    buyer, order_id, _, _ = shop.paid_order()
    refund_id = shop.cancel_by_buyer(buyer, order_id)
    with shop.uow() as uow:
        refund = uow.refunds.get(refund_id)
        assert refund is not None
        refund.attempts = MAX_ATTEMPTS - 1
        uow.commit()
    down = StripePayments(
        secret_key=STRIPE_KEY, api_base_url=f"http://127.0.0.1:{free_port()}", max_network_retries=0
    )

    with capture_logs() as logs:
        outcome = shop.run(refund_id, down)

    assert outcome.kind == "failed"
    assert (shop.refund(refund_id).status, shop.refund(refund_id).attempts) == ("failed", MAX_ATTEMPTS)
    assert any(e["event"] == "refund_failed" and e["refund_id"] == refund_id for e in logs)


def test_cancelling_an_offer_refunds_every_paid_order_once_through_stripe(shop: Shop) -> None:
    # Given: three paid orders, one of which its buyer cancelled already
    orders = [shop.paid_order() for _ in range(3)]
    early_refund = shop.cancel_by_buyer(orders[0][0], orders[0][1])

    # When: the owner cancels the offer (twice: a double tap) and the refund tasks run
    deferred: list[int] = []
    for _ in range(2):
        with shop.uow() as uow:
            owner = uow.session.get(User, shop.owner.id)
            assert owner is not None
            ctx = context(owner, NOW, button=OfferManage("cancel_confirmed", shop.offer_id).encode())
            offer_flows.manage_offer(ctx, uow, OfferManage("cancel_confirmed", shop.offer_id))
            uow.commit()
        deferred += [int(job.args[0]) for job in ctx.jobs]
    for refund_id in [early_refund, *deferred, *deferred]:  # every task also delivered twice
        shop.run(refund_id)

    # Then: each payment was refunded exactly once, the two offer refunds with reason offer_cancelled
    assert len(deferred) == 2
    for _, order_id, payment_id, intent in orders:
        assert len(shop.stripe_refunds(intent)) == 1
        assert shop.payment(payment_id).status == "refunded"
        assert shop.order_status(order_id) == "cancelled"
    assert [shop.refund(r).reason for r in deferred] == ["offer_cancelled", "offer_cancelled"]


def test_a_real_worker_executes_the_refund_and_tells_the_buyer(
    shop: Shop, fake_stripe: FakeStripe, database_url: str, redis_url: str
) -> None:
    telegram = FakeTelegram().start()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_API_BASE_URL": fake_stripe.base_url,
        "TELEGRAM_BOT_TOKEN": "123456:REFUND-token",
        "TELEGRAM_API_BASE_URL": telegram.base_url,
    }
    worker = start_worker(env, name="refunds", concurrency=1, queues="payments,outbound")
    try:
        # Given: a buyer cancelled, and the cancellation's job is published after its commit
        buyer, order_id, payment_id, intent = shop.paid_order()
        with shop.uow() as uow:
            ctx = context(buyer, NOW, button=OrderAction("cancel_confirmed", order_id.hex).encode())
            order_flows.order_action(ctx, uow, OrderAction("cancel_confirmed", order_id.hex))
            uow.commit()
        for job in ctx.jobs:
            jobs.publish(job)
            jobs.publish(job)  # redelivered: still one refund

        # Then: the worker refunds through Stripe and the buyer gets the message in Telegram
        (sent,) = telegram.wait_for_calls(
            "sendMessage", timeout=60, predicate=lambda c: c.params.get("chat_id") == buyer.chat_id
        )
        assert "Refund of SGD 5.00" in str(sent.params["text"])
        deadline = time.monotonic() + 10
        while shop.payment(payment_id).status != "refunded" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert shop.payment(payment_id).status == "refunded"
        time.sleep(1.0)  # give the duplicate task time to run too
        assert len(shop.stripe_refunds(intent)) == 1
        assert (
            len([c for c in telegram.calls("sendMessage") if c.params.get("chat_id") == buyer.chat_id]) == 1
        )
    finally:
        worker.stop()
        telegram.stop()
