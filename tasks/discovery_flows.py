"""Customers finding food: nearby / latest / popular / ending soon, by category, and an offer's detail.

Being built (payments issue); every entry point below is routed from tasks.handlers.
"""

from __future__ import annotations

from core.callbacks import Browse, SetRadius, ViewOffer
from core.i18n import t
from core.messages import Reply, RequestKeyboard
from db.uow import SqlAlchemyUnitOfWork
from tasks.business_flows import Context


def find_food(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    # Placeholder until the nearby list exists: ask for the location, as before.
    return (
        Reply(
            ctx.chat_id,
            t("role.customer", ctx.lang),
            reply_keyboard=RequestKeyboard(t("button.share_location", ctx.lang)),
        ),
    )


def location_shared(
    ctx: Context, uow: SqlAlchemyUnitOfWork, latitude: float, longitude: float
) -> tuple[Reply, ...]:
    uow.users.set_location(ctx.user.telegram_user_id, latitude, longitude, ctx.now)
    return (Reply(ctx.chat_id, t("location.saved", ctx.lang), remove_reply_keyboard=True),)


def browse(ctx: Context, uow: SqlAlchemyUnitOfWork, action: Browse) -> tuple[Reply, ...]:
    raise NotImplementedError


def set_radius(ctx: Context, uow: SqlAlchemyUnitOfWork, action: SetRadius) -> tuple[Reply, ...]:
    raise NotImplementedError


def view_offer(ctx: Context, uow: SqlAlchemyUnitOfWork, action: ViewOffer) -> tuple[Reply, ...]:
    raise NotImplementedError
