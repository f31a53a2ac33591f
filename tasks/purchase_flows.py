"""Buying: hold units for the customer, then hand over to the payments queue for the Checkout Session.

Being built (payments issue); every entry point below is routed from tasks.handlers.
"""

from __future__ import annotations

from core.callbacks import BuyOffer, ReleaseHold
from core.messages import Reply
from db.uow import SqlAlchemyUnitOfWork
from tasks.business_flows import Context


def buy(ctx: Context, uow: SqlAlchemyUnitOfWork, action: BuyOffer) -> tuple[Reply, ...]:
    raise NotImplementedError


def release_hold(ctx: Context, uow: SqlAlchemyUnitOfWork, action: ReleaseHold) -> tuple[Reply, ...]:
    raise NotImplementedError
