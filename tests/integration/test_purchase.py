"""Buying: a Buy tap holds units and asks for a Checkout Session; the session task runs once in effect.

Real PostgreSQL through the real command handler (update-id claim, fencing, outbox), the real Stripe
adapter against the Stripe stand-in. Published sends and jobs are collected instead of sent: which tasks a
use case asks for, and only after its commit, is exactly what is under test.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from core.callbacks import BuyOffer, ReleaseHold
from core.commands import Actor, PressButton
from db.models import OfferItem, OutboxMessage, Payment, Reservation, User
from db.offer_repositories import NewItem
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from marketbot.fakes.stripe import FakeStripe
from tasks import payment_flows
from tasks.adapters.stripe_payments import StripePayments
from tasks.handlers import Effects, handle_user_command
from tasks.jobs import Job
from tasks.names import CREATE_CHECKOUT, EXPIRE_CHECKOUT
from tests.integration import seed

UowFactory = Callable[[], SqlAlchemyUnitOfWork]
_fences = itertools.count(int(time.time() * 1000))


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def uow_factory(database_url: str) -> Iterator[UowFactory]:
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    yield lambda: SqlAlchemyUnitOfWork(factory)
    engine.dispose()


@pytest.fixture(scope="module")
def stripe_fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@dataclass
class Published:
    sends: list[int] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


@pytest.fixture
def published() -> Published:
    return Published()


def deps_for(
    uow_factory: UowFactory, stripe_fake: FakeStripe, published: Published, *, base_url: str | None = None
) -> payment_flows.PaymentDeps:
    return payment_flows.PaymentDeps(
        uow_factory=uow_factory,
        stripe=StripePayments(
            secret_key="sk_test_marketbot",
            api_base_url=base_url or stripe_fake.base_url,
            max_network_retries=0,
        ),
        now=now,
        publish_send=published.sends.append,
        publish_job=published.jobs.append,
        bot_username="marketbot_test_bot",
    )


@pytest.fixture
def deps(uow_factory: UowFactory, stripe_fake: FakeStripe, published: Published) -> payment_flows.PaymentDeps:
    return deps_for(uow_factory, stripe_fake, published)


@dataclass(frozen=True)
class Shop:
    offer_id: int
    item_ids: list[int]
    owner_telegram_id: int


def open_shop(
    uow_factory: UowFactory, items: list[NewItem] | None = None, *, per_order_limit: int | None = None
) -> Shop:
    with uow_factory() as uow:
        owner = seed.user(uow, now(), "Owner")
        business = seed.verified_business(uow, owner, now())
        offer = seed.offer(uow, business, now(), items=items or [NewItem("Croissant", 5, 400, 250)])
        offer.per_order_limit = per_order_limit
        uow.commit()
        return Shop(offer.id, [i.id for i in offer.items], owner.telegram_user_id)


def customer() -> int:
    return random.randint(10**9, 9 * 10**9)


def press(
    uow_factory: UowFactory, telegram_id: int, data: str, *, message_id: int = 500, at: datetime | None = None
) -> Effects:
    """The customer taps a button with `data` on message `message_id`, through the real command handler."""
    command = PressButton(
        update_id=random.randint(10**9, 2**62),
        actor=Actor(telegram_user_id=telegram_id, chat_id=telegram_id, first_name="Ann", language_code="en"),
        received_at=at or now(),
        correlation_id="test",
        callback_query_id="cq",
        message_id=message_id,
        data=data,
    )
    with uow_factory() as uow:
        return handle_user_command(command, uow, fence_token=next(_fences), now=at or now())


def outbox(uow_factory: UowFactory, ids: list[int]) -> list[OutboxMessage]:
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))
        uow.session.expunge_all()
        return sorted(rows, key=lambda r: r.id)


def texts(uow_factory: UowFactory, ids: list[int]) -> str:
    return "\n".join(str(r.payload.get("text") or r.payload.get("caption")) for r in outbox(uow_factory, ids))


def reservations_of(uow_factory: UowFactory, telegram_id: int) -> list[Reservation]:
    with uow_factory() as uow:
        rows = list(
            uow.session.scalars(
                select(Reservation)
                .join(User, User.id == Reservation.user_id)
                .where(User.telegram_user_id == telegram_id)
            )
        )
        uow.session.expunge_all()
        return rows


def remaining(uow_factory: UowFactory, item_id: int) -> int:
    with uow_factory() as uow:
        return int(uow.session.scalar(select(OfferItem.remaining).where(OfferItem.id == item_id)) or 0)


def payments_of(uow_factory: UowFactory, reservation_id: uuid.UUID) -> list[Payment]:
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(Payment).where(Payment.reservation_id == reservation_id)))
        uow.session.expunge_all()
        return rows


def hold_for(
    uow_factory: UowFactory, shop: Shop, quantities: tuple[int, ...] = (2,)
) -> tuple[int, uuid.UUID]:
    """A customer holds units of the shop's offer; returns (their telegram id, the reservation id)."""
    buyer = customer()
    press(uow_factory, buyer, BuyOffer(shop.offer_id, quantities, "n1").encode())
    (reservation,) = reservations_of(uow_factory, buyer)
    return buyer, reservation.id


def session_of(stripe_fake: FakeStripe, reservation_id: uuid.UUID) -> dict[str, Any]:
    found = [
        c.response
        for c in stripe_fake.calls("/v1/checkout/sessions")
        if c.method == "POST"
        and c.status == 200
        and c.response.get("client_reference_id") == str(reservation_id)
    ]
    assert found, "no Checkout Session was created for the hold"
    return found[0]


# -- Buy ----------------------------------------------------------------------------------------------------


def test_buying_holds_the_units_edits_the_card_and_asks_for_a_checkout_after_commit(
    uow_factory: UowFactory,
) -> None:
    shop = open_shop(uow_factory)
    buyer = customer()

    effects = press(uow_factory, buyer, BuyOffer(shop.offer_id, (2,), "a1").encode(), message_id=321)

    (reservation,) = reservations_of(uow_factory, buyer)
    assert reservation.status == "held" and reservation.chat_message_id == 321
    assert remaining(uow_factory, shop.item_ids[0]) == 3
    assert effects.jobs == [Job(CREATE_CHECKOUT, (str(reservation.id),))]
    (card,) = outbox(uow_factory, effects.outbox_ids)
    assert card.method == "editMessageCaption" and card.payload["message_id"] == 321
    assert card.payload["caption"].startswith(
        "🧺 Reserved 2 × Croissant for 15 minutes — preparing your payment link"
    )
    assert "reply_markup" not in card.payload  # the Buy button is gone


def test_a_double_tap_on_one_buy_button_holds_once(uow_factory: UowFactory) -> None:
    shop = open_shop(uow_factory)
    buyer = customer()
    data = BuyOffer(shop.offer_id, (1,), "dbl").encode()

    first = press(uow_factory, buyer, data)
    second = press(uow_factory, buyer, data)

    assert len(reservations_of(uow_factory, buyer)) == 1
    assert remaining(uow_factory, shop.item_ids[0]) == 4
    assert len(first.jobs) == 1 and second.jobs == []  # one checkout for one hold
    assert "preparing your payment link" in texts(uow_factory, second.outbox_ids)


def test_a_buyer_with_a_running_hold_is_shown_it_instead_of_holding_twice(
    uow_factory: UowFactory, deps: payment_flows.PaymentDeps, stripe_fake: FakeStripe
) -> None:
    shop = open_shop(uow_factory)
    buyer, reservation_id = hold_for(uow_factory, shop)
    payment_flows.create_checkout(reservation_id, deps, final_attempt=False)

    again = press(uow_factory, buyer, BuyOffer(shop.offer_id, (1,), "fresh").encode())

    assert [r.id for r in reservations_of(uow_factory, buyer)] == [reservation_id]
    assert again.jobs == []
    hint, card = outbox(uow_factory, again.outbox_ids)
    assert "already hold units of this offer" in hint.payload["text"]
    pay = card.payload["reply_markup"]["inline_keyboard"]
    assert pay[0][0]["url"] == session_of(stripe_fake, reservation_id)["url"]
    assert pay[1][0]["callback_data"] == ReleaseHold(reservation_id.hex).encode()


def test_second_buyer_is_told_sold_out_and_a_partly_possible_order_takes_nothing(
    uow_factory: UowFactory,
) -> None:
    shop = open_shop(uow_factory, [NewItem("Croissant", 3, 400, 250), NewItem("Baguette", 1, 500, 300)])
    hold_for(uow_factory, shop, (0, 1))  # someone takes the only baguette
    late = customer()

    effects = press(uow_factory, late, BuyOffer(shop.offer_id, (2, 1), "b1").encode())

    assert reservations_of(uow_factory, late) == []
    assert remaining(uow_factory, shop.item_ids[0]) == 3  # the croissants taken first went back
    assert effects.jobs == []
    (reply,) = outbox(uow_factory, effects.outbox_ids)
    assert reply.payload["text"] == "😔 Sorry, someone was faster: Baguette is sold out."
    assert reply.payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"ov:{shop.offer_id}:"


def test_sold_out_says_how_many_are_left(uow_factory: UowFactory) -> None:
    shop = open_shop(uow_factory, [NewItem("Croissant", 3, 400, 250)])
    hold_for(uow_factory, shop, (2,))

    effects = press(uow_factory, customer(), BuyOffer(shop.offer_id, (2,), "b2").encode())

    assert texts(uow_factory, effects.outbox_ids) == "😔 Sorry, someone was faster: only 1 × Croissant left."


def test_a_banned_user_cannot_hold_units(uow_factory: UowFactory) -> None:
    shop = open_shop(uow_factory)
    buyer = customer()
    press(uow_factory, buyer, "mo:0")  # they have talked to the bot before
    with uow_factory() as uow:
        uow.session.execute(update(User).where(User.telegram_user_id == buyer).values(banned_at=now()))
        uow.commit()

    effects = press(uow_factory, buyer, BuyOffer(shop.offer_id, (1,), "x").encode())

    assert reservations_of(uow_factory, buyer) == [] and effects.jobs == []
    assert "can't reserve food" in texts(uow_factory, effects.outbox_ids)
    assert remaining(uow_factory, shop.item_ids[0]) == 5


def test_a_paused_offer_cannot_be_bought(uow_factory: UowFactory) -> None:
    shop = open_shop(uow_factory)
    with uow_factory() as uow:
        offer = uow.offers.get_for_update(shop.offer_id)
        assert offer is not None
        uow.offers.set_status(offer, "paused", now=now())
        uow.commit()
    buyer = customer()

    effects = press(uow_factory, buyer, BuyOffer(shop.offer_id, (1,), "x").encode())

    assert reservations_of(uow_factory, buyer) == [] and effects.jobs == []
    assert "no longer on sale" in texts(uow_factory, effects.outbox_ids)


def test_quantities_beyond_the_per_order_limit_are_refused(uow_factory: UowFactory) -> None:
    shop = open_shop(uow_factory, per_order_limit=2)
    buyer = customer()

    effects = press(uow_factory, buyer, BuyOffer(shop.offer_id, (3,), "x").encode())

    assert reservations_of(uow_factory, buyer) == []
    assert (
        texts(uow_factory, effects.outbox_ids)
        == "Please pick between 1 and 2 units in total, then tap Buy again."
    )


# -- the Checkout Session task ------------------------------------------------------------------------------


def test_the_checkout_task_run_twice_creates_one_session_one_payment_and_one_pay_button(
    uow_factory: UowFactory, deps: payment_flows.PaymentDeps, stripe_fake: FakeStripe, published: Published
) -> None:
    shop = open_shop(uow_factory)
    buyer, reservation_id = hold_for(uow_factory, shop)

    assert payment_flows.create_checkout(reservation_id, deps, final_attempt=False) == "created"
    first_sends = list(published.sends)
    assert payment_flows.create_checkout(reservation_id, deps, final_attempt=False) == "created"

    creates = [
        c
        for c in stripe_fake.calls("/v1/checkout/sessions")
        if c.method == "POST" and c.params.get("client_reference_id") == str(reservation_id)
    ]
    assert {c.headers["Idempotency-Key"] for c in creates} == {f"checkout-{reservation_id}"}
    assert len({c.response["id"] for c in creates}) == 1  # at most one session, however often we ask
    session = session_of(stripe_fake, reservation_id)
    assert session["metadata"]["reservation_id"] == str(reservation_id)
    assert session["metadata"]["offer_id"] == str(shop.offer_id)
    assert session["success_url"] == "https://t.me/marketbot_test_bot"
    (line,) = creates[0].params["line_items"]
    assert line["quantity"] == "2" and line["price_data"]["unit_amount"] == "250"
    assert (
        line["price_data"]["currency"] == "sgd" and line["price_data"]["product_data"]["name"] == "Croissant"
    )
    (payment,) = payments_of(uow_factory, reservation_id)
    assert (payment.status, payment.amount_minor, payment.stripe_checkout_session_id) == (
        "open",
        500,
        session["id"],
    )
    assert len(first_sends) == 1 and published.sends == first_sends  # the second run queued nothing new
    (card,) = outbox(uow_factory, first_sends)
    assert card.chat_id == buyer and card.method == "editMessageCaption" and card.payload["message_id"] == 500
    assert "total <b>SGD 5.00</b>" in card.payload["caption"]
    buttons = card.payload["reply_markup"]["inline_keyboard"]
    assert buttons[0][0] == {"text": "💳 Pay SGD 5.00", "url": session["url"]}
    assert buttons[1][0]["callback_data"] == ReleaseHold(reservation_id.hex).encode()


def test_a_released_hold_gets_no_checkout(
    uow_factory: UowFactory, deps: payment_flows.PaymentDeps, stripe_fake: FakeStripe
) -> None:
    shop = open_shop(uow_factory)
    buyer, reservation_id = hold_for(uow_factory, shop)
    press(uow_factory, buyer, ReleaseHold(reservation_id.hex).encode())

    assert payment_flows.create_checkout(reservation_id, deps, final_attempt=False) == "not_held"
    assert not [c for c in stripe_fake.calls("/v1/checkout/sessions") if str(reservation_id) in str(c.params)]


def test_stripe_unreachable_is_retried_then_the_hold_is_released_and_the_buyer_told(
    uow_factory: UowFactory, stripe_fake: FakeStripe, published: Published
) -> None:
    shop = open_shop(uow_factory)
    _, reservation_id = hold_for(uow_factory, shop)
    with __import__("socket").socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    unreachable = deps_for(uow_factory, stripe_fake, published, base_url=f"http://127.0.0.1:{dead_port}")

    with pytest.raises(payment_flows.StripeUnavailable):
        payment_flows.create_checkout(reservation_id, unreachable, final_attempt=False)
    assert reservations_of_id(uow_factory, reservation_id).status == "held"

    assert payment_flows.create_checkout(reservation_id, unreachable, final_attempt=True) == "failed"

    assert reservations_of_id(uow_factory, reservation_id).status == "released"
    assert remaining(uow_factory, shop.item_ids[0]) == 5
    assert "couldn't start the payment" in texts(uow_factory, published.sends)
    assert payments_of(uow_factory, reservation_id) == []


def test_stripe_refusing_the_checkout_releases_the_hold_at_once(
    uow_factory: UowFactory, deps: payment_flows.PaymentDeps, published: Published
) -> None:
    # SGD 0.30 is below Stripe's minimum charge: a request Stripe rejects, however often it is retried.
    shop = open_shop(uow_factory, [NewItem("Bun", 5, 100, 30)])
    _, reservation_id = hold_for(uow_factory, shop, (1,))

    assert payment_flows.create_checkout(reservation_id, deps, final_attempt=False) == "failed"

    assert reservations_of_id(uow_factory, reservation_id).status == "released"
    assert remaining(uow_factory, shop.item_ids[0]) == 5
    assert "couldn't start the payment" in texts(uow_factory, published.sends)


def reservations_of_id(uow_factory: UowFactory, reservation_id: uuid.UUID) -> Reservation:
    with uow_factory() as uow:
        row = uow.session.get(Reservation, reservation_id)
        assert row is not None
        uow.session.expunge(row)
        return row


# -- releasing ----------------------------------------------------------------------------------------------


def test_releasing_a_hold_puts_the_units_back_and_closes_its_checkout(
    uow_factory: UowFactory, deps: payment_flows.PaymentDeps, stripe_fake: FakeStripe
) -> None:
    shop = open_shop(uow_factory)
    buyer, reservation_id = hold_for(uow_factory, shop)
    payment_flows.create_checkout(reservation_id, deps, final_attempt=False)
    session_id = session_of(stripe_fake, reservation_id)["id"]

    effects = press(uow_factory, buyer, ReleaseHold(reservation_id.hex).encode(), message_id=500)

    assert reservations_of_id(uow_factory, reservation_id).status == "released"
    assert remaining(uow_factory, shop.item_ids[0]) == 5
    assert effects.jobs == [Job(EXPIRE_CHECKOUT, (session_id,))]
    (card,) = outbox(uow_factory, effects.outbox_ids)
    assert card.method == "editMessageCaption" and card.payload["caption"].startswith("Hold released")
    payment_flows.expire_checkout(session_id, deps)
    session = stripe_fake.find_session(session_id)
    assert session is not None and session["status"] == "expired"
    payment_flows.expire_checkout(session_id, deps)  # a repeated job is harmless

    again = press(uow_factory, buyer, ReleaseHold(reservation_id.hex).encode())
    assert "already ended" in texts(uow_factory, again.outbox_ids)
    assert remaining(uow_factory, shop.item_ids[0]) == 5  # units went back once


def test_someone_elses_hold_cannot_be_released(uow_factory: UowFactory) -> None:
    shop = open_shop(uow_factory)
    _, reservation_id = hold_for(uow_factory, shop)

    effects = press(uow_factory, customer(), ReleaseHold(reservation_id.hex).encode())

    assert "doesn't exist" in texts(uow_factory, effects.outbox_ids)
    assert reservations_of_id(uow_factory, reservation_id).status == "held"
    assert remaining(uow_factory, shop.item_ids[0]) == 3


def test_each_buy_is_counted_by_outcome_once_committed(uow_factory: UowFactory) -> None:
    shop = open_shop(uow_factory, [NewItem("Croissant", 1, 400, 250)])
    first, second = customer(), customer()
    held = press(uow_factory, first, BuyOffer(shop.offer_id, (1,), "c1").encode())
    sold_out = press(uow_factory, second, BuyOffer(shop.offer_id, (1,), "c2").encode())
    assert held.counts == [("marketbot_reservations_total", {"outcome": "held"})]
    assert sold_out.counts == [("marketbot_reservations_total", {"outcome": "sold_out"})]
