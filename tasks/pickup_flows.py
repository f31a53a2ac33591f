"""Pickups from the owner's side: redeeming a customer's code, today's pickup list, and sales figures.

Redeeming re-checks everything on the server: the sender must own a verified business, and a code is looked
up only among that business's offers, so a code from another business reads exactly like a mistyped one
(nobody learns which codes exist elsewhere). The order row is locked, so a double tap redeems once.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

from core.i18n import Html, resolve_language, t
from core.messages import Reply
from core.money import Money
from core.pickup import display_code, normalize_code, parse_deep_link_payload
from db.models import Business, Offer, Order, User
from db.order_repositories import OrderRepository, PickupListRow
from db.uow import SqlAlchemyUnitOfWork
from tasks.business_flows import Context

_WHEN = "%a %d %b %H:%M"
_STATS_PERIODS = (("stats.period.today", 0), ("stats.period.7d", 6), ("stats.period.30d", 29))


def _m(ctx: Context, key: str, **params: object) -> Reply:
    return Reply(ctx.chat_id, t(key, ctx.lang, **params))


def _orders(uow: SqlAlchemyUnitOfWork) -> OrderRepository:
    return uow.orders


def _owned_business(ctx: Context, uow: SqlAlchemyUnitOfWork) -> Business | None:
    business = uow.businesses.latest_of_owner(ctx.row_id)
    return business if business is not None and business.venues else None


def _zone(business: Business) -> ZoneInfo:
    return ZoneInfo(business.venues[0].timezone)


def local_day_start(now: datetime, zone: ZoneInfo, days_back: int = 0) -> datetime:
    """Midnight (in `zone`) of the day `days_back` days before `now`'s local day, as an aware datetime.

    Built from the local date rather than by subtracting 24 h, so a DST change never shifts the boundary.
    """
    day = now.astimezone(zone).date() - timedelta(days=days_back)
    return datetime.combine(day, time(0), tzinfo=zone)


# -- redeeming --------------------------------------------------------------------------------------------


def redeem(ctx: Context, uow: SqlAlchemyUnitOfWork, text: str) -> tuple[Reply, ...]:
    """The owner typed a pickup code, or opened the customer's QR deep link (`text` is then "p_…")."""
    business = uow.businesses.latest_of_owner(ctx.row_id)
    if business is None or business.status != "verified" or not business.venues:
        return (_m(ctx, "pickup.owners_only"),)
    payload = text.strip()
    if payload.startswith("/start"):
        payload = payload.removeprefix("/start").strip()
    link = parse_deep_link_payload(payload)
    code = link.code if link is not None else normalize_code(payload)
    if code is None:
        return (_m(ctx, "pickup.bad_format"),)
    orders = _orders(uow)
    order = orders.find_for_redemption(business.id, code, order_id=link.order_id if link else None)
    shown = display_code(code)
    if order is None:
        return (_m(ctx, "pickup.unknown_code", code=shown),)
    if order.status == "redeemed":
        assert order.redeemed_at is not None  # CHECK redeemed_has_time
        when = order.redeemed_at.astimezone(_zone(business)).strftime(_WHEN)
        return (_m(ctx, "pickup.already_redeemed", code=shown, when=when),)
    if order.status != "paid":
        return (_m(ctx, f"pickup.{order.status}", code=shown),)
    return _hand_over(ctx, uow, business, order, orders)


def _hand_over(
    ctx: Context, uow: SqlAlchemyUnitOfWork, business: Business, order: Order, orders: OrderRepository
) -> tuple[Reply, ...]:
    order.status = "redeemed"
    order.redeemed_at = ctx.now
    order.updated_at = ctx.now
    uow.session.flush()
    ctx.audit(
        uow,
        "order.redeemed",
        "order",
        order.id,
        details={"business_id": business.id, "offer_id": order.offer_id},
    )
    offer = uow.session.get(Offer, order.offer_id)
    buyer = uow.session.get(User, order.user_id)
    assert offer is not None and buyer is not None  # FKs
    items = Html(
        ", ".join(
            t("pickup.item", ctx.lang, quantity=quantity, name=name)
            for name, quantity in orders.items_of(order)
        )
    )
    to_owner = t(
        "pickup.redeemed",
        ctx.lang,
        code=display_code(order.pickup_code),
        buyer=buyer.first_name or t("pickup.someone", ctx.lang),
        items=items,
        title=offer.title,
    )
    buyer_lang = resolve_language(buyer.language_code)
    to_buyer = t("pickup.buyer_confirmed", buyer_lang, title=offer.title, business=business.name)
    return (Reply(ctx.chat_id, to_owner), Reply(buyer.chat_id or buyer.telegram_user_id, to_buyer))


# -- today's list and stats -------------------------------------------------------------------------------


def todays_orders(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    """Orders to hand over today (the venue's local day), grouped per offer, buyers by first name only."""
    business = _owned_business(ctx, uow)
    if business is None:
        return (_m(ctx, "owner.offers.register_first"),)
    zone = _zone(business)
    start = local_day_start(ctx.now, zone)
    end = local_day_start(ctx.now, zone, days_back=-1)
    rows = _orders(uow).todays_orders(business.id, start, end)
    if not rows:
        return (_m(ctx, "pickup.today.none"),)
    blocks = [t("pickup.today.header", ctx.lang, name=business.name)]
    for _, group in groupby(rows, key=lambda row: row.offer_id):
        offer_rows = list(group)
        blocks.append(_offer_block(ctx, offer_rows, zone))
    return (Reply(ctx.chat_id, "\n\n".join(blocks)),)


def _offer_block(ctx: Context, rows: list[PickupListRow], zone: ZoneInfo) -> str:
    first = rows[0]
    start, end = first.pickup_start.astimezone(zone), first.pickup_end.astimezone(zone)
    lines = [t("pickup.today.offer", ctx.lang, title=first.offer_title, window=f"{start:%H:%M}–{end:%H:%M}")]
    lines += [
        t(
            "pickup.today.line",
            ctx.lang,
            buyer=row.buyer_first_name or t("pickup.someone", ctx.lang),
            quantity=row.quantity,
            code=display_code(row.pickup_code),
            status=t(f"pickup.status.{row.status}", ctx.lang),
        )
        for row in rows
    ]
    return "\n".join(lines)


def stats(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    """Offers posted, units sold, revenue and food saved: today, the last 7 and the last 30 local days."""
    business = _owned_business(ctx, uow)
    if business is None:
        return (_m(ctx, "owner.offers.register_first"),)
    zone = _zone(business)
    orders = _orders(uow)
    blocks = [t("stats.header", ctx.lang, name=business.name)]
    for period_key, days_back in _STATS_PERIODS:
        figures = orders.stats(business.id, local_day_start(ctx.now, zone, days_back))
        blocks.append(
            t(
                "stats.block",
                ctx.lang,
                period=t(period_key, ctx.lang),
                offers=figures.offers_posted,
                units=figures.units_sold,
                revenue=Money(figures.revenue_minor, figures.currency).display(),
                saved=figures.units_sold,
            )
        )
    return (Reply(ctx.chat_id, "\n\n".join(blocks)),)
