"""Dead letters: record a task that failed for good, list the open ones, mark one replayed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import DeadLetter

MAX_MESSAGE_CHARS = 500


class DeadLetterRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        *,
        task_id: str,
        task_name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        exception: BaseException,
        retries: int,
        correlation_id: str | None,
        now: datetime,
    ) -> int | None:
        """Store the failure; None when this task id was already recorded (a redelivered failure)."""
        stmt = (
            insert(DeadLetter)
            .values(
                task_id=task_id,
                task_name=task_name,
                args=args,
                kwargs=kwargs,
                exception_type=type(exception).__name__,
                exception_message=str(exception)[:MAX_MESSAGE_CHARS] or None,
                retries=retries,
                correlation_id=correlation_id,
                failed_at=now,
            )
            .on_conflict_do_nothing(index_elements=[DeadLetter.task_id])
            .returning(DeadLetter.id)
        )
        return self.session.scalar(stmt)

    def open(self, limit: int = 100) -> list[DeadLetter]:
        stmt = (
            select(DeadLetter)
            .where(DeadLetter.replayed_at.is_(None))
            .order_by(DeadLetter.failed_at.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def count_open(self) -> int:
        stmt = select(func.count()).select_from(DeadLetter).where(DeadLetter.replayed_at.is_(None))
        return int(self.session.scalar(stmt) or 0)

    def get(self, dead_letter_id: int, *, for_update: bool = False) -> DeadLetter | None:
        stmt = select(DeadLetter).where(DeadLetter.id == dead_letter_id)
        return self.session.scalar(stmt.with_for_update() if for_update else stmt)

    def mark_replayed(self, dead_letter_id: int, *, replay_task_id: str, now: datetime) -> None:
        self.session.execute(
            update(DeadLetter)
            .where(DeadLetter.id == dead_letter_id)
            .values(replayed_at=now, replay_task_id=replay_task_id)
        )
