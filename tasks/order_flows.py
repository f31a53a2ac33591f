"""A customer's orders: list, show the pickup code again, cancel before the cutoff (refunded).

Being built (payments issue); every entry point below is routed from tasks.handlers.
"""

from __future__ import annotations

from core.callbacks import OrderAction
from core.messages import Reply
from db.uow import SqlAlchemyUnitOfWork
from tasks.business_flows import Context


def my_orders(ctx: Context, uow: SqlAlchemyUnitOfWork, page: int) -> tuple[Reply, ...]:
    raise NotImplementedError


def order_action(ctx: Context, uow: SqlAlchemyUnitOfWork, action: OrderAction) -> tuple[Reply, ...]:
    raise NotImplementedError
