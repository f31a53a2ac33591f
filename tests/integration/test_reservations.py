"""Holding units: never oversold under concurrency, all-or-nothing, lapsed holds free, retries idempotent."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.reservations import Line, OfferNotOnSale, SoldOut, hold_expiry
from db.models import OfferItem, Reservation
from db.offer_repositories import NewItem
from db.uow import SqlAlchemyUnitOfWork
from tests.integration import seed

UowFactory = Callable[[], SqlAlchemyUnitOfWork]


def _now() -> datetime:
    return datetime.now(UTC)


def _published_offer(uow_factory: UowFactory, items: list[NewItem]) -> tuple[int, list[int], list[int]]:
    """Commit an offer and buyers; return (offer id, item ids, buyer row ids)."""
    now = _now()
    with uow_factory() as uow:
        owner = seed.user(uow, now)
        business = seed.verified_business(uow, owner, now)
        offer = seed.offer(uow, business, now, items=items)
        buyers = [seed.user(uow, now).id for _ in range(40)]
        ids = [i.id for i in offer.items]
        uow.commit()
        return offer.id, ids, buyers


def _hold(
    uow_factory: UowFactory,
    user_id: int,
    offer_id: int,
    lines: list[Line],
    key: str | None = None,
    now: datetime | None = None,
    minutes: int = 15,
) -> object:
    now = now or _now()
    with uow_factory() as uow:
        hold = uow.reservations.hold(
            user_id=user_id,
            offer_id=offer_id,
            lines=lines,
            idempotency_key=key or uuid.uuid4().hex,
            expires_at=hold_expiry(now, minutes),
            now=now,
        )
        uow.commit()
        return hold


def _remaining(uow_factory: UowFactory, item_id: int) -> int:
    with uow_factory() as uow:
        return int(uow.session.scalar(select(OfferItem.remaining).where(OfferItem.id == item_id)))


def test_forty_buyers_racing_for_ten_units_get_exactly_ten(uow_factory: UowFactory) -> None:
    offer_id, (item_id,), buyers = _published_offer(uow_factory, [NewItem("Loaf", 10, 600, 250)])
    start = threading.Barrier(len(buyers))
    outcomes: list[str] = []
    lock = threading.Lock()

    def buy(user_id: int) -> None:
        start.wait()
        try:
            _hold(uow_factory, user_id, offer_id, [Line(item_id, 1)])
            result = "held"
        except SoldOut:
            result = "sold_out"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=buy, args=(b,)) for b in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(outcomes).count("held") == 10 and outcomes.count("sold_out") == 30
    assert _remaining(uow_factory, item_id) == 0
    with uow_factory() as uow:
        held = uow.session.scalars(select(Reservation).where(Reservation.offer_id == offer_id)).all()
        assert sum(i.quantity for r in held for i in r.items) == 10


def test_an_order_of_several_items_is_all_or_nothing(uow_factory: UowFactory) -> None:
    offer_id, (loaf, croissant), buyers = _published_offer(
        uow_factory, [NewItem("Loaf", 5, 600, 250), NewItem("Croissant", 1, 300, 120)]
    )
    with pytest.raises(SoldOut):
        _hold(uow_factory, buyers[0], offer_id, [Line(loaf, 2), Line(croissant, 2)])
    assert (_remaining(uow_factory, loaf), _remaining(uow_factory, croissant)) == (5, 1)


def test_a_lapsed_hold_does_not_block_the_next_buyer_before_any_sweep(uow_factory: UowFactory) -> None:
    offer_id, (item_id,), buyers = _published_offer(uow_factory, [NewItem("Loaf", 2, 600, 250)])
    earlier = _now() - timedelta(minutes=20)
    _hold(uow_factory, buyers[0], offer_id, [Line(item_id, 2)], now=earlier)  # lapsed 5 minutes ago

    hold = _hold(uow_factory, buyers[1], offer_id, [Line(item_id, 2)])

    assert hold.total_minor == 500  # type: ignore[attr-defined]
    assert _remaining(uow_factory, item_id) == 0
    with uow_factory() as uow:
        statuses = sorted(
            uow.session.scalars(select(Reservation.status).where(Reservation.offer_id == offer_id))
        )
        assert statuses == ["expired", "held"]


def test_a_double_tap_or_redelivered_task_makes_one_hold(uow_factory: UowFactory) -> None:
    offer_id, (item_id,), buyers = _published_offer(uow_factory, [NewItem("Loaf", 5, 600, 250)])
    first = _hold(uow_factory, buyers[0], offer_id, [Line(item_id, 2)], key="buy:update-77")
    again = _hold(uow_factory, buyers[0], offer_id, [Line(item_id, 2)], key="buy:update-77")

    assert first.reservation_id == again.reservation_id  # type: ignore[attr-defined]
    assert (first.created, again.created) == (True, False)  # type: ignore[attr-defined]
    assert _remaining(uow_factory, item_id) == 3


def test_a_paused_offer_cannot_be_held(uow_factory: UowFactory) -> None:
    offer_id, (item_id,), buyers = _published_offer(uow_factory, [NewItem("Loaf", 5, 600, 250)])
    with uow_factory() as uow:
        offer = uow.offers.get_for_update(offer_id)
        assert offer is not None
        uow.offers.set_status(offer, "paused", now=_now())
        uow.commit()
    with pytest.raises(OfferNotOnSale):
        _hold(uow_factory, buyers[0], offer_id, [Line(item_id, 1)])
    assert _remaining(uow_factory, item_id) == 5
