"""Guided dialogs in progress (registration, an admin's rejection reason, …), one per user.

Kept in the database, not in worker memory or Redis, so a dialog survives a worker restart and its state
changes commit in the same transaction as the effects of the step.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, CreatedUpdatedMixin, not_blank


class Dialog(CreatedUpdatedMixin, Base):
    __tablename__ = "dialogs"
    __table_args__ = (
        CheckConstraint(not_blank("kind"), name="kind_not_blank"),
        CheckConstraint(not_blank("step"), name="step_not_blank"),
        CheckConstraint("jsonb_typeof(data) = 'object'", name="data_is_object"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    step: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
