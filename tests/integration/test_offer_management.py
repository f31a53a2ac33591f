"""Managing an offer: only its owner, only in states that allow it, and cancelling refunds every buyer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.callbacks import OfferManage
from core.conversation import UserView
from core.messages import Reply
from db.models import Offer, Order, Payment, Reservation
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from tasks import offer_flows
from tasks.business_flows import Context
from tasks.jobs import Job
from tasks.names import EXECUTE_REFUND
from tests.integration import seed

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def uow(database_url: str) -> Iterator[SqlAlchemyUnitOfWork]:
    engine = make_engine(database_url)
    with SqlAlchemyUnitOfWork(make_session_factory(engine)) as unit:
        yield unit  # never committed: nothing is left behind
    engine.dispose()


def _user(uow: SqlAlchemyUnitOfWork, name: str = "U") -> Any:
    return seed.user(uow, NOW, name)


def _context(user: Any, now: datetime = NOW) -> Context:
    view = UserView(user.telegram_user_id, user.telegram_user_id, "en", user.first_name)
    return Context(command=None, user=view, row_id=user.id, admins=frozenset(), now=now)  # type: ignore[arg-type]


def _offer(uow: SqlAlchemyUnitOfWork, owner: Any) -> Offer:
    return seed.offer(uow, seed.verified_business(uow, owner, NOW), NOW)


def _paid_order(uow: SqlAlchemyUnitOfWork, offer: Offer, buyer: Any) -> uuid.UUID:
    reservation = Reservation(
        id=uuid.uuid4(),
        user_id=buyer.id,
        offer_id=offer.id,
        status="paid",
        expires_at=NOW,
        total_minor=250,
        currency="SGD",
        idempotency_key=uuid.uuid4().hex,
        created_at=NOW,
        updated_at=NOW,
    )
    uow.session.add(reservation)
    uow.session.flush()
    order = Order(
        id=uuid.uuid4(),
        reservation_id=reservation.id,
        user_id=buyer.id,
        offer_id=offer.id,
        status="paid",
        pickup_code=uuid.uuid4().hex[:6].upper(),
        total_minor=250,
        currency="SGD",
        created_at=NOW,
    )
    uow.session.add(order)
    uow.session.flush()
    uow.session.add(
        Payment(
            reservation_id=reservation.id,
            order_id=order.id,
            stripe_checkout_session_id=f"cs_test_{uuid.uuid4().hex}",
            status="paid",
            amount_minor=250,
            currency="SGD",
            paid_at=NOW,
        )
    )
    uow.session.flush()
    return order.id


def _texts(replies: tuple[Reply, ...]) -> str:
    return "\n".join(r.text for r in replies)


def test_owner_pauses_and_resumes_and_a_stale_second_tap_changes_nothing(uow: SqlAlchemyUnitOfWork) -> None:
    owner = _user(uow)
    offer = _offer(uow, owner)
    ctx = _context(owner)

    assert "is paused" in _texts(offer_flows.manage_offer(ctx, uow, OfferManage("pause", offer.id)))
    assert "no longer applies" in _texts(offer_flows.manage_offer(ctx, uow, OfferManage("pause", offer.id)))
    assert offer.status == "paused"
    assert "live again" in _texts(offer_flows.manage_offer(ctx, uow, OfferManage("resume", offer.id)))
    assert offer.status == "published"


def test_another_owners_offer_id_is_refused_and_unchanged(uow: SqlAlchemyUnitOfWork) -> None:
    offer = _offer(uow, _user(uow))
    intruder = _user(uow)
    _offer(uow, intruder)  # the intruder has a business of their own

    replies = offer_flows.manage_offer(_context(intruder), uow, OfferManage("cancel_confirmed", offer.id))

    assert "isn't one of yours" in _texts(replies)
    assert offer.status == "published"


def test_an_ended_offer_cannot_go_back_on_sale(uow: SqlAlchemyUnitOfWork) -> None:
    owner = _user(uow)
    offer = _offer(uow, owner)
    offer_flows.manage_offer(_context(owner), uow, OfferManage("pause", offer.id))

    later = _context(owner, now=NOW + timedelta(hours=4))
    assert "can't go back on sale" in _texts(
        offer_flows.manage_offer(later, uow, OfferManage("resume", offer.id))
    )
    assert offer.status == "paused"


def test_cancelling_asks_first_then_refunds_every_paid_order_once_and_tells_each_buyer(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    owner = _user(uow)
    offer = _offer(uow, owner)
    buyers = [_user(uow, "Ann"), _user(uow, "Ben")]
    orders = [_paid_order(uow, offer, b) for b in buyers]
    ctx = _context(owner)

    ask = offer_flows.manage_offer(ctx, uow, OfferManage("cancel", offer.id))
    assert "2 paid order(s) will be refunded" in _texts(ask) and offer.status == "published"

    done = offer_flows.manage_offer(ctx, uow, OfferManage("cancel_confirmed", offer.id))

    assert offer.status == "cancelled" and offer.cancelled_at == NOW
    refunds = [uow.refunds.of_payment(_payment_of(uow, o).id) for o in orders]
    assert [(r.reason, r.status, r.order_id) for r in refunds if r is not None] == [
        ("offer_cancelled", "requested", o) for o in orders
    ]
    # The Stripe calls run on the payments queue once this transaction commits: one job per refund.
    assert ctx.jobs == [Job(EXECUTE_REFUND, (r.id,)) for r in refunds if r is not None]
    assert {uow.session.get(Order, o).status for o in orders} == {"cancelled"}  # type: ignore[union-attr]
    told = {r.chat_id for r in done if "was cancelled by the shop" in r.text}
    assert told == {b.telegram_user_id for b in buyers}
    again = offer_flows.manage_offer(ctx, uow, OfferManage("cancel_confirmed", offer.id))
    assert "no longer applies" in _texts(again) and len(ctx.jobs) == 2  # a double tap refunds once


def test_an_order_its_buyer_already_cancelled_is_not_refunded_again_by_the_offer_cancel(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    owner = _user(uow)
    offer = _offer(uow, owner)
    buyer = _user(uow, "Ann")
    order_id = _paid_order(uow, offer, buyer)
    assert uow.orders.cancel(order_id, now=NOW) is not None  # the buyer was a moment faster

    ctx = _context(owner)
    done = offer_flows.manage_offer(ctx, uow, OfferManage("cancel_confirmed", offer.id))

    assert ctx.jobs == [] and not [r for r in done if r.chat_id == buyer.telegram_user_id]


def _payment_of(uow: SqlAlchemyUnitOfWork, order_id: uuid.UUID) -> Payment:
    order = uow.session.get(Order, order_id)
    assert order is not None
    payment = uow.orders.payment_of_reservation(order.reservation_id)
    assert payment is not None
    return payment


def _edit(ctx: Context, uow: SqlAlchemyUnitOfWork, offer: Offer, field: str, value: str) -> str:
    from core.callbacks import DialogChoice
    from core.dialog_inputs import ButtonInput, TextInput

    offer_flows.start_edit(ctx, uow, offer.id)
    dialog = uow.dialogs.get(ctx.row_id)
    assert dialog is not None
    offer_flows.edit_step(ctx, uow, "item", dialog.data, ButtonInput(DialogChoice("oe", "i", "0")))
    dialog = uow.dialogs.get(ctx.row_id)
    assert dialog is not None
    offer_flows.edit_step(ctx, uow, "field", dialog.data, ButtonInput(DialogChoice("oe", "f", field)))
    dialog = uow.dialogs.get(ctx.row_id)
    assert dialog is not None
    return _texts(offer_flows.edit_step(ctx, uow, "value", dialog.data, TextInput(value)))


def test_quantity_can_grow_or_shrink_but_never_below_units_buyers_have(uow: SqlAlchemyUnitOfWork) -> None:
    owner = _user(uow)
    offer = _offer(uow, owner)  # 5 loaves
    (loaf,) = offer.items
    loaf.remaining = 2  # buyers hold or bought 3
    uow.session.flush()
    ctx = _context(owner)

    assert "can't go below 3" in _edit(ctx, uow, offer, "q", "2")
    assert "is updated" in _edit(ctx, uow, offer, "q", "8")

    uow.session.refresh(loaf)
    assert (loaf.quantity_total, loaf.remaining) == (8, 5)
    assert uow.dialogs.get(owner.id) is None  # the dialog ended with the change


def test_price_must_stay_below_normal_and_above_zero(uow: SqlAlchemyUnitOfWork) -> None:
    owner = _user(uow)
    offer = _offer(uow, owner)  # normal 6.00, offer 2.50
    ctx = _context(owner)

    assert "below the normal price" in _edit(ctx, uow, offer, "p", "6.00")
    dialog = uow.dialogs.get(owner.id)
    assert dialog is not None and dialog.step == "value"  # still asking
    from core.dialog_inputs import TextInput

    assert "is updated" in _texts(offer_flows.edit_step(ctx, uow, "value", dialog.data, TextInput("1.90")))
    (loaf,) = uow.offers.items(offer.id)
    assert loaf.offer_price_minor == 190


def test_someone_else_cannot_edit_an_offer(uow: SqlAlchemyUnitOfWork) -> None:
    offer = _offer(uow, _user(uow))
    intruder = _user(uow)
    _offer(uow, intruder)
    assert "isn't one of yours" in _texts(offer_flows.start_edit(_context(intruder), uow, offer.id))
