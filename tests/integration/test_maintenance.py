"""The periodic jobs on real PostgreSQL: each works once, shares batches safely, repeats harmlessly."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core.pickup import display_code
from core.reservations import Line
from db.models import Business, OfferItem, OutboxMessage, Payment, Reservation, User
from db.offer_repositories import NewItem
from db.uow import SqlAlchemyUnitOfWork
from tasks import maintenance
from tasks.names import EXPIRE_CHECKOUT
from tests.integration import seed
from tests.integration.order_seed import paid_order

UowFactory = Callable[[], SqlAlchemyUnitOfWork]


def _now() -> datetime:
    return datetime.now(UTC)


def _offer(uow_factory: UowFactory, now: datetime, *, units: int = 5, start: datetime | None = None) -> int:
    with uow_factory() as uow:
        owner = seed.user(uow, now)
        business = seed.verified_business(uow, owner, now)
        offer = seed.offer(uow, business, now, start=start, items=[NewItem("Loaf", units, 600, 250)])
        uow.commit()
        return offer.id


def _hold(uow_factory: UowFactory, offer_id: int, quantity: int, *, made_at: datetime) -> uuid.UUID:
    with uow_factory() as uow:
        buyer = seed.user(uow, made_at)
        item_id = uow.offers.items(offer_id)[0].id
        hold = uow.reservations.hold(
            user_id=buyer.id,
            offer_id=offer_id,
            lines=[Line(item_id, quantity)],
            idempotency_key=uuid.uuid4().hex,
            expires_at=made_at + timedelta(minutes=15),
            now=made_at,
        )
        uow.commit()
        return hold.reservation_id


def _remaining(uow_factory: UowFactory, offer_id: int) -> int:
    with uow_factory() as uow:
        return sum(item.remaining for item in uow.offers.items(offer_id))


def _status(uow_factory: UowFactory, reservation_id: uuid.UUID) -> str:
    with uow_factory() as uow:
        return str(uow.session.scalar(select(Reservation.status).where(Reservation.id == reservation_id)))


def _owner_chat(uow: SqlAlchemyUnitOfWork, business_id: int) -> int:
    business = uow.session.get(Business, business_id)
    assert business is not None
    owner = uow.session.get(User, business.owner_user_id)
    assert owner is not None
    return owner.chat_id or owner.telegram_user_id


def _outbox_to(uow_factory: UowFactory, chat_id: int) -> list[str]:
    with uow_factory() as uow:
        rows = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == chat_id))
        return [str(row.payload.get("text") or row.payload.get("caption")) for row in rows]


def test_lapsed_holds_give_their_units_back_and_their_sessions_are_expired(uow_factory: UowFactory) -> None:
    # Given an offer of 5 with a live hold of 1 and a hold of 2 that lapsed (made 20 minutes ago; made
    # last, since a new hold would reclaim lapsed ones itself)
    now = _now()
    offer_id = _offer(uow_factory, now - timedelta(minutes=30))
    live = _hold(uow_factory, offer_id, 1, made_at=now - timedelta(minutes=1))
    lapsed = _hold(uow_factory, offer_id, 2, made_at=now - timedelta(minutes=20))
    session_id = f"cs_test_{uuid.uuid4().hex}"
    with uow_factory() as uow:
        uow.session.add(
            Payment(
                reservation_id=lapsed,
                stripe_checkout_session_id=session_id,
                status="open",
                amount_minor=500,
                currency="SGD",
            )
        )
        uow.commit()
    assert _remaining(uow_factory, offer_id) == 2

    # When the sweep runs
    result = maintenance.release_expired_holds(uow_factory, now=now)

    # Then the lapsed hold's units are back, the live one still counts, and its open session is expired
    assert _status(uow_factory, lapsed) == "expired"
    assert _status(uow_factory, live) == "held"
    assert _remaining(uow_factory, offer_id) == 4
    assert result.count >= 1
    assert any(job.task == EXPIRE_CHECKOUT and job.args == (session_id,) for job in result.jobs)

    # And a repeated tick changes nothing
    again = maintenance.release_expired_holds(uow_factory, now=now)
    assert lapsed not in [job.args for job in again.jobs]
    assert _remaining(uow_factory, offer_id) == 4


def test_two_sweeps_at_once_release_every_lapsed_hold_exactly_once(uow_factory: UowFactory) -> None:
    # Given 120 lapsed holds of 1 unit on an offer of 200
    now = _now()
    offer_id = _offer(uow_factory, now - timedelta(minutes=30), units=200)
    made_at = now - timedelta(minutes=20)
    with uow_factory() as uow:
        buyer = seed.user(uow, made_at)
        item_id = uow.offers.items(offer_id)[0].id
        for _ in range(120):
            uow.reservations.hold(
                user_id=buyer.id,
                offer_id=offer_id,
                lines=[Line(item_id, 1)],
                idempotency_key=uuid.uuid4().hex,
                expires_at=made_at + timedelta(minutes=15),
                now=made_at,
            )
        uow.commit()
    assert _remaining(uow_factory, offer_id) == 80

    # When two sweeps run at the same time in small batches (SKIP LOCKED splits the rows between them)
    counts: list[int] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            counts.append(maintenance.release_expired_holds(uow_factory, now=now, batch=7).count)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then every unit came back exactly once: none lost, none returned twice
    assert errors == []
    assert _remaining(uow_factory, offer_id) == 200
    with uow_factory() as uow:
        item = uow.session.scalar(select(OfferItem).where(OfferItem.offer_id == offer_id))
        assert item is not None and item.remaining == item.quantity_total
    assert sum(counts) >= 120


def test_an_ended_offer_expires_and_its_business_gets_one_summary(uow_factory: UowFactory) -> None:
    # Given an offer whose pickup window ended, with one order collected and one not
    now = _now()
    offer_id = _offer(uow_factory, now, start=now - timedelta(hours=4), units=6)
    with uow_factory() as uow:
        offer = uow.offers.get_for_update(offer_id)
        assert offer is not None
        paid_order(uow, seed.user(uow, now), offer, now, quantities=(2,), status="redeemed")
        paid_order(uow, seed.user(uow, now), offer, now, quantities=(1,))
        owner_chat = _owner_chat(uow, offer.business_id)
        uow.commit()

    # When the sweep runs twice
    first = maintenance.expire_ended_offers(uow_factory, now=now)
    second = maintenance.expire_ended_offers(uow_factory, now=now)

    # Then the offer is expired and the owner got exactly one summary with the numbers
    with uow_factory() as uow:
        offer = uow.offers.get_for_update(offer_id)
        assert offer is not None and offer.status == "expired"
    summaries = _outbox_to(uow_factory, owner_chat)
    assert len(summaries) == 1
    assert "Sold 3 of 6 units in 2 orders" in summaries[0]
    assert "Collected: 1 · not collected: 1" in summaries[0]
    assert first.count >= 1 and all(oid not in first.outbox_ids for oid in second.outbox_ids)


def test_a_buyer_is_reminded_once_before_the_window_ends_and_the_business_gets_a_last_call(
    uow_factory: UowFactory,
) -> None:
    # Given a paid order whose window is open and ends in 15 minutes, and one whose window ends in hours
    now = _now()
    ending_soon = _offer(uow_factory, now, start=now - timedelta(hours=2, minutes=45))
    later = _offer(uow_factory, now, start=now + timedelta(hours=2))
    with uow_factory() as uow:
        soon_offer = uow.offers.get_for_update(ending_soon)
        later_offer = uow.offers.get_for_update(later)
        assert soon_offer is not None and later_offer is not None
        buyer = seed.user(uow, now)
        order, _ = paid_order(uow, buyer, soon_offer, now, quantities=(1,))
        paid_order(uow, buyer, later_offer, now, quantities=(1,))
        buyer_chat = buyer.chat_id or buyer.telegram_user_id
        owner_chat = _owner_chat(uow, soon_offer.business_id)
        code = order.pickup_code
        uow.commit()

    # When the reminder job runs on two ticks
    maintenance.send_pickup_reminders(uow_factory, now=now)
    maintenance.send_pickup_reminders(uow_factory, now=now + timedelta(minutes=1))

    # Then the buyer got one reminder, for the order that ends soon, with its code
    reminders = _outbox_to(uow_factory, buyer_chat)
    assert len(reminders) == 1
    assert "Don't forget" in reminders[0] and display_code(code) in reminders[0]
    # And the business got one last call listing the uncollected order
    (last_call,) = _outbox_to(uow_factory, owner_chat)
    assert "not collected yet" in last_call
