"""Refund requests: one per payment, inserted by whichever transaction decides the money goes back."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import Payment, Refund


class RefundRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def request(
        self, payment: Payment, *, order_id: uuid.UUID | None, reason: str, now: datetime
    ) -> int | None:
        """Ask for the payment's full refund; returns the refund id, or None if one was already requested.

        The unique payment_id makes a second decision (a repeated event, a cancel racing an offer cancel)
        a no-op instead of a second refund; the idempotency key makes the Stripe call repeat-safe.
        """
        stmt = (
            insert(Refund)
            .values(
                payment_id=payment.id,
                order_id=order_id,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                reason=reason,
                status="requested",
                idempotency_key=f"refund-payment-{payment.id}",
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[Refund.payment_id])
            .returning(Refund.id)
        )
        return self.session.scalar(stmt)

    def get(self, refund_id: int, *, for_update: bool = False) -> Refund | None:
        stmt = select(Refund).where(Refund.id == refund_id)
        return self.session.scalar(stmt.with_for_update() if for_update else stmt)

    def of_payment(self, payment_id: int) -> Refund | None:
        return self.session.scalar(select(Refund).where(Refund.payment_id == payment_id))
