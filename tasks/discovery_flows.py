"""Customers finding food: nearby / latest / popular / ending soon, by category, and an offer's detail.

The list is one message edited in place by its own buttons; an offer's detail is a new message (a photo
when the offer has one) that its quantity picker edits. Callback data is untrusted: offer ids may be
unknown or no longer on sale, quantities may not fit the stock any more; each case gets a plain answer.
"""

from __future__ import annotations

from core import discovery
from core.callbacks import Browse, SetRadius, ViewOffer
from core.commands import PressButton
from core.discovery import (
    BACK_TO_LIST,
    DetailItem,
    ListCard,
    ListPage,
    OfferDetail,
    back_keyboard,
    bounding_box,
    clamp_page,
    haversine_m,
    nonce_of,
    pick_quantities,
    radius_km,
    render_detail,
    render_list,
)
from core.i18n import t
from core.messages import Reply, RequestKeyboard
from core.money import Money
from db.discovery_repositories import OfferForCustomer, SearchArea
from db.uow import SqlAlchemyUnitOfWork
from tasks.business_flows import Context


def find_food(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    """/find or "Find food": the nearby list at once if we know where they are, else ask for a location."""
    if uow.discovery.location_of(ctx.row_id) is None:
        return (_ask_location(ctx),)
    return (_list(ctx, uow, Browse(), edit=False),)


def location_shared(
    ctx: Context, uow: SqlAlchemyUnitOfWork, latitude: float, longitude: float
) -> tuple[Reply, ...]:
    uow.users.set_location(ctx.user.telegram_user_id, latitude, longitude, ctx.now)
    # A message cannot both remove the reply keyboard and carry inline buttons: two messages.
    saved = Reply(ctx.chat_id, t("find.location_saved", ctx.lang), remove_reply_keyboard=True)
    return (saved, _list(ctx, uow, Browse(), edit=False))


def browse(ctx: Context, uow: SqlAlchemyUnitOfWork, action: Browse) -> tuple[Reply, ...]:
    if uow.discovery.location_of(ctx.row_id) is None:
        return (_ask_location(ctx),)
    if action == BACK_TO_LIST:  # from an offer's detail (often a photo): the list comes as a new message
        return (_list(ctx, uow, Browse(), edit=False),)
    return (_list(ctx, uow, action, edit=True),)


def set_radius(ctx: Context, uow: SqlAlchemyUnitOfWork, action: SetRadius) -> tuple[Reply, ...]:
    uow.discovery.set_search_radius(ctx.row_id, action.km * 1000, ctx.now)
    if uow.discovery.location_of(ctx.row_id) is None:
        return (_ask_location(ctx),)
    return (_list(ctx, uow, Browse("near", "all", 0), edit=True),)


def view_offer(ctx: Context, uow: SqlAlchemyUnitOfWork, action: ViewOffer) -> tuple[Reply, ...]:
    offer = uow.discovery.offer_for_customer(action.offer_id, now=ctx.now)
    if offer is None or offer.status == "draft":
        return (
            Reply(ctx.chat_id, t("find.gone.unknown", ctx.lang), inline_keyboard=back_keyboard(ctx.lang)),
        )
    refusal = _not_on_sale(ctx, offer)
    if refusal is not None:
        return (refusal,)
    detail = _detail(ctx, uow, offer)
    quantities = pick_quantities(action.quantities, detail)
    message = render_detail(detail, quantities, nonce_of(ctx.command.update_id), ctx.lang, ctx.now)
    # Picker taps carry quantities and sit on the detail itself: edit it. Opening from the list: new message.
    edit = ctx.command.message_id if action.quantities and _from_button(ctx) else None
    return (
        Reply(
            ctx.chat_id,
            message.text,
            inline_keyboard=message.keyboard,
            photo=message.photo,
            edit_message_id=edit,
        ),
    )


# -- helpers ----------------------------------------------------------------------------------------------


def _ask_location(ctx: Context) -> Reply:
    return Reply(
        ctx.chat_id,
        t("role.customer", ctx.lang),
        reply_keyboard=RequestKeyboard(t("button.share_location", ctx.lang)),
    )


def _from_button(ctx: Context) -> bool:
    return isinstance(ctx.command, PressButton) and ctx.command.message_id is not None


def _list(ctx: Context, uow: SqlAlchemyUnitOfWork, action: Browse, *, edit: bool) -> Reply:
    location = uow.discovery.location_of(ctx.row_id)
    assert location is not None  # callers checked
    latitude, longitude = location
    km = radius_km(uow.discovery.search_radius_m(ctx.row_id))
    box = bounding_box(latitude, longitude, km * 1000)
    area = SearchArea(latitude, longitude, km * 1000, box.west, box.south, box.east, box.north)
    category = None if action.category == "all" else action.category
    page_number = action.page

    def fetch(number: int) -> tuple[int, list[ListCard]]:
        found = uow.discovery.nearby_page(
            area,
            tab=action.tab,
            category=category,
            now=ctx.now,
            limit=discovery.PAGE_SIZE,
            offset=number * discovery.PAGE_SIZE,
        )
        cards = [
            ListCard(
                offer_id=o.offer_id,
                title=o.title,
                business=o.business,
                distance_m=o.distance_m,
                price=Money(o.price_minor, o.currency),
                normal_price=Money(o.normal_price_minor, o.currency),
                several_prices=o.several_prices,
                units_left=o.units_left,
                pickup_start=o.pickup_start,
                pickup_end=o.pickup_end,
                timezone=o.timezone,
            )
            for o in found.offers
        ]
        return found.total, cards

    total, cards = fetch(page_number)
    if not cards and page_number > 0:
        # A stale paging button past the end (offers sold out meanwhile): the last page there is.
        total, cards = fetch(0)
        page_number = clamp_page(page_number, total)
        if page_number > 0:
            total, cards = fetch(page_number)
    page = ListPage(action.tab, action.category, page_number, total, km, tuple(cards))
    text, keyboard = render_list(page, ctx.lang, ctx.now)
    edit_id = ctx.command.message_id if edit and _from_button(ctx) else None
    return Reply(ctx.chat_id, text, inline_keyboard=keyboard, edit_message_id=edit_id)


def _not_on_sale(ctx: Context, offer: OfferForCustomer) -> Reply | None:
    if offer.business_status != "verified":
        key = "find.gone.unknown"
    elif offer.status == "paused":
        key = "find.gone.paused"
    elif offer.status == "cancelled":
        key = "find.gone.cancelled"
    elif offer.status == "expired" or offer.pickup_end <= ctx.now:
        key = "find.gone.ended"
    elif offer.status == "sold_out" or offer.units_left <= 0:
        key = "find.gone.sold_out"
    elif offer.status != "published":
        key = "find.gone.unknown"
    else:
        return None
    return Reply(ctx.chat_id, t(key, ctx.lang, title=offer.title), inline_keyboard=back_keyboard(ctx.lang))


def _detail(ctx: Context, uow: SqlAlchemyUnitOfWork, offer: OfferForCustomer) -> OfferDetail:
    location = uow.discovery.location_of(ctx.row_id)
    distance = None
    if location is not None and offer.latitude is not None and offer.longitude is not None:
        distance = haversine_m(location[0], location[1], offer.latitude, offer.longitude)
    return OfferDetail(
        offer_id=offer.offer_id,
        title=offer.title,
        business=offer.business,
        address=offer.address,
        distance_m=distance,
        description=offer.description,
        tags=offer.dietary_tags,
        pickup_start=offer.pickup_start,
        pickup_end=offer.pickup_end,
        timezone=offer.timezone,
        items=tuple(
            DetailItem(
                name=item.name,
                normal_price=Money(item.normal_price_minor, offer.currency),
                price=Money(item.offer_price_minor, offer.currency),
                available=item.available,
            )
            for item in offer.items
        ),
        per_order_limit=offer.per_order_limit,
        photo_file_id=offer.photo_file_id,
        currency=offer.currency,
    )
