"""Asking for money back: the one entry point every use case calls (offer cancelled, order cancelled,
paid after the hold was released). The Stripe call happens later, in the refund task on the payments
queue, after the deciding transaction committed (tasks.jobs)."""

from __future__ import annotations

import uuid
from datetime import datetime

from db.models import Payment
from db.uow import SqlAlchemyUnitOfWork
from tasks.jobs import Job
from tasks.names import EXECUTE_REFUND


def request_refund(
    uow: SqlAlchemyUnitOfWork,
    payment: Payment,
    *,
    order_id: uuid.UUID | None,
    reason: str,
    now: datetime,
) -> Job | None:
    """Record the refund in the caller's transaction; return the job to publish after its commit.

    None when this payment's refund was already requested (a repeated decision is not a second refund).
    """
    refund_id = uow.refunds.request(payment, order_id=order_id, reason=reason, now=now)
    return Job(EXECUTE_REFUND, (refund_id,)) if refund_id is not None else None
