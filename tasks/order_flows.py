"""A customer's orders: list, show the pickup code again, cancel before the cutoff (refunded through Stripe).

Callback data names an order but proves nothing (invariant 5): every action reads the order through the
buyer's own user id, so someone else's order id reads exactly like an unknown one. Cancelling re-checks the
policy against the row and then decides with one conditional UPDATE (paid → cancelled), so a double tap or
a redelivered update cancels once, returns the units once and requests one refund; the refund itself runs
on the payments queue after this transaction commits (tasks.refunds, tasks.refund_flows).

A cancelled order stays `cancelled` after its refund succeeds (the refund row says the money went back,
and "My orders" shows it); `refunded` is for orders refunded without being cancelled by anyone.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog

from core import orders
from core.callbacks import OrderAction
from core.commands import PressButton
from core.i18n import resolve_language, t
from core.messages import Reply
from core.orders import CancelRefused, OrderSummary
from core.pickup import display_code, pickup_qr_data
from db.uow import SqlAlchemyUnitOfWork
from tasks import runtime
from tasks.business_flows import Context
from tasks.refunds import request_refund

log = structlog.get_logger(__name__)


def cancel_cutoff() -> timedelta:
    """How long before pickup starts customers can still cancel (ORDER_CANCEL_CUTOFF_MINUTES)."""
    return timedelta(minutes=runtime.settings().cancel_cutoff_minutes)


def bot_username() -> str | None:
    """The bot's @username for pickup deep links (TELEGRAM_BOT_USERNAME), if configured."""
    return runtime.settings().telegram_bot_username


def my_orders(ctx: Context, uow: SqlAlchemyUnitOfWork, page: int) -> tuple[Reply, ...]:
    """/orders (page 0, a new message) or a paging button (the list's message is edited in place)."""
    rows, total = uow.orders.of_customer(
        ctx.row_id, now=ctx.now, offset=page * orders.PAGE_SIZE, limit=orders.PAGE_SIZE
    )
    if not rows and page > 0:  # a stale "Older" button after orders changed: show the last page instead
        page = max(0, (total - 1) // orders.PAGE_SIZE)
        rows, total = uow.orders.of_customer(
            ctx.row_id, now=ctx.now, offset=page * orders.PAGE_SIZE, limit=orders.PAGE_SIZE
        )
    text, keyboard = orders.orders_page(rows, page=page, total_count=total, now=ctx.now, lang=ctx.lang)
    return (Reply(ctx.chat_id, text, inline_keyboard=keyboard, edit_message_id=_button_message(ctx)),)


def order_action(ctx: Context, uow: SqlAlchemyUnitOfWork, action: OrderAction) -> tuple[Reply, ...]:
    try:
        order_id = uuid.UUID(hex=action.order_hex)
    except ValueError:
        return (ctx.say("orders.not_found"),)
    order = uow.orders.summary_of_customer(ctx.row_id, order_id)
    if order is None:
        return (ctx.say("orders.not_found"),)
    if action.verb == "show":
        return _show_code(ctx, order)
    cutoff = cancel_cutoff()
    try:
        orders.ensure_cancellable(order.status, order.pickup_start, ctx.now, cutoff)
    except CancelRefused as refusal:
        return (Reply(ctx.chat_id, orders.refusal_text(refusal, order, cutoff, ctx.lang)),)
    if action.verb == "cancel":
        return (
            Reply(
                ctx.chat_id,
                orders.confirm_cancel_text(order, ctx.now, cutoff, ctx.lang),
                inline_keyboard=orders.confirm_cancel_keyboard(order, ctx.lang),
            ),
        )
    return _cancel(ctx, uow, order, cutoff)


def _show_code(ctx: Context, order: OrderSummary) -> tuple[Reply, ...]:
    if not order.is_active(ctx.now):
        return (ctx.say("orders.code_unavailable"),)
    return (
        Reply(
            ctx.chat_id,
            orders.code_caption(order, ctx.now, ctx.lang),
            qr_data=pickup_qr_data(order.order_id, order.pickup_code, bot_username()),
        ),
    )


def _cancel(
    ctx: Context, uow: SqlAlchemyUnitOfWork, order: OrderSummary, cutoff: timedelta
) -> tuple[Reply, ...]:
    reservation_id = uow.orders.cancel(order.order_id, now=ctx.now, user_id=ctx.row_id)
    if reservation_id is None:
        # Another tap (or the shop cancelling the offer) got there first: say where the order stands now.
        current = uow.orders.summary_of_customer(ctx.row_id, order.order_id)
        assert current is not None  # orders are never deleted
        try:
            orders.ensure_cancellable(current.status, current.pickup_start, ctx.now, cutoff)
        except CancelRefused as refusal:
            return (Reply(ctx.chat_id, orders.refusal_text(refusal, current, cutoff, ctx.lang)),)
        raise RuntimeError("order was paid but could not be cancelled")  # pragma: no cover
    request_order_refund(ctx, uow, order.order_id, reservation_id, reason="customer_cancelled")
    ctx.audit(uow, "order.cancelled_by_customer", "order", order.order_id)
    items = orders.items_text(order.items)
    done = Reply(
        ctx.chat_id,
        t("orders.cancelled", ctx.lang, items=items, title=order.offer_title, total=order.total.display()),
        edit_message_id=_button_message(ctx),
    )
    return (done, *_tell_owner(uow, order))


def request_order_refund(
    ctx: Context, uow: SqlAlchemyUnitOfWork, order_id: uuid.UUID, reservation_id: uuid.UUID, *, reason: str
) -> None:
    """Record the full refund of the order's payment and defer the Stripe call until after the commit."""
    payment = uow.orders.payment_of_reservation(reservation_id)
    if payment is None:
        # An order always comes from a paid Checkout Session; without its payment row there is nothing to
        # refund through Stripe. Operators see this line and the audit entry and refund by hand.
        log.error("refund_without_payment", order_id=str(order_id))
        ctx.audit(uow, "order.refund_without_payment", "order", order_id, reason=reason)
        return
    job = request_refund(uow, payment, order_id=order_id, reason=reason, now=ctx.now)
    if job is not None:
        ctx.defer(job.task, *job.args)


def _tell_owner(uow: SqlAlchemyUnitOfWork, order: OrderSummary) -> tuple[Reply, ...]:
    owner = uow.orders.owner_of_order(order.order_id)
    if owner is None:  # pragma: no cover - every offer has a business with an owner
        return ()
    lang = resolve_language(owner.language_code)
    text = t(
        "orders.owner_told",
        lang,
        code=display_code(order.pickup_code),
        title=order.offer_title,
        items=orders.items_text(order.items),
    )
    return (Reply(owner.chat_id or owner.telegram_user_id, text),)


def _button_message(ctx: Context) -> int | None:
    """The message a pressed button sat on (edited in place); None for a typed command (a new message)."""
    return ctx.command.message_id if isinstance(ctx.command, PressButton) else None
