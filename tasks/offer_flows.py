"""Offers from the owner's side: the creation wizard's persistence, publishing, and the live list.

Publishing re-checks on the server that the business is still verified (an admin may have suspended it
while the owner was typing); the wizard's state lives in the dialogs table like every dialog.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.offer_wizard import OfferDraft, OfferWizardState, WizardContext

from core import offer_wizard
from core.dialog_inputs import DialogInput
from core.i18n import t
from core.messages import Reply
from db.models import Business
from db.offer_repositories import NewItem
from db.uow import SqlAlchemyUnitOfWork
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
    _save(ctx, uow, result.state)
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
    _save(ctx, uow, result.state)
    if result.publish is not None:
        return result.replies + _publish(ctx, uow, business, result.publish, wizard_ctx)
    return result.replies


def _save(ctx: Context, uow: SqlAlchemyUnitOfWork, state: OfferWizardState | None) -> None:
    if state is None:
        uow.dialogs.end(ctx.row_id)
    else:
        uow.dialogs.save(
            ctx.row_id, kind=offer_wizard.DIALOG_KIND, step=state.step, data=state.data, now=ctx.now
        )


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
    uow.audit.add(
        actor_telegram_user_id=ctx.user.telegram_user_id,
        action="offer.published",
        subject_type="offer",
        subject_id=str(offer.id),
        now=ctx.now,
    )
    caption, photo = offer_wizard.offer_card(draft, ctx.lang, wizard_ctx)
    return (
        Reply(ctx.chat_id, caption, photo=photo),
        ctx.say("owner.offers.published", title=draft.title),
    )


def list_offers(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    business = uow.businesses.latest_of_owner(ctx.row_id)
    if business is None:
        return (ctx.say("owner.offers.register_first"),)
    zone = ZoneInfo(business.venues[0].timezone) if business.venues else ZoneInfo("UTC")
    rows = uow.offers.counts_for_business(business.id, now=ctx.now)
    if not rows:
        return (ctx.say("owner.offers.none"),)
    lines = [t("owner.offers.header", ctx.lang, name=business.name)]
    for row in rows:
        start, end = row.pickup_start.astimezone(zone), row.pickup_end.astimezone(zone)
        lines.append(
            t(
                "owner.offers.line",
                ctx.lang,
                title=row.title,
                status=row.status,
                available=row.available,
                held=row.held,
                sold=row.sold,
                window=f"{start:%a %d %b %H:%M}–{end:%H:%M}",
            )
        )
    return (Reply(ctx.chat_id, "\n\n".join(lines)),)
