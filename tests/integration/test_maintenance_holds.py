"""The hold-expiry sweep's edges on real PostgreSQL: holds being paid, many items, batches, buyers racing it.

The sweep releases a whole batch in one statement (db/maintenance_repositories.py): claim lapsed holds with
SKIP LOCKED, lock the freed items in id order, return each item's units once.
"""

from __future__ import annotations

import contextlib
import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from core.reservations import Line, SoldOut
from db.models import OfferItem, Payment, Reservation
from db.offer_repositories import NewItem
from db.uow import SqlAlchemyUnitOfWork
from tasks import maintenance
from tasks.names import EXPIRE_CHECKOUT
from tests.integration import seed

UowFactory = Callable[[], SqlAlchemyUnitOfWork]


def _offer(uow_factory: UowFactory, now: datetime, units: list[int]) -> tuple[int, list[int]]:
    """A published offer with one item per entry of `units`; (offer id, item ids in id order)."""
    with uow_factory() as uow:
        business = seed.verified_business(uow, seed.user(uow, now), now)
        items = [NewItem(f"Item {i}", n, 600, 250) for i, n in enumerate(units)]
        offer = seed.offer(uow, business, now - timedelta(minutes=30), items=items)
        uow.commit()
        return offer.id, sorted(item.id for item in uow.offers.items(offer.id))


def _hold(
    uow_factory: UowFactory, offer_id: int, lines: list[Line], *, made_at: datetime, minutes: int = 15
) -> uuid.UUID:
    with uow_factory() as uow:
        hold = uow.reservations.hold(
            user_id=seed.user(uow, made_at).id,
            offer_id=offer_id,
            lines=lines,
            idempotency_key=uuid.uuid4().hex,
            expires_at=made_at + timedelta(minutes=minutes),
            now=made_at,
        )
        uow.commit()
        return hold.reservation_id


def _remaining(uow_factory: UowFactory, item_ids: list[int]) -> list[int]:
    with uow_factory() as uow:
        rows = uow.session.execute(
            select(OfferItem.id, OfferItem.remaining).where(OfferItem.id.in_(item_ids)).order_by(OfferItem.id)
        )
        return [remaining for _, remaining in rows]


def _status(uow_factory: UowFactory, reservation_id: uuid.UUID) -> str:
    with uow_factory() as uow:
        return str(uow.session.scalar(select(Reservation.status).where(Reservation.id == reservation_id)))


def test_a_hold_being_paid_while_the_sweep_runs_is_left_to_the_payment(uow_factory: UowFactory) -> None:
    # Given a lapsed hold whose payment is being applied right now (the payment path holds its row lock)
    now = datetime.now(UTC)
    offer_id, (item,) = _offer(uow_factory, now, [5])
    paying = _hold(uow_factory, offer_id, [Line(item, 2)], made_at=now - timedelta(minutes=20))
    other = _hold(uow_factory, offer_id, [Line(item, 1)], made_at=now - timedelta(minutes=20))
    with uow_factory() as payment:
        assert payment.payments.lock_reservation(paying) is not None

        # When the sweep runs meanwhile
        result = maintenance.release_expired_holds(uow_factory, now=now)

        # Then it releases the other lapsed hold without waiting, and leaves this one to the payment
        assert _status(uow_factory, other) == "expired"
        assert _status(uow_factory, paying) == "held"
        assert _remaining(uow_factory, [item]) == [3]
        assert payment.payments.mark_paid(paying, now=now, from_statuses=("held",))
        payment.commit()
    assert result.count >= 1

    # And the paid hold's units stay sold on the next tick
    maintenance.release_expired_holds(uow_factory, now=now)
    assert _status(uow_factory, paying) == "paid"
    assert _remaining(uow_factory, [item]) == [3]


def test_a_payment_waiting_behind_the_sweep_finds_the_hold_expired(uow_factory: UowFactory) -> None:
    # Given a lapsed hold the sweep has claimed in a batch not yet committed
    now = datetime.now(UTC)
    offer_id, (item,) = _offer(uow_factory, now, [5])
    hold = _hold(uow_factory, offer_id, [Line(item, 2)], made_at=now - timedelta(minutes=20))
    outcome: list[bool] = []

    def pay() -> None:
        with uow_factory() as payment:
            payment.payments.lock_reservation(hold)  # waits for the sweep's row lock
            outcome.append(payment.payments.mark_paid(hold, now=now, from_statuses=("held",)))
            payment.commit()

    with uow_factory() as sweep:
        released = maintenance.MaintenanceRepository(sweep.session).release_lapsed_holds(now=now, batch=10)
        assert hold in released.reservation_ids
        payer = threading.Thread(target=pay)
        payer.start()
        payer.join(timeout=0.5)
        assert payer.is_alive(), "the payment must wait for the sweep's lock"
        sweep.commit()
    payer.join(timeout=30)

    # When the payment gets the lock, the hold is no longer held: it takes the paid-after-release path
    assert outcome == [False]
    assert _status(uow_factory, hold) == "expired"
    assert _remaining(uow_factory, [item]) == [5]


def test_every_item_of_a_lapsed_hold_gets_its_units_back_once_and_never_above_its_total(
    uow_factory: UowFactory,
) -> None:
    # Given lapsed holds over three items of one offer, and one item an owner has since restocked to full
    now = datetime.now(UTC)
    made_at = now - timedelta(minutes=20)
    offer_id, (first, second, third) = _offer(uow_factory, now, [10, 10, 4])
    _hold(uow_factory, offer_id, [Line(first, 2), Line(second, 3), Line(third, 1)], made_at=made_at)
    _hold(uow_factory, offer_id, [Line(first, 1), Line(third, 2)], made_at=made_at)
    assert _remaining(uow_factory, [first, second, third]) == [7, 7, 1]
    with uow_factory() as uow:
        uow.session.execute(update(OfferItem).where(OfferItem.id == third).values(remaining=4))
        uow.commit()

    # When the sweep runs, then again
    first_tick = maintenance.release_expired_holds(uow_factory, now=now)
    second_tick = maintenance.release_expired_holds(uow_factory, now=now)

    # Then each item got its units back once, capped at its total, and the repeated tick found nothing
    assert _remaining(uow_factory, [first, second, third]) == [10, 10, 4]
    assert first_tick.count >= 2
    assert second_tick.count == 0


def test_many_lapsed_holds_are_released_in_several_batches_with_their_sessions(
    uow_factory: UowFactory,
) -> None:
    # Given 11 lapsed holds on two offers, four of them with a Checkout Session (two open, one processing,
    # one already expired by Stripe)
    now = datetime.now(UTC)
    made_at = now - timedelta(minutes=20)
    offers = [_offer(uow_factory, now, [20]) for _ in range(2)]
    holds = [
        _hold(uow_factory, offer_id, [Line(item, 1)], made_at=made_at)
        for index in range(11)
        for offer_id, (item,) in [offers[index % 2]]
    ]
    sessions: dict[str, str] = {}
    with uow_factory() as uow:
        for reservation_id, status in zip(holds, ("open", "open", "processing", "expired"), strict=False):
            session_id = f"cs_test_{uuid.uuid4().hex}"
            sessions[session_id] = status
            uow.session.add(
                Payment(
                    reservation_id=reservation_id,
                    stripe_checkout_session_id=session_id,
                    status=status,
                    amount_minor=250,
                    currency="SGD",
                )
            )
        uow.commit()

    # When the sweep runs with batches of 3
    result = maintenance.release_expired_holds(uow_factory, now=now, batch=3)

    # Then every hold is released, every unit is back, and exactly the open sessions are to be expired
    assert all(_status(uow_factory, hold) == "expired" for hold in holds)
    assert _remaining(uow_factory, [item for _, (item,) in offers]) == [20, 20]
    expiring = {job.args[0] for job in result.jobs if job.task == EXPIRE_CHECKOUT}
    assert expiring >= {sid for sid, status in sessions.items() if status in ("open", "processing")}
    assert not expiring & {sid for sid, status in sessions.items() if status == "expired"}


def test_the_sweep_and_buyers_of_the_same_items_never_deadlock(uow_factory: UowFactory) -> None:
    # Given offers of several items, each with lapsed holds over all its items
    now = datetime.now(UTC)
    made_at = now - timedelta(minutes=20)
    offers = [_offer(uow_factory, now, [40, 40, 40]) for _ in range(3)]
    for offer_id, items in offers:
        for _ in range(8):
            _hold(uow_factory, offer_id, [Line(item, 1) for item in items], made_at=made_at)
    errors: list[BaseException] = []

    # When sweeps in small batches and buyers taking several items of the same offers run at once
    def sweep() -> None:
        try:
            for _ in range(3):
                maintenance.release_expired_holds(uow_factory, now=now, batch=2)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def buy(seed_value: int) -> None:
        rng = random.Random(seed_value)
        try:
            for _ in range(10):
                offer_id, items = rng.choice(offers)
                lines = [Line(item, 1) for item in rng.sample(items, k=rng.randint(2, 3))]
                with contextlib.suppress(SoldOut):
                    _hold(uow_factory, offer_id, lines, made_at=now)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    threads += [threading.Thread(target=buy, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then nobody failed (PostgreSQL aborts one side of a deadlock), and no unit was lost or made up
    assert errors == []
    maintenance.release_expired_holds(uow_factory, now=now + timedelta(hours=1))
    for _, items in offers:
        assert _remaining(uow_factory, items) == [40, 40, 40]
