"""The owner's offer list: available, held and sold units, with expired holds counted as available."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from db.models import Reservation, ReservationItem
from db.offer_repositories import NewItem
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from tests.integration import seed

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def uow(database_url: str) -> Iterator[SqlAlchemyUnitOfWork]:
    engine = make_engine(database_url)
    with SqlAlchemyUnitOfWork(make_session_factory(engine)) as unit:
        yield unit  # never committed: the test leaves nothing behind
    engine.dispose()


def _hold(
    uow: SqlAlchemyUnitOfWork,
    user_id: int,
    offer_id: int,
    item_id: int,
    qty: int,
    expires: datetime,
    status: str = "held",
) -> None:
    reservation = Reservation(
        id=uuid.uuid4(),
        user_id=user_id,
        offer_id=offer_id,
        status=status,
        expires_at=expires,
        total_minor=100 * qty,
        currency="SGD",
        idempotency_key=uuid.uuid4().hex,
        created_at=NOW,
        updated_at=NOW,
    )
    reservation.items.append(ReservationItem(offer_item_id=item_id, quantity=qty, unit_price_minor=100))
    uow.session.add(reservation)
    uow.session.flush()


def test_counts_split_units_into_available_held_and_sold(uow: SqlAlchemyUnitOfWork) -> None:
    owner = seed.user(uow, NOW, "O")
    business = seed.verified_business(uow, owner, NOW)
    offer = seed.offer(
        uow, business, NOW, items=[NewItem("Sourdough", 5, 600, 250), NewItem("Croissant", 3, 300, 120)]
    )
    loaf, croissant = offer.items
    # Given: 2 loaves held now, 1 croissant held by a hold that has lapsed, 1 loaf paid for
    loaf.remaining -= 3
    croissant.remaining -= 1
    _hold(uow, owner.id, offer.id, loaf.id, 2, NOW + timedelta(minutes=10))
    _hold(uow, owner.id, offer.id, croissant.id, 1, NOW - timedelta(minutes=1))
    _hold(uow, owner.id, offer.id, loaf.id, 1, NOW - timedelta(minutes=30), status="paid")
    uow.session.flush()

    (counts,) = uow.offers.counts_for_business(business.id, now=NOW)

    assert (counts.total, counts.available, counts.held, counts.sold) == (8, 5, 2, 1)
    assert counts.status == "published" and counts.title == "Bread bag"
