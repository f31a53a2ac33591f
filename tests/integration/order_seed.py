"""Paid orders for the orders and refunds tests, written straight into the database as fulfilment leaves them:
a paid reservation holding the units (taken from the offer's `remaining`), its order, and its Stripe payment.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from core.commands import Actor, PressButton, SendText, UserCommand
from core.conversation import UserView
from core.pickup import generate_pickup_code
from db.models import Offer, Order, Payment, Reservation, ReservationItem, User
from db.uow import SqlAlchemyUnitOfWork
from tasks.business_flows import Context

_rng = random.Random()


def paid_order(
    uow: SqlAlchemyUnitOfWork,
    buyer: User,
    offer: Offer,
    now: datetime,
    *,
    quantities: tuple[int, ...] = (2,),
    status: str = "paid",
    payment_intent_id: str | None = None,
    checkout_session_id: str | None = None,
) -> tuple[Order, Payment]:
    """An order for `quantities[i]` units of the offer's i-th item, and the payment that paid for it."""
    reservation = Reservation(
        id=uuid.uuid4(),
        user_id=buyer.id,
        offer_id=offer.id,
        status="paid",
        expires_at=now + timedelta(minutes=15),
        total_minor=0,
        currency=offer.currency,
        idempotency_key=uuid.uuid4().hex,
        created_at=now,
        updated_at=now,
    )
    total = 0
    for item, quantity in zip(sorted(offer.items, key=lambda i: i.position), quantities, strict=False):
        if quantity:
            item.remaining -= quantity
            total += item.offer_price_minor * quantity
            reservation.items.append(
                ReservationItem(
                    offer_item_id=item.id, quantity=quantity, unit_price_minor=item.offer_price_minor
                )
            )
    reservation.total_minor = total
    uow.session.add(reservation)
    uow.session.flush()
    order = Order(
        id=uuid.uuid4(),
        reservation_id=reservation.id,
        user_id=buyer.id,
        offer_id=offer.id,
        status=status,
        pickup_code=generate_pickup_code(_rng),
        total_minor=total,
        currency=offer.currency,
        redeemed_at=now if status == "redeemed" else None,
        cancelled_at=now if status == "cancelled" else None,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(order)
    uow.session.flush()
    payment = Payment(
        reservation_id=reservation.id,
        order_id=order.id,
        stripe_checkout_session_id=checkout_session_id or f"cs_test_{uuid.uuid4().hex}",
        stripe_payment_intent_id=payment_intent_id,
        status="paid",
        amount_minor=total,
        currency=offer.currency,
        paid_at=now,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(payment)
    uow.session.flush()
    return order, payment


def context(user: User, now: datetime, *, button: str | None = None, message_id: int = 77) -> Context:
    """A flows Context for `user`; with `button`, as if they pressed it on message `message_id`."""
    view = UserView(
        telegram_user_id=user.telegram_user_id,
        chat_id=user.chat_id or user.telegram_user_id,
        language="en",
        first_name=user.first_name,
    )
    actor = Actor(telegram_user_id=view.telegram_user_id, chat_id=view.chat_id)
    common = {
        "update_id": _rng.randint(1, 10**9),
        "actor": actor,
        "received_at": now,
        "correlation_id": uuid.uuid4().hex,
    }
    command: UserCommand = (
        PressButton(**common, data=button, message_id=message_id)  # type: ignore[arg-type]
        if button is not None
        else SendText(**common, text="/orders")  # type: ignore[arg-type]
    )
    return Context(command=command, user=view, row_id=user.id, admins=frozenset(), now=now)
