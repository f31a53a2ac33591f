"""Offers from the owner's side: the creation wizard's persistence, publishing, and the live list.

Publishing re-checks on the server that the business is still verified (an admin may have suspended it
while the owner was typing); the wizard's state lives in the dialogs table like every dialog.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core import offer_wizard
from core.callbacks import DialogChoice, OfferManage, OfferVerb
from core.dialog_inputs import ButtonInput, DialogInput, TextInput
from core.i18n import resolve_language, t
from core.messages import InlineButton, Reply
from core.money import InvalidAmount, Money
from core.offer_wizard import OfferDraft, OfferWizardState, WizardContext
from core.offers import OfferAction, OfferStatus, PickupWindowOver, TransitionRefused, transition
from db.models import Business, Offer, OfferItem
from db.offer_repositories import NewItem
from db.uow import SqlAlchemyUnitOfWork
from tasks import order_flows
from tasks.business_flows import Context


def _publishable(ctx: Context, uow: SqlAlchemyUnitOfWork) -> Business | None:
    business = uow.businesses.latest_of_owner(ctx.row_id)
    if business is None or business.status != "verified" or not business.venues:
        return None
    return business


def _not_allowed(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    business = uow.businesses.latest_of_owner(ctx.row_id)
    if business is None:
        return (ctx.say("owner.offers.register_first"),)
    return (ctx.say(f"biz.{business.status}", name=business.name, reason=business.rejection_reason or "—"),)


def _wizard_context(business: Business, now: datetime) -> WizardContext:
    return WizardContext(
        business_name=business.name, currency=business.currency, timezone=business.venues[0].timezone, now=now
    )


def start_offer(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    business = _publishable(ctx, uow)
    if business is None:
        return _not_allowed(ctx, uow)
    result = offer_wizard.start(ctx.chat_id, ctx.lang, _wizard_context(business, ctx.now))
    uow.dialogs.store(ctx.row_id, offer_wizard.DIALOG_KIND, result.state, now=ctx.now)
    return result.replies


def offer_step(
    ctx: Context, uow: SqlAlchemyUnitOfWork, state: OfferWizardState, inp: DialogInput
) -> tuple[Reply, ...]:
    business = _publishable(ctx, uow)
    if business is None:  # suspended mid-dialog
        uow.dialogs.end(ctx.row_id)
        return _not_allowed(ctx, uow)
    wizard_ctx = _wizard_context(business, ctx.now)
    result = offer_wizard.advance(state, inp, ctx.chat_id, ctx.lang, wizard_ctx)
    uow.dialogs.store(ctx.row_id, offer_wizard.DIALOG_KIND, result.state, now=ctx.now)
    if result.publish is not None:
        return result.replies + _publish(ctx, uow, business, result.publish, wizard_ctx)
    return result.replies


def _publish(
    ctx: Context, uow: SqlAlchemyUnitOfWork, business: Business, draft: OfferDraft, wizard_ctx: WizardContext
) -> tuple[Reply, ...]:
    offer = uow.offers.create(
        business_id=business.id,
        venue_id=business.venues[0].id,
        title=draft.title,
        description=draft.description,
        photo_file_id=draft.photo_file_id,
        thumb_file_id=draft.thumb_file_id,
        pickup_start=draft.pickup_start,
        pickup_end=draft.pickup_end,
        currency=draft.currency,
        dietary_tags=list(draft.tags),
        items=[
            NewItem(i.name, i.quantity, i.normal_price.amount_minor, i.offer_price.amount_minor)
            for i in draft.items
        ],
        status="published",
        now=ctx.now,
    )
    ctx.audit(uow, "offer.published", "offer", offer.id)
    caption, photo = offer_wizard.offer_card(draft, ctx.lang, wizard_ctx)
    return (
        Reply(ctx.chat_id, caption, photo=photo),
        ctx.say("owner.offers.published", title=draft.title),
    )


# Buttons an owner sees under an offer, by status (the state machine has the final word when pressed).
MANAGE_BUTTONS: dict[str, tuple[OfferVerb, ...]] = {
    "published": ("edit", "pause", "mark_sold_out", "cancel"),
    "paused": ("edit", "resume", "cancel"),
    "sold_out": ("restock", "cancel"),
}
VERB_TO_ACTION: dict[str, OfferAction] = {
    "pause": OfferAction.PAUSE,
    "resume": OfferAction.RESUME,
    "mark_sold_out": OfferAction.MARK_SOLD_OUT,
    "restock": OfferAction.RESTOCK,
    "cancel_confirmed": OfferAction.CANCEL,
}


def list_offers(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    business = uow.businesses.latest_of_owner(ctx.row_id)
    if business is None:
        return (ctx.say("owner.offers.register_first"),)
    zone = ZoneInfo(business.venues[0].timezone) if business.venues else ZoneInfo("UTC")
    rows = uow.offers.counts_for_business(business.id, now=ctx.now)
    if not rows:
        return (ctx.say("owner.offers.none"),)
    replies = [ctx.say("owner.offers.header", name=business.name)]
    for row in rows:
        start, end = row.pickup_start.astimezone(zone), row.pickup_end.astimezone(zone)
        text = t(
            "owner.offers.line",
            ctx.lang,
            title=row.title,
            status=t(f"owner.offers.status.{row.status}", ctx.lang),
            available=row.available,
            held=row.held,
            sold=row.sold,
            window=f"{start:%a %d %b %H:%M}–{end:%H:%M}",
        )
        buttons = tuple(
            InlineButton(
                t(f"owner.offers.button.{verb}", ctx.lang),
                callback_data=OfferManage(verb, row.offer_id).encode(),
            )
            for verb in MANAGE_BUTTONS.get(row.status, ())
        )
        replies.append(Reply(ctx.chat_id, text, inline_keyboard=(buttons,) if buttons else ()))
    return tuple(replies)


def manage_offer(ctx: Context, uow: SqlAlchemyUnitOfWork, action: OfferManage) -> tuple[Reply, ...]:
    """An owner's button under an offer. Re-checks ownership and state; callback data proves nothing."""
    offer = uow.offers.get_for_update(action.offer_id)
    business = uow.businesses.latest_of_owner(ctx.row_id)
    if offer is None or business is None or offer.business_id != business.id:
        # Same answer for "no such offer" and "someone else's offer": ids reveal nothing.
        return (ctx.say("owner.offers.not_yours"),)
    if action.verb == "edit":
        return start_edit(ctx, uow, offer.id)
    if action.verb == "cancel":
        if offer.status in ("cancelled", "expired"):
            return (
                ctx.say(
                    "owner.offers.refused",
                    title=offer.title,
                    status=t(f"owner.offers.status.{offer.status}", ctx.lang),
                ),
            )
        paid = len(uow.offers.paid_orders(offer.id))
        confirm = InlineButton(
            t("owner.offers.button.cancel_confirmed", ctx.lang),
            callback_data=OfferManage("cancel_confirmed", offer.id).encode(),
        )
        return (
            Reply(
                ctx.chat_id,
                t("owner.offers.confirm_cancel", ctx.lang, title=offer.title, paid=paid),
                inline_keyboard=((confirm,),),
            ),
        )
    if business.status != "verified" and action.verb in ("resume", "restock"):
        return (
            ctx.say(f"biz.{business.status}", name=business.name, reason=business.rejection_reason or "—"),
        )
    try:
        new_status = transition(
            OfferStatus(offer.status), VERB_TO_ACTION[action.verb], now=ctx.now, pickup_end=offer.pickup_end
        )
    except PickupWindowOver:
        return (ctx.say("owner.offers.window_over", title=offer.title),)
    except TransitionRefused:
        # A stale button (e.g. Pause on an offer already paused or cancelled): say where it stands.
        return (
            ctx.say(
                "owner.offers.refused",
                title=offer.title,
                status=t(f"owner.offers.status.{offer.status}", ctx.lang),
            ),
        )
    uow.offers.set_status(offer, str(new_status), now=ctx.now)
    ctx.audit(uow, f"offer.{VERB_TO_ACTION[action.verb]}", "offer", offer.id)
    replies = [ctx.say(f"owner.offers.done.{action.verb}", title=offer.title)]
    if action.verb == "cancel_confirmed":
        replies += _refund_buyers(ctx, uow, offer.id, offer.title)
    return tuple(replies)


def _refund_buyers(ctx: Context, uow: SqlAlchemyUnitOfWork, offer_id: int, title: str) -> list[Reply]:
    return refund_paid_orders(ctx, uow, offer_id, title)


def refund_paid_orders(ctx: Context, uow: SqlAlchemyUnitOfWork, offer_id: int, title: str) -> list[Reply]:
    """Cancel every paid order of a cancelled offer, request its refund through Stripe, tell each buyer.

    Like a customer's own cancellation (tasks.order_flows): the order goes paid → cancelled by one
    conditional UPDATE, so an order the customer cancelled a moment earlier is neither refunded nor told
    twice, and the refund (one per payment) is executed by the payments queue after this commit.
    """
    replies = []
    for paid in uow.offers.paid_orders(offer_id):
        reservation_id = uow.orders.cancel(paid.order_id, now=ctx.now)
        if reservation_id is None:
            continue
        order_flows.request_order_refund(ctx, uow, paid.order_id, reservation_id, reason="offer_cancelled")
        lang = resolve_language(paid.buyer_language)
        replies.append(Reply(paid.buyer_chat_id, t("buyer.offer_cancelled", lang, title=title)))
    return replies


# -- editing an item's quantity or offer price ------------------------------------------------------------

EDIT_DIALOG = "edit_offer"


def start_edit(ctx: Context, uow: SqlAlchemyUnitOfWork, offer_id: int) -> tuple[Reply, ...]:
    offer, refusal = _owned_offer_allowing_edit(ctx, uow, offer_id)
    if offer is None:
        return refusal
    uow.dialogs.save(ctx.row_id, kind=EDIT_DIALOG, step="item", data={"offer_id": offer.id}, now=ctx.now)
    rows = tuple(
        (
            InlineButton(
                t(
                    "owner.edit.item_button",
                    ctx.lang,
                    name=item.name,
                    total=item.quantity_total,
                    left=item.remaining,
                    price=Money(item.offer_price_minor, offer.currency).display(),
                ),
                callback_data=DialogChoice("oe", "i", str(item.position)).encode(),
            ),
        )
        for item in uow.offers.items(offer.id)
    )
    return (Reply(ctx.chat_id, t("owner.edit.pick_item", ctx.lang, title=offer.title), inline_keyboard=rows),)


def _owned_offer_allowing_edit(
    ctx: Context, uow: SqlAlchemyUnitOfWork, offer_id: int
) -> tuple[Offer | None, tuple[Reply, ...]]:
    offer = uow.offers.get_for_update(offer_id)
    business = uow.businesses.latest_of_owner(ctx.row_id)
    if offer is None or business is None or offer.business_id != business.id:
        return None, (ctx.say("owner.offers.not_yours"),)
    try:
        transition(OfferStatus(offer.status), OfferAction.EDIT, now=ctx.now, pickup_end=offer.pickup_end)
    except TransitionRefused:
        status = t(f"owner.offers.status.{offer.status}", ctx.lang)
        return None, (ctx.say("owner.offers.refused", title=offer.title, status=status),)
    return offer, ()


def edit_step(
    ctx: Context, uow: SqlAlchemyUnitOfWork, step: str, data: dict[str, Any], inp: DialogInput
) -> tuple[Reply, ...]:
    offer, refusal = _owned_offer_allowing_edit(ctx, uow, int(data["offer_id"]))
    if offer is None:
        uow.dialogs.end(ctx.row_id)
        return refusal
    items = uow.offers.items(offer.id)
    if step == "item":
        position = _choice(inp, "i")
        if position is None or not position.isdigit() or int(position) >= len(items):
            return (ctx.say("reg.hint.pick_a_button"),)
        uow.dialogs.save(
            ctx.row_id, kind=EDIT_DIALOG, step="field", data={**data, "item": int(position)}, now=ctx.now
        )
        buttons = (
            InlineButton(
                t("owner.edit.quantity", ctx.lang), callback_data=DialogChoice("oe", "f", "q").encode()
            ),
            InlineButton(
                t("owner.edit.price", ctx.lang), callback_data=DialogChoice("oe", "f", "p").encode()
            ),
        )
        return (
            Reply(
                ctx.chat_id,
                t("owner.edit.pick_field", ctx.lang, name=items[int(position)].name),
                inline_keyboard=(buttons,),
            ),
        )
    item = items[int(data["item"])]
    if step == "field":
        field = _choice(inp, "f")
        if field not in ("q", "p"):
            return (ctx.say("reg.hint.pick_a_button"),)
        uow.dialogs.save(
            ctx.row_id, kind=EDIT_DIALOG, step="value", data={**data, "field": field}, now=ctx.now
        )
        if field == "q":
            committed = item.quantity_total - item.remaining
            return (ctx.say("owner.edit.ask_quantity", name=item.name, minimum=max(committed, 1)),)
        normal = Money(item.normal_price_minor, offer.currency).display()
        return (ctx.say("owner.edit.ask_price", name=item.name, normal=normal),)
    text = inp.text if isinstance(inp, TextInput) else ""
    if data["field"] == "q":
        return _edit_quantity(ctx, uow, offer, item, text)
    return _edit_price(ctx, uow, offer, item, text)


def _choice(inp: DialogInput, step: str) -> str | None:
    if isinstance(inp, ButtonInput) and inp.choice.step == step:
        return inp.choice.value
    return None


def _edit_quantity(
    ctx: Context, uow: SqlAlchemyUnitOfWork, offer: Offer, item: OfferItem, text: str
) -> tuple[Reply, ...]:
    committed = item.quantity_total - item.remaining
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        return (ctx.say("owner.edit.ask_quantity", name=item.name, minimum=max(committed, 1)),)
    if not uow.offers.set_item_quantity(item.id, int(value), now=ctx.now):
        return (ctx.say("owner.edit.below_committed", name=item.name, minimum=committed),)
    return _edited(ctx, uow, offer, item.name, "quantity", value)


def _edit_price(
    ctx: Context, uow: SqlAlchemyUnitOfWork, offer: Offer, item: OfferItem, text: str
) -> tuple[Reply, ...]:
    normal = Money(item.normal_price_minor, offer.currency)
    try:
        price = Money.parse(text, offer.currency)
    except InvalidAmount:
        return (ctx.say("owner.edit.ask_price", name=item.name, normal=normal.display()),)
    if price.amount_minor <= 0 or price.amount_minor >= normal.amount_minor:
        return (ctx.say("owner.edit.ask_price", name=item.name, normal=normal.display()),)
    uow.offers.set_item_offer_price(item.id, price.amount_minor, now=ctx.now)
    return _edited(ctx, uow, offer, item.name, "offer_price", price.display())


def _edited(
    ctx: Context, uow: SqlAlchemyUnitOfWork, offer: Offer, name: str, field: str, value: str
) -> tuple[Reply, ...]:
    uow.dialogs.end(ctx.row_id)
    ctx.audit(uow, "offer.edited", "offer", offer.id, details={"item": name, field: value})
    return (ctx.say("owner.edit.done", name=name, title=offer.title),)
