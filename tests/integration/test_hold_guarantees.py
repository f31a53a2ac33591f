"""A hold in one statement: all lines or none without a rollback, refusals after the key, lapsed holds
reclaimed without waiting on anyone, and no deadlock with other buyers and the release sweep."""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.pool import NullPool

from core.reservations import Line, OfferNotOnSale, SoldOut, hold_expiry
from db.models import OfferItem, Reservation, ReservationItem
from db.offer_repositories import NewItem
from db.reservation_repositories import Hold
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from tasks import maintenance
from tests.integration import seed

UowFactory = Callable[[], SqlAlchemyUnitOfWork]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=20, max_overflow=20)
    yield engine
    engine.dispose()


@pytest.fixture
def uow_factory(engine: Engine) -> UowFactory:
    factory = make_session_factory(engine)
    return lambda: SqlAlchemyUnitOfWork(factory)


def _now() -> datetime:
    return datetime.now(UTC)


def _offer(
    uow_factory: UowFactory, items: list[NewItem], buyers: int = 4
) -> tuple[int, list[int], list[int]]:
    """Commit a published offer and some buyers; return (offer id, item ids, buyer row ids)."""
    now = _now()
    with uow_factory() as uow:
        owner = seed.user(uow, now)
        business = seed.verified_business(uow, owner, now)
        offer = seed.offer(uow, business, now, items=items)
        ids = [item.id for item in offer.items]
        people = [seed.user(uow, now).id for _ in range(buyers)]
        uow.commit()
        return offer.id, ids, people


def _hold_in(
    uow: SqlAlchemyUnitOfWork,
    user_id: int,
    offer_id: int,
    lines: list[Line],
    *,
    key: str | None = None,
    now: datetime | None = None,
) -> Hold:
    now = now or _now()
    return uow.reservations.hold(
        user_id=user_id,
        offer_id=offer_id,
        lines=lines,
        idempotency_key=key or uuid.uuid4().hex,
        expires_at=hold_expiry(now),
        now=now,
    )


def _hold(
    uow_factory: UowFactory,
    user_id: int,
    offer_id: int,
    lines: list[Line],
    *,
    key: str | None = None,
    now: datetime | None = None,
) -> Hold:
    with uow_factory() as uow:
        hold = _hold_in(uow, user_id, offer_id, lines, key=key, now=now)
        uow.commit()
        return hold


def _remaining(uow_factory: UowFactory, *item_ids: int) -> tuple[int, ...]:
    with uow_factory() as uow:
        rows = dict(
            uow.session.execute(
                select(OfferItem.id, OfferItem.remaining).where(OfferItem.id.in_(item_ids))
            ).all()
        )
        return tuple(rows[i] for i in item_ids)


def test_a_line_that_does_not_fit_takes_nothing_and_the_transaction_carries_on(
    uow_factory: UowFactory,
) -> None:
    # Given 5 loaves and 1 croissant
    offer_id, (loaf, croissant), (buyer, *_) = _offer(
        uow_factory, [NewItem("Loaf", 5, 600, 250), NewItem("Croissant", 1, 300, 120)]
    )
    with uow_factory() as uow:
        # When a buyer asks for 2 of each, in the same transaction as other work (no savepoint, no rollback)
        with pytest.raises(SoldOut) as refused:
            _hold_in(uow, buyer, offer_id, [Line(loaf, 2), Line(croissant, 2)])
        # Then the croissant is named, and neither line took anything
        assert refused.value.params["offer_item_id"] == croissant
        left = dict(
            uow.session.execute(
                select(OfferItem.id, OfferItem.remaining).where(OfferItem.offer_id == offer_id)
            ).all()
        )
        assert (left[loaf], left[croissant]) == (5, 1)
        # And the same transaction can still hold what fits, and commit it
        hold = _hold_in(uow, buyer, offer_id, [Line(loaf, 2), Line(croissant, 1)])
        uow.commit()
    assert hold.created and hold.total_minor == 2 * 250 + 120 and hold.currency == "SGD"
    assert _remaining(uow_factory, loaf, croissant) == (3, 0)


def test_the_hold_reads_back_as_the_reservation_it_made(uow_factory: UowFactory) -> None:
    offer_id, (loaf, croissant), (buyer, *_) = _offer(
        uow_factory, [NewItem("Loaf", 5, 600, 250), NewItem("Croissant", 3, 300, 120)]
    )
    now = _now()
    # Lines in any order, and the same item twice, are one row per item
    hold = _hold(
        uow_factory, buyer, offer_id, [Line(croissant, 1), Line(loaf, 1), Line(croissant, 1)], now=now
    )
    with uow_factory() as uow:
        reservation = uow.session.get(Reservation, hold.reservation_id)
        assert reservation is not None
        assert isinstance(hold.reservation_id, uuid.UUID)
        assert (reservation.user_id, reservation.offer_id, reservation.status) == (buyer, offer_id, "held")
        assert (
            (reservation.total_minor, reservation.currency)
            == (hold.total_minor, hold.currency)
            == (490, "SGD")
        )
        assert reservation.expires_at == hold.expires_at == hold_expiry(now)
        assert [(i.offer_item_id, i.quantity, i.unit_price_minor) for i in reservation.items] == [
            (loaf, 1, 250),
            (croissant, 2, 120),
        ]
    assert _remaining(uow_factory, loaf, croissant) == (4, 1)


def test_a_repeated_request_finds_its_hold_after_the_last_unit_went(uow_factory: UowFactory) -> None:
    offer_id, (loaf,), (buyer, *_) = _offer(uow_factory, [NewItem("Loaf", 2, 600, 250)])
    first = _hold(uow_factory, buyer, offer_id, [Line(loaf, 2)], key="buy:last-units")

    again = _hold(uow_factory, buyer, offer_id, [Line(loaf, 2)], key="buy:last-units")

    assert (again.reservation_id, again.total_minor, again.created) == (first.reservation_id, 500, False)
    assert again.expires_at == first.expires_at
    assert _remaining(uow_factory, loaf) == (0,)


def test_a_repeated_request_finds_its_hold_after_the_offer_was_paused(uow_factory: UowFactory) -> None:
    offer_id, (loaf,), (buyer, *_) = _offer(uow_factory, [NewItem("Loaf", 5, 600, 250)])
    first = _hold(uow_factory, buyer, offer_id, [Line(loaf, 1)], key="buy:then-paused")
    with uow_factory() as uow:
        offer = uow.offers.get_for_update(offer_id)
        assert offer is not None
        uow.offers.set_status(offer, "paused", now=_now())
        uow.commit()

    again = _hold(uow_factory, buyer, offer_id, [Line(loaf, 1)], key="buy:then-paused")

    assert (again.reservation_id, again.created) == (first.reservation_id, False)
    assert _remaining(uow_factory, loaf) == (4,)


@pytest.mark.parametrize("case", ["cancelled", "ended", "missing"])
def test_cancelled_ended_and_missing_offers_cannot_be_held(uow_factory: UowFactory, case: str) -> None:
    offer_id, (loaf,), (buyer, *_) = _offer(uow_factory, [NewItem("Loaf", 5, 600, 250)])
    now = _now()
    if case == "cancelled":
        with uow_factory() as uow:
            offer = uow.offers.get_for_update(offer_id)
            assert offer is not None
            uow.offers.set_status(offer, "cancelled", now=now)
            uow.commit()
    elif case == "ended":
        now += timedelta(hours=4)  # the pickup window (3 hours) is over
    with pytest.raises(OfferNotOnSale):
        _hold(
            uow_factory, buyer, offer_id if case != "missing" else offer_id + 10**6, [Line(loaf, 1)], now=now
        )
    assert _remaining(uow_factory, loaf) == (5,)
    with uow_factory() as uow:
        assert uow.session.scalar(select(Reservation.id).where(Reservation.offer_id == offer_id)) is None


def test_an_item_of_another_offer_is_refused_and_nothing_is_taken(uow_factory: UowFactory) -> None:
    offer_id, (loaf,), (buyer, *_) = _offer(uow_factory, [NewItem("Loaf", 5, 600, 250)])
    _, (elsewhere,), _ = _offer(uow_factory, [NewItem("Bagel", 5, 400, 150)])

    with pytest.raises(SoldOut) as refused:
        _hold(uow_factory, buyer, offer_id, [Line(loaf, 1), Line(elsewhere, 1)])

    assert refused.value.params["offer_item_id"] == elsewhere
    assert _remaining(uow_factory, loaf, elsewhere) == (5, 5)


def test_two_workers_running_the_same_buy_at_once_make_one_hold(uow_factory: UowFactory) -> None:
    offer_id, (loaf,), (buyer, *_) = _offer(uow_factory, [NewItem("Loaf", 5, 600, 250)])
    start = threading.Barrier(6)
    holds: list[Hold] = []
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            holds.append(_hold(uow_factory, buyer, offer_id, [Line(loaf, 2)], key="buy:redelivered"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sorted(h.created for h in holds) == [False] * 5 + [True]
    assert len({h.reservation_id for h in holds}) == 1
    assert _remaining(uow_factory, loaf) == (3,)


def test_stock_left_only_in_a_lapsed_hold_is_reclaimed_with_all_of_its_items(uow_factory: UowFactory) -> None:
    # Given every unit in one hold that lapsed 5 minutes ago, not swept yet
    offer_id, (loaf, croissant), (first, second, *_) = _offer(
        uow_factory, [NewItem("Loaf", 2, 600, 250), NewItem("Croissant", 1, 300, 120)]
    )
    lapsed = _hold(
        uow_factory, first, offer_id, [Line(loaf, 2), Line(croissant, 1)], now=_now() - timedelta(minutes=20)
    )

    # When another buyer asks for the croissant
    hold = _hold(uow_factory, second, offer_id, [Line(croissant, 1)])

    # Then they get it, and the lapsed hold gave back its loaves too
    assert hold.created and hold.total_minor == 120
    assert _remaining(uow_factory, loaf, croissant) == (2, 0)
    with uow_factory() as uow:
        assert (
            uow.session.scalar(select(Reservation.status).where(Reservation.id == lapsed.reservation_id))
            == "expired"
        )


def test_a_short_hold_does_not_wait_for_a_lapsed_hold_someone_else_is_releasing(
    uow_factory: UowFactory, engine: Engine
) -> None:
    # Given the only unit in a lapsed hold, whose row another transaction (say, the sweep) has locked
    offer_id, (loaf,), (first, second, *_) = _offer(uow_factory, [NewItem("Loaf", 1, 600, 250)])
    lapsed = _hold(uow_factory, first, offer_id, [Line(loaf, 1)], now=_now() - timedelta(minutes=20))
    with engine.connect() as sweep:
        sweep.execute(
            select(Reservation.id).where(Reservation.id == lapsed.reservation_id).with_for_update()
        ).one()

        # When a buyer asks for it: told sold out at once, not after the other transaction (a wait here, with
        # our item row locked, could deadlock with a sweep that goes on to lock that item)
        started = time.monotonic()
        with uow_factory() as uow:
            uow.session.execute(text("SET LOCAL lock_timeout = '5s'"))
            with pytest.raises(SoldOut):
                _hold_in(uow, second, offer_id, [Line(loaf, 1)])
        assert time.monotonic() - started < 4
        sweep.rollback()

    # Then once that transaction is gone, the next buyer reclaims the lapsed hold
    assert _hold(uow_factory, second, offer_id, [Line(loaf, 1)]).created
    assert _remaining(uow_factory, loaf) == (0,)


def test_a_unit_given_back_while_a_buyer_waits_for_its_row_is_theirs(
    uow_factory: UowFactory, engine: Engine
) -> None:
    # Given the only loaf held, and its holder releasing it in a transaction that has not committed yet
    offer_id, (loaf,), (first, second, *_) = _offer(uow_factory, [NewItem("Loaf", 1, 600, 250)])
    held = _hold(uow_factory, first, offer_id, [Line(loaf, 1)])
    outcome: list[object] = []
    with uow_factory() as releasing:
        assert releasing.payments.release(held.reservation_id, status="released", now=_now())

        # When another buyer's hold starts now (its snapshot still shows 0 left) and waits for the loaf's row
        def buy() -> None:
            try:
                outcome.append(_hold(uow_factory, second, offer_id, [Line(loaf, 1)]))
            except BaseException as exc:
                outcome.append(exc)

        buyer = threading.Thread(target=buy)
        buyer.start()
        deadline = time.monotonic() + 10
        with engine.connect() as probe:
            while not probe.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ):
                assert time.monotonic() < deadline, f"the second hold never waited for the row: {outcome}"
                time.sleep(0.02)
        releasing.commit()
    buyer.join(30)

    # Then it gets the loaf (not a CHECK violation computed from its older snapshot, nor "sold out")
    assert len(outcome) == 1 and isinstance(outcome[0], Hold) and outcome[0].created, outcome
    assert _remaining(uow_factory, loaf) == (0,)


def test_holds_lapsed_reclaims_and_sweeps_at_once_neither_deadlock_nor_oversell(
    uow_factory: UowFactory,
) -> None:
    # Given three items of 40 units, many of them in holds that have lapsed (not swept yet)
    offer_id, items, buyers = _offer(
        uow_factory, [NewItem(name, 40, 600, 250) for name in ("Loaf", "Croissant", "Bagel")], buyers=12
    )
    rng = random.Random(8)

    def some_lines() -> list[Line]:
        return [Line(item, rng.randint(1, 2)) for item in rng.sample(items, rng.randint(1, 3))]

    with uow_factory() as uow:
        for _ in range(20):
            with contextlib.suppress(SoldOut):
                _hold_in(uow, rng.choice(buyers), offer_id, some_lines(), now=_now() - timedelta(minutes=20))
        uow.commit()

    # When twelve buyers hold multi-line orders while two sweeps run
    errors: list[BaseException] = []
    done = threading.Event()

    def buyer(user_id: int, seed_: int) -> None:
        local = random.Random(seed_)
        try:
            for _ in range(15):
                lines = [Line(item, local.randint(1, 2)) for item in local.sample(items, local.randint(1, 3))]
                with contextlib.suppress(SoldOut):
                    _hold(uow_factory, user_id, offer_id, lines)
        except BaseException as exc:
            errors.append(exc)

    def sweeper() -> None:
        try:
            while not done.is_set():
                maintenance.release_expired_holds(uow_factory, now=_now(), batch=3)
        except BaseException as exc:
            errors.append(exc)

    sweeps = [threading.Thread(target=sweeper) for _ in range(2)]
    people = [threading.Thread(target=buyer, args=(b, i)) for i, b in enumerate(buyers)]
    for thread in sweeps + people:
        thread.start()
    for thread in people:
        thread.join(120)
    done.set()
    for thread in sweeps:
        thread.join(30)

    # Then nothing failed, and each item's units are on the shelf or in exactly one running hold
    assert errors == [], errors  # a deadlock, a CHECK violation: anything but SoldOut
    with uow_factory() as uow:
        for item in items:
            total, remaining = uow.session.execute(
                select(OfferItem.quantity_total, OfferItem.remaining).where(OfferItem.id == item)
            ).one()
            held = (
                uow.session.scalar(
                    select(func.coalesce(func.sum(ReservationItem.quantity), 0))
                    .join(Reservation, Reservation.id == ReservationItem.reservation_id)
                    .where(ReservationItem.offer_item_id == item, Reservation.status == "held")
                )
                or 0
            )
            assert remaining + held == total, (item, remaining, held)


def test_a_hold_on_a_new_server_connection_prepares_its_statement_again(database_url: str) -> None:
    # One pooled connection, so every unit of work below runs on it (or on its replacement)
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    admin = make_engine(database_url, poolclass=NullPool)
    factory = make_session_factory(engine)
    try:
        uow_factory: UowFactory = lambda: SqlAlchemyUnitOfWork(factory)  # noqa: E731
        offer_id, (loaf,), (buyer, *_) = _offer(uow_factory, [NewItem("Loaf", 5, 600, 250)])
        _hold(uow_factory, buyer, offer_id, [Line(loaf, 1)])
        # The server ends that connection's session (a restart, a failover): its prepared statement is gone
        with uow_factory() as uow:
            pid = uow.session.scalar(text("SELECT pg_backend_pid()"))
        with admin.connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        assert _hold(uow_factory, buyer, offer_id, [Line(loaf, 1)]).created
        assert _remaining(uow_factory, loaf) == (3,)
    finally:
        admin.dispose()
        engine.dispose()
