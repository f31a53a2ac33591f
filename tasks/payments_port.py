"""The refund port's adapter until Stripe is connected (payments issue): record each request durably.

A cancelled offer's refunds are requested inside the cancelling transaction, as audit rows keyed by the
order, so nothing is lost; the Stripe adapter will replace this class and process the same requests.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import structlog

from db.uow import SqlAlchemyUnitOfWork

log = structlog.get_logger(__name__)


class RecordedRefunds:
    """RefundPort that records requests in the audit log (idempotent: one row per idempotency key)."""

    def __init__(
        self, uow: SqlAlchemyUnitOfWork, *, actor_telegram_user_id: int | None, now: datetime
    ) -> None:
        self.uow = uow
        self.actor = actor_telegram_user_id
        self.now = now

    def refund_order(self, order_id: UUID, *, reason: str, idempotency_key: str) -> None:
        if not self.uow.events.claim("refund_request", idempotency_key, self.now):
            return
        self.uow.audit.add(
            actor_telegram_user_id=self.actor,
            action="order.refund_requested",
            subject_type="order",
            subject_id=str(order_id),
            reason=reason,
            details={"idempotency_key": idempotency_key},
            now=self.now,
        )
        log.info("refund_requested", order_id=str(order_id))
