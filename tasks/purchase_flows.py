"""Buying: hold units for the customer, then hand over to the payments queue for the Checkout Session.

Both entry points run inside the user's command transaction (tasks.handlers) and re-check on the server
whatever the button claims (invariant 5). The Checkout Session is created by a payments task published
after this transaction commits, so a tap answers at database speed even when Stripe is slow.

One running hold per buyer and offer: a tap on Buy while the buyer already holds units of the same offer
shows that hold (Pay / Release) instead of holding more. A double tap, a second device or an old card
therefore never parks units twice for one person; to change quantities they release and buy again.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import structlog

from core import purchase
from core.callbacks import BuyOffer, ReleaseHold
from core.i18n import t
from core.messages import Reply
from core.reservations import (
    DEFAULT_PER_ORDER_LIMIT,
    InvalidQuantity,
    OfferNotOnSale,
    SoldOut,
    hold_expiry,
    validate_lines,
)
from db.models import Business, Offer, OfferItem
from db.payment_repositories import HoldDetails
from db.uow import SqlAlchemyUnitOfWork
from tasks.business_flows import Context
from tasks.names import CREATE_CHECKOUT, EXPIRE_CHECKOUT
from tasks.payment_flows import view_of

log = structlog.get_logger(__name__)

# A hold whose Checkout task was published but shows no payment after this long probably lost its task
# (a crash between commit and publish): a new tap publishes it again (the task is idempotent).
CHECKOUT_REPUBLISH_AFTER = timedelta(seconds=20)


def _hold_minutes() -> int:
    from tasks import runtime

    return runtime.settings().hold_minutes


RESERVATIONS = "marketbot_reservations_total"


def buy(
    ctx: Context, uow: SqlAlchemyUnitOfWork, action: BuyOffer, *, hold_minutes: int | None = None
) -> tuple[Reply, ...]:
    minutes = hold_minutes if hold_minutes is not None else _hold_minutes()
    me = uow.users.get_by_telegram_id(ctx.user.telegram_user_id)
    if me is None or me.banned_at is not None:
        ctx.count(RESERVATIONS, outcome="banned")
        return (ctx.say("buy.banned"),)
    offer = uow.session.get(Offer, action.offer_id, populate_existing=True)
    business = uow.session.get(Business, offer.business_id) if offer is not None else None
    if (
        offer is None
        or business is None
        or business.status != "verified"
        or offer.status != "published"
        or offer.pickup_end <= ctx.now
    ):
        ctx.count(RESERVATIONS, outcome="not_on_sale")
        return (ctx.say("buy.not_on_sale"),)
    running = uow.payments.open_hold_of(ctx.row_id, offer.id, ctx.now)
    if running is not None:
        ctx.count(RESERVATIONS, outcome="already_holding")
        return _show_hold(ctx, uow, running.id, hint="buy.already_holding")
    items = uow.offers.items(offer.id)
    limit = offer.per_order_limit or DEFAULT_PER_ORDER_LIMIT
    try:
        lines = validate_lines(
            purchase.lines_from_quantities(action.quantities, [item.id for item in items]),
            per_order_limit=offer.per_order_limit,
        )
    except InvalidQuantity:
        ctx.count(RESERVATIONS, outcome="invalid_quantity")
        return (ctx.say("buy.invalid_quantity", limit=limit),)
    key = f"buy:{ctx.row_id}:{action.offer_id}:{action.nonce}"
    try:
        # A savepoint: a line that is sold out undoes the lines taken before it, while the command's own
        # writes (its update id claim, the reply) still commit.
        with uow.session.begin_nested():
            hold = uow.reservations.hold(
                user_id=ctx.row_id,
                offer_id=offer.id,
                lines=lines,
                idempotency_key=key,
                expires_at=hold_expiry(ctx.now, minutes),
                now=ctx.now,
            )
    except SoldOut as exc:
        ctx.count(RESERVATIONS, outcome="sold_out")
        return (_sold_out(ctx, uow, offer, items, exc),)
    except OfferNotOnSale:
        ctx.count(RESERVATIONS, outcome="not_on_sale")
        return (ctx.say("buy.not_on_sale"),)
    if not hold.created:
        ctx.count(RESERVATIONS, outcome="repeated")
        return _show_hold(ctx, uow, hold.reservation_id)
    details = _details(uow, hold.reservation_id, ctx)
    reservation = uow.payments.lock_reservation(hold.reservation_id)
    assert reservation is not None
    reservation.chat_message_id = ctx.command.message_id
    uow.session.flush()
    ctx.defer(CREATE_CHECKOUT, str(hold.reservation_id))
    ctx.count(RESERVATIONS, outcome="held")
    log.info("hold_created", reservation_id=str(hold.reservation_id), offer_id=offer.id)
    return (purchase.reserved(_view(details, ctx), minutes),)


def _details(uow: SqlAlchemyUnitOfWork, reservation_id: uuid.UUID, ctx: Context) -> HoldDetails:
    details = uow.payments.details(reservation_id)
    assert details is not None  # the caller just found or made it
    return details


def _view(details: HoldDetails, ctx: Context) -> purchase.PurchaseView:
    """The card this button press sat on, in the language of whoever pressed it."""
    return replace(view_of(details, message_id=ctx.command.message_id), chat_id=ctx.chat_id, lang=ctx.lang)


def _show_hold(
    ctx: Context, uow: SqlAlchemyUnitOfWork, reservation_id: uuid.UUID, hint: str | None = None
) -> tuple[Reply, ...]:
    """A hold found again (double tap, second device): its current state, with its Pay button if any."""
    details = _details(uow, reservation_id, ctx)
    view = _view(details, ctx)
    if details.status == "paid":
        return (ctx.say("buy.already_paid"),)
    if details.status != "held" or details.expires_at <= ctx.now:
        return (ctx.say("buy.hold_over"),)
    payment = uow.payments.payment_of(reservation_id)
    notes = (ctx.say(hint),) if hint else ()
    if payment is not None and payment.status == "open" and payment.checkout_url:
        card = purchase.pay_button(
            view, url=payment.checkout_url, expires_at=details.expires_at, reservation_hex=reservation_id.hex
        )
        return (*notes, card)
    if payment is None and ctx.now - details.created_at >= CHECKOUT_REPUBLISH_AFTER:
        ctx.defer(CREATE_CHECKOUT, str(reservation_id))
    return (*notes, purchase.still_preparing(view, reservation_id.hex))


def _sold_out(
    ctx: Context, uow: SqlAlchemyUnitOfWork, offer: Offer, items: list[OfferItem], exc: SoldOut
) -> Reply:
    item_id = int(str(exc.params.get("offer_item_id")))
    name = next((item.name for item in items if item.id == item_id), offer.title)
    left = uow.payments.available_units(item_id, ctx.now)
    key = "buy.sold_out" if left > 0 else "buy.sold_out_none"
    return Reply(
        ctx.chat_id,
        t(key, ctx.lang, left=left, name=name),
        inline_keyboard=purchase.back_to_offer(offer.id, ctx.lang),
    )


def release_hold(ctx: Context, uow: SqlAlchemyUnitOfWork, action: ReleaseHold) -> tuple[Reply, ...]:
    reservation_id = uuid.UUID(hex=action.reservation_hex)
    reservation = uow.payments.lock_reservation(reservation_id)
    # Someone else's hold reads exactly like a missing one: callback data is untrusted (invariant 5).
    if reservation is None or reservation.user_id != ctx.row_id:
        return (ctx.say("hold.not_found"),)
    if reservation.status == "paid":
        return (ctx.say("hold.already_paid"),)
    if reservation.status != "held":
        return (ctx.say("hold.already_over"),)
    payment = uow.payments.payment_of(reservation_id, for_update=True)
    if payment is not None and payment.status == "processing":
        return (ctx.say("hold.payment_processing"),)
    details = _details(uow, reservation_id, ctx)
    # Conditional on status = 'held' (we hold the row lock too): a payment being applied right now either
    # committed first (then this says "already paid") or waits and finds the hold released.
    if not uow.payments.release(reservation_id, status="released", now=ctx.now):
        return (ctx.say("hold.already_over"),)
    if payment is not None and payment.status == "open":
        ctx.defer(EXPIRE_CHECKOUT, payment.stripe_checkout_session_id)
    log.info("hold_released", reservation_id=str(reservation_id))
    return (purchase.hold_closed(_view(details, ctx), "hold.released"),)
