"""The schema itself refuses impossible data, whatever bug or race produced it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Business, Offer, OfferItem, Payment, Reservation, ReservationItem, User, Venue
from tests.integration.db.builders import add_bakery_offer, random_telegram_id


@contextmanager
def refused_by(session: Session, constraint: str) -> Iterator[None]:
    """Assert the block's writes violate `constraint`; the savepoint keeps the session usable."""
    with pytest.raises(IntegrityError) as caught, session.begin_nested():
        yield
        session.flush()
    assert caught.value.orig.diag.constraint_name == constraint  # type: ignore[union-attr]


def test_remaining_cannot_go_negative(session: Session, now: datetime) -> None:
    # Given the last loaf of sourdough
    catalog = add_bakery_offer(session, now=now, quantity=1)
    # When a careless decrement takes two
    with refused_by(session, "ck_offer_items_remaining_non_negative"):
        session.execute(
            update(OfferItem).where(OfferItem.id == catalog.item.id).values(remaining=OfferItem.remaining - 2)
        )
    # Then the CHECK fires; the conditional decrement the reserve path uses simply matches nothing
    taken = session.execute(
        update(OfferItem)
        .where(OfferItem.id == catalog.item.id, OfferItem.remaining >= 2)
        .values(remaining=OfferItem.remaining - 2)
        .returning(OfferItem.remaining)
    ).all()
    assert taken == []


def test_remaining_cannot_exceed_quantity_offered(session: Session, now: datetime) -> None:
    # Given five loaves offered
    catalog = add_bakery_offer(session, now=now, quantity=5)
    # When a double release puts back more than were ever offered
    with refused_by(session, "ck_offer_items_remaining_within_total"):
        catalog.item.remaining = 6


@pytest.mark.parametrize(
    ("normal_price_minor", "offer_price_minor"),
    [(600, 600), (600, 700), (600, 0)],
    ids=["same-as-normal", "dearer-than-normal", "free"],
)
def test_offer_price_must_be_below_normal_price(
    session: Session, now: datetime, normal_price_minor: int, offer_price_minor: int
) -> None:
    # Given a bakery, when it offers a loaf at no discount (or for nothing), then the schema refuses it
    catalog = add_bakery_offer(session, now=now)
    with refused_by(session, "ck_offer_items_offer_price_discounted"):
        catalog.item.normal_price_minor = normal_price_minor
        catalog.item.offer_price_minor = offer_price_minor


def test_pickup_window_must_end_after_it_starts(session: Session, now: datetime) -> None:
    catalog = add_bakery_offer(session, now=now)
    with refused_by(session, "ck_offers_pickup_window"):
        catalog.offer.pickup_end = catalog.offer.pickup_start


def test_unknown_offer_status_is_refused(session: Session, now: datetime) -> None:
    catalog = add_bakery_offer(session, now=now)
    with refused_by(session, "ck_offers_status"):
        catalog.offer.status = "archived"


def test_currency_must_be_an_iso_code(session: Session, now: datetime) -> None:
    catalog = add_bakery_offer(session, now=now)
    with refused_by(session, "ck_businesses_currency"):
        catalog.business.currency = "eur"


def test_offer_venue_must_belong_to_the_offering_business(session: Session, now: datetime) -> None:
    # Given two bakeries
    rosa = add_bakery_offer(session, now=now)
    other = add_bakery_offer(session, now=now)
    # When Rosa's offer is pointed at the other bakery's venue (e.g. forged callback data)
    with refused_by(session, "fk_offers_venue_id_venues"):
        rosa.offer.venue_id = other.venue.id


def test_reservation_item_quantity_must_be_positive(session: Session, now: datetime) -> None:
    # Given a customer holding loaves
    catalog = add_bakery_offer(session, now=now)
    customer = User(telegram_user_id=random_telegram_id(), role="customer")
    session.add(customer)
    session.flush()
    reservation = Reservation(
        user_id=customer.id,
        offer_id=catalog.offer.id,
        expires_at=now + timedelta(minutes=15),
        total_minor=0,
        currency="EUR",
        idempotency_key=f"reserve:{uuid.uuid4()}",
    )
    session.add(reservation)
    session.flush()
    # When a line with zero units is written, then it is refused
    with refused_by(session, "ck_reservation_items_quantity_positive"):
        session.add(
            ReservationItem(
                reservation_id=reservation.id, offer_item_id=catalog.item.id, quantity=0, unit_price_minor=250
            )
        )


def test_reservation_idempotency_key_is_unique(session: Session, now: datetime) -> None:
    # Given a hold made for a Buy tap
    catalog = add_bakery_offer(session, now=now)
    key = f"reserve:{uuid.uuid4()}"

    def hold() -> Reservation:
        return Reservation(
            user_id=catalog.owner.id,
            offer_id=catalog.offer.id,
            expires_at=now + timedelta(minutes=15),
            total_minor=250,
            currency="EUR",
            idempotency_key=key,
        )

    session.add(hold())
    session.flush()
    # When the same tap is processed again, then a second hold cannot exist
    with refused_by(session, "uq_reservations_idempotency_key"):
        session.add(hold())


def test_refund_cannot_exceed_amount_paid(session: Session, now: datetime) -> None:
    catalog = add_bakery_offer(session, now=now)
    reservation = Reservation(
        user_id=catalog.owner.id,
        offer_id=catalog.offer.id,
        expires_at=now + timedelta(minutes=15),
        total_minor=250,
        currency="EUR",
        idempotency_key=f"reserve:{uuid.uuid4()}",
    )
    session.add(reservation)
    session.flush()
    payment = Payment(
        reservation_id=reservation.id,
        stripe_checkout_session_id=f"cs_test_{uuid.uuid4().hex}",
        amount_minor=250,
        currency="EUR",
        status="paid",
    )
    session.add(payment)
    session.flush()
    with refused_by(session, "ck_payments_refund_within_amount"):
        payment.refunded_minor = 251


def test_venue_coordinates_come_in_pairs_and_in_range(session: Session, now: datetime) -> None:
    catalog = add_bakery_offer(session, now=now)
    with refused_by(session, "ck_venues_coordinates"):
        catalog.venue.longitude = None
    with refused_by(session, "ck_venues_coordinates"):
        catalog.venue.latitude = 91.0


def test_new_rows_get_their_documented_defaults(session: Session, now: datetime) -> None:
    # Given a business and an offer created with only the required fields
    catalog = add_bakery_offer(session, now=now)
    business = Business(owner_user_id=catalog.owner.id, name="Corner Café", category="cafe", currency="JPY")
    session.add(business)
    session.flush()
    venue = Venue(business_id=business.id, name="Corner Café", timezone="Asia/Tokyo")
    session.add(venue)
    session.flush()
    offer = Offer(
        business_id=business.id,
        venue_id=venue.id,
        title="Onigiri",
        pickup_start=now,
        pickup_end=now + timedelta(hours=1),
        currency="JPY",
    )
    session.add(offer)
    session.flush()
    # Then they start pending / as a draft with no dietary tags
    row = session.execute(
        text(
            "SELECT b.status, o.status, o.dietary_tags"
            " FROM businesses b JOIN offers o ON o.business_id = b.id WHERE o.id = :id"
        ),
        {"id": offer.id},
    ).one()
    assert tuple(row) == ("pending", "draft", [])
