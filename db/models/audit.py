"""Who did what to whom: operator decisions and sensitive owner actions, kept for disputes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Identity, Index, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, not_blank


class AuditLogEntry(Base):
    """One action. `details` holds ids and amounts only: personal data stays out of the audit trail too."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(not_blank("action"), name="action_not_blank"),
        CheckConstraint("jsonb_typeof(details) = 'object'", name="details_is_object"),
        # "History of this business/offer/order".
        Index("ix_audit_log_subject_type_subject_id", "subject_type", "subject_id"),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    # Null for actions the system took on its own (expiry, automatic refunds).
    actor_telegram_user_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(Text)
    subject_type: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
