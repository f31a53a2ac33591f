"""The owner's counter: redeeming pickup codes, today's pickup list and sales figures, on real PostgreSQL."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from core.commands import Actor, SendText
from core.conversation import UserView
from core.messages import Reply
from core.pickup import deep_link_payload, display_code, generate_pickup_code
from db.models import (
    AuditLogEntry,
    Business,
    Offer,
    Order,
    Reservation,
    ReservationItem,
    User,
    Venue,
)
from db.offer_repositories import NewItem
from db.order_repositories import OrderRepository
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from tasks import pickup_flows
from tasks.business_flows import Context
from tests.integration import seed

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 18:00 in Singapore
_rng = random.Random()


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def uow(factory: sessionmaker[Session]) -> Iterator[SqlAlchemyUnitOfWork]:
    with SqlAlchemyUnitOfWork(factory) as unit:
        yield unit  # never committed: the test leaves nothing behind


def _user(uow: SqlAlchemyUnitOfWork, first_name: str, username: str | None = None) -> User:
    return seed.user(uow, NOW, first_name, username)


def _shop(
    uow: SqlAlchemyUnitOfWork, name: str = "Sunrise Bakery", *, start: datetime = NOW
) -> tuple[User, Business, Offer]:
    owner = _user(uow, "Olivia")
    business = seed.verified_business(uow, owner, NOW, name)
    offer = _offer(uow, business, "Bread bag", start)
    return owner, business, offer


def _offer(
    uow: SqlAlchemyUnitOfWork, business: Business, title: str, start: datetime, published: datetime = NOW
) -> Offer:
    return seed.offer(
        uow,
        business,
        published,
        title=title,
        start=start,
        items=[NewItem("Sourdough", 10, 600, 250), NewItem("Croissant", 10, 300, 120)],
    )


def _order(
    uow: SqlAlchemyUnitOfWork,
    buyer: User,
    offer: Offer,
    *,
    loaves: int = 2,
    croissants: int = 0,
    status: str = "paid",
    created: datetime = NOW,
) -> Order:
    reservation = Reservation(
        id=uuid.uuid4(),
        user_id=buyer.id,
        offer_id=offer.id,
        status="paid",
        expires_at=created + timedelta(minutes=10),
        total_minor=250 * loaves + 120 * croissants,
        currency="SGD",
        idempotency_key=uuid.uuid4().hex,
        created_at=created,
        updated_at=created,
    )
    loaf, croissant = offer.items
    for item, qty in ((loaf, loaves), (croissant, croissants)):
        if qty:
            reservation.items.append(
                ReservationItem(offer_item_id=item.id, quantity=qty, unit_price_minor=item.offer_price_minor)
            )
    order = Order(
        id=uuid.uuid4(),
        reservation_id=reservation.id,
        user_id=buyer.id,
        offer_id=offer.id,
        status=status,
        pickup_code=generate_pickup_code(_rng),
        total_minor=reservation.total_minor,
        currency="SGD",
        redeemed_at=created if status == "redeemed" else None,
        cancelled_at=created if status == "cancelled" else None,
        created_at=created,
        updated_at=created,
    )
    uow.session.add(reservation)
    uow.session.flush()
    uow.session.add(order)
    uow.session.flush()
    return order


def _ctx(user: User, now: datetime = NOW) -> Context:
    view = UserView(
        telegram_user_id=user.telegram_user_id,
        chat_id=user.chat_id or user.telegram_user_id,
        language="en",
        first_name=user.first_name,
    )
    command = SendText(
        update_id=_rng.randint(1, 10**9),
        actor=Actor(telegram_user_id=view.telegram_user_id, chat_id=view.chat_id),
        received_at=now,
        correlation_id=uuid.uuid4().hex,
        text="",
    )
    return Context(command=command, user=view, row_id=user.id, admins=frozenset(), now=now)


def _texts(replies: tuple[Reply, ...]) -> str:
    return "\n".join(r.text for r in replies)


def _audit_actions(uow: SqlAlchemyUnitOfWork, order: Order) -> list[str]:
    stmt = select(AuditLogEntry.action).where(AuditLogEntry.subject_id == str(order.id))
    return list(uow.session.scalars(stmt))


# -- redeeming --------------------------------------------------------------------------------------------


def test_owner_redeems_a_valid_code_and_the_buyer_is_told(uow: SqlAlchemyUnitOfWork) -> None:
    # Given: Ben paid for 2 sourdough loaves and 1 croissant from Sunrise Bakery's bread bag
    owner, _, offer = _shop(uow)
    ben = _user(uow, "Ben")
    order = _order(uow, ben, offer, loaves=2, croissants=1)

    # When: the owner types Ben's code
    later = NOW + timedelta(minutes=30)
    replies = pickup_flows.redeem(_ctx(owner, later), uow, order.pickup_code)

    # Then: the order is redeemed, the owner sees what to hand over, Ben is told, and it is audited
    to_owner, to_buyer = replies
    assert to_owner.chat_id == owner.chat_id
    assert "Ben" in to_owner.text and "2 × Sourdough, 1 × Croissant" in to_owner.text
    assert "Bread bag" in to_owner.text
    assert to_buyer.chat_id == ben.chat_id and "Enjoy" in to_buyer.text
    assert (order.status, order.redeemed_at) == ("redeemed", later)
    assert _audit_actions(uow, order) == ["order.redeemed"]


def test_typing_a_redeemed_code_again_says_when_it_was_redeemed(uow: SqlAlchemyUnitOfWork) -> None:
    # Given: a code the owner already redeemed at 18:30 Singapore time
    owner, _, offer = _shop(uow)
    order = _order(uow, _user(uow, "Ben"), offer)
    pickup_flows.redeem(_ctx(owner, NOW + timedelta(minutes=30)), uow, order.pickup_code)

    # When: it is typed again
    (reply,) = pickup_flows.redeem(_ctx(owner, NOW + timedelta(hours=1)), uow, order.pickup_code)

    # Then: "already redeemed" with the venue-local time, and nothing new happens
    assert "already redeemed" in reply.text and "18:30" in reply.text
    assert _audit_actions(uow, order) == ["order.redeemed"]


@pytest.mark.parametrize("typed", ["{lower}", "  {spaced}  ", "{dashed}", "{lower_dashed}"])
def test_codes_are_accepted_however_staff_type_them(uow: SqlAlchemyUnitOfWork, typed: str) -> None:
    owner, _, offer = _shop(uow)
    order = _order(uow, _user(uow, "Ben"), offer)
    code = order.pickup_code
    text = typed.format(
        lower=code.lower(),
        spaced=" ".join(code),
        dashed=display_code(code),
        lower_dashed=f"{code[:3].lower()} – {code[3:].lower()}",
    )

    replies = pickup_flows.redeem(_ctx(owner), uow, text)

    assert len(replies) == 2 and order.status == "redeemed"


def test_a_code_of_another_business_reads_like_an_unknown_code(uow: SqlAlchemyUnitOfWork) -> None:
    # Given: Ben's order at Harbour Deli, and Sunrise Bakery's owner
    bakery_owner, _, _ = _shop(uow, "Sunrise Bakery")
    _, _, deli_offer = _shop(uow, "Harbour Deli")
    order = _order(uow, _user(uow, "Ben"), deli_offer)
    made_up = next(c for c in iter(lambda: generate_pickup_code(_rng), None) if c != order.pickup_code)

    # When: the bakery owner types the deli's code, and a code that exists nowhere
    (foreign,) = pickup_flows.redeem(_ctx(bakery_owner), uow, order.pickup_code)
    (unknown,) = pickup_flows.redeem(_ctx(bakery_owner), uow, made_up)

    # Then: both get the same answer (only the code differs), and the deli's order is untouched
    assert foreign.text.replace(display_code(order.pickup_code), "X") == unknown.text.replace(
        display_code(made_up), "X"
    )
    assert "No order with code" in foreign.text
    assert order.status == "paid" and _audit_actions(uow, order) == []


def test_a_customer_cannot_redeem_codes(uow: SqlAlchemyUnitOfWork) -> None:
    _, _, offer = _shop(uow)
    ben = _user(uow, "Ben")
    order = _order(uow, ben, offer)

    (reply,) = pickup_flows.redeem(_ctx(ben), uow, order.pickup_code)

    assert "Only the owner of a verified business" in reply.text
    assert order.status == "paid"


def test_a_suspended_business_cannot_redeem_codes(uow: SqlAlchemyUnitOfWork) -> None:
    owner, business, offer = _shop(uow)
    order = _order(uow, _user(uow, "Ben"), offer)
    business.status, business.suspended_at = "suspended", NOW

    (reply,) = pickup_flows.redeem(_ctx(owner), uow, order.pickup_code)

    assert "Only the owner" in reply.text and order.status == "paid"


@pytest.mark.parametrize("garbage", ["hello", "ABC12", "ABCDEFG", "I0O1LL", ""])
def test_garbage_text_gets_a_format_hint(uow: SqlAlchemyUnitOfWork, garbage: str) -> None:
    owner, _, _ = _shop(uow)

    (reply,) = pickup_flows.redeem(_ctx(owner), uow, garbage)

    assert "doesn't look like a pickup code" in reply.text


def test_opening_the_customers_qr_link_redeems(uow: SqlAlchemyUnitOfWork) -> None:
    owner, _, offer = _shop(uow)
    order = _order(uow, _user(uow, "Ben"), offer)

    replies = pickup_flows.redeem(_ctx(owner), uow, deep_link_payload(order.id, order.pickup_code))

    assert len(replies) == 2 and order.status == "redeemed"


def test_a_link_whose_code_does_not_match_its_order_is_unknown(uow: SqlAlchemyUnitOfWork) -> None:
    owner, _, offer = _shop(uow)
    order = _order(uow, _user(uow, "Ben"), offer)
    other = _order(uow, _user(uow, "Cara"), offer)

    (reply,) = pickup_flows.redeem(_ctx(owner), uow, deep_link_payload(order.id, other.pickup_code))

    assert "No order with code" in reply.text
    assert (order.status, other.status) == ("paid", "paid")


@pytest.mark.parametrize("status", ["cancelled", "refunded"])
def test_cancelled_and_refunded_orders_are_not_handed_over(uow: SqlAlchemyUnitOfWork, status: str) -> None:
    owner, _, offer = _shop(uow)
    order = _order(uow, _user(uow, "Ben"), offer, status=status)

    (reply,) = pickup_flows.redeem(_ctx(owner), uow, order.pickup_code)

    assert f"was {status}" in reply.text and order.status == status


def test_two_staff_redeeming_one_code_at_once_hand_it_over_once(factory: sessionmaker[Session]) -> None:
    # Given: a committed paid order (two sessions must see it)
    with SqlAlchemyUnitOfWork(factory) as seed:
        owner, business, offer = _shop(seed)
        ben = _user(seed, "Ben")
        order = _order(seed, ben, offer)
        ids = (owner.id, ben.id, business.id, offer.id, order.id, order.reservation_id)
        owner_ctx, code = _ctx(owner), order.pickup_code
        seed.commit()
    try:
        barrier = threading.Barrier(2)
        results: list[tuple[Reply, ...]] = []
        errors: list[BaseException] = []

        def tap() -> None:
            try:
                with SqlAlchemyUnitOfWork(factory) as unit:
                    barrier.wait(timeout=10)
                    replies = pickup_flows.redeem(owner_ctx, unit, code)
                    unit.commit()
                results.append(replies)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        # When: two phones redeem the same code at the same moment
        threads = [threading.Thread(target=tap) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        # Then: exactly one redemption (two replies: owner and buyer), the other is told it's done
        assert not errors
        assert sorted(len(r) for r in results) == [1, 2]
        (second,) = next(r for r in results if len(r) == 1)
        assert "already redeemed" in second.text
        with SqlAlchemyUnitOfWork(factory) as check:
            stored = check.session.get(Order, order.id)
            assert stored is not None and stored.status == "redeemed"
            assert _audit_actions(check, stored) == ["order.redeemed"]
    finally:
        _delete_committed(factory, *ids)


def _delete_committed(
    factory: sessionmaker[Session],
    owner_id: int,
    buyer_id: int,
    business_id: int,
    offer_id: int,
    order_id: uuid.UUID,
    reservation_id: uuid.UUID,
) -> None:
    with SqlAlchemyUnitOfWork(factory) as unit:
        s = unit.session
        s.execute(delete(AuditLogEntry).where(AuditLogEntry.subject_id == str(order_id)))
        s.execute(delete(Order).where(Order.id == order_id))
        s.execute(delete(Reservation).where(Reservation.id == reservation_id))
        s.execute(delete(Offer).where(Offer.id == offer_id))
        s.execute(delete(Venue).where(Venue.business_id == business_id))
        s.execute(delete(Business).where(Business.id == business_id))
        s.execute(delete(User).where(User.id.in_((owner_id, buyer_id))))
        unit.commit()


# -- today's list and stats -------------------------------------------------------------------------------


def test_todays_list_shows_first_names_quantities_and_codes_per_offer(uow: SqlAlchemyUnitOfWork) -> None:
    # Given: two orders on today's bread bag, one on tomorrow's, buyers with usernames on file
    owner, business, bread = _shop(uow)
    pastries = _offer(uow, business, "Pastry box", NOW + timedelta(hours=1))
    tomorrow = _offer(uow, business, "Tomorrow's bag", NOW + timedelta(days=1))
    ben = _user(uow, "Ben", username="ben_secret_handle")
    cara = _user(uow, "Cara", username="cara_private")
    ben_order = _order(uow, ben, bread, loaves=2, croissants=1)
    cara_order = _order(uow, cara, pastries, loaves=1, status="redeemed")
    later_order = _order(uow, cara, tomorrow, loaves=4)

    # When: the owner asks for today's orders
    (reply,) = pickup_flows.todays_orders(_ctx(owner), uow)

    # Then: grouped per offer, first names only, with quantities, codes and status
    text = reply.text
    assert text.index("Bread bag") < text.index("Pastry box")
    assert f"Ben · 3 · <code>{display_code(ben_order.pickup_code)}</code> · to collect" in text
    assert f"Cara · 1 · <code>{display_code(cara_order.pickup_code)}</code> · collected" in text
    assert display_code(later_order.pickup_code) not in text and "Tomorrow" not in text
    assert "ben_secret_handle" not in text and "cara_private" not in text


def test_todays_list_uses_the_venues_day_not_utcs(uow: SqlAlchemyUnitOfWork) -> None:
    # Given: an order for 01:00-04:00 Singapore time on the 24th (still the 23rd in UTC)
    owner, business, _ = _shop(uow)
    early = _offer(uow, business, "Breakfast bag", datetime(2026, 11, 23, 17, 0, tzinfo=UTC))
    order = _order(uow, _user(uow, "Ben"), early)

    # When: the owner looks on the 23rd (18:00 local) and on the 24th (08:00 local)
    (on_23rd,) = pickup_flows.todays_orders(_ctx(owner, NOW), uow)
    (on_24th,) = pickup_flows.todays_orders(_ctx(owner, datetime(2026, 11, 24, 0, 0, tzinfo=UTC)), uow)

    # Then: it belongs to the 24th
    assert display_code(order.pickup_code) not in on_23rd.text
    assert display_code(order.pickup_code) in on_24th.text


def test_no_orders_today_is_said_plainly(uow: SqlAlchemyUnitOfWork) -> None:
    owner, _, _ = _shop(uow)

    (reply,) = pickup_flows.todays_orders(_ctx(owner), uow)

    assert reply.text == "No orders for pickup today."


def test_stats_count_only_paid_and_redeemed_orders_in_the_window(uow: SqlAlchemyUnitOfWork) -> None:
    # Given: today one paid and one redeemed order, one cancelled and one refunded; ten days ago a paid
    # order on an offer published then
    owner, business, offer = _shop(uow)
    old_offer = _offer(uow, business, "Old bag", NOW - timedelta(days=10), published=NOW - timedelta(days=10))
    buyer = _user(uow, "Ben")
    _order(uow, buyer, offer, loaves=2)  # 5.00
    _order(uow, buyer, offer, loaves=1, status="redeemed")  # 2.50
    _order(uow, buyer, offer, loaves=3, status="cancelled")
    _order(uow, buyer, offer, loaves=1, status="refunded")
    _order(uow, buyer, old_offer, loaves=4, created=NOW - timedelta(days=10))  # 10.00
    repo = OrderRepository(uow.session)

    # When / Then: the repository's figures per window
    today_start = pickup_flows.local_day_start(NOW, ZoneInfo("Asia/Singapore"))
    assert repo.stats(business.id, today_start) == (1, 3, 750, "SGD")
    assert repo.stats(business.id, NOW - timedelta(days=7)) == (1, 3, 750, "SGD")
    assert repo.stats(business.id, NOW - timedelta(days=30)) == (2, 7, 1750, "SGD")

    # And: the owner's message shows all three windows
    (reply,) = pickup_flows.stats(_ctx(owner), uow)
    today, week, month = reply.text.split("\n\n")[1:]
    assert "Offers posted: 1" in today and "Units sold: 3" in today and "SGD 7.50" in today
    assert "Food saved: 3 units" in today
    assert "Last 7 days" in week and "SGD 7.50" in week
    assert "Last 30 days" in month and "Units sold: 7" in month and "SGD 17.50" in month


def test_stats_without_a_business_point_to_registration(uow: SqlAlchemyUnitOfWork) -> None:
    (reply,) = pickup_flows.stats(_ctx(_user(uow, "Ben")), uow)

    assert "Register your business first" in reply.text
