"""Poison messages end as dead letters, not as endless retries or silent losses.

Every task has bounded retries (its own `max_retries`, backoff in the task options). When a task fails for
good (retries exhausted, or an error a retry cannot fix), Celery's `task_failure` signal lands here: the
task's name, arguments and error go to the `dead_letters` table and an ERROR log line carries the
correlation id, so an operator can find the update that caused it, fix the cause and replay it with
`marketbot dead-letters replay <id>`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from celery.signals import task_failure

from db.uow import SqlAlchemyUnitOfWork
from marketbot.logs import current_correlation_id

log = structlog.get_logger(__name__)


def record_dead_letter(
    uow_factory: Callable[[], SqlAlchemyUnitOfWork],
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
    with uow_factory() as uow:
        dead_letter_id = uow.dead_letters.record(
            task_id=task_id,
            task_name=task_name,
            args=args,
            kwargs=kwargs,
            exception=exception,
            retries=retries,
            correlation_id=correlation_id,
            now=now,
        )
        uow.commit()
    return dead_letter_id


@task_failure.connect
def _on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    **_: Any,
) -> None:
    from core.clock import utcnow
    from tasks import runtime

    name = getattr(sender, "name", None) or "unknown"
    request = getattr(sender, "request", None)
    correlation_id = current_correlation_id()
    log.error(
        "task_dead_lettered",
        task=name,
        task_id=task_id,
        error=type(exception).__name__,
        correlation_id=correlation_id,
    )
    try:
        record_dead_letter(
            runtime.uow_factory(),
            task_id=task_id or "unknown",
            task_name=name,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            exception=exception or RuntimeError("unknown"),
            retries=int(getattr(request, "retries", 0) or 0),
            correlation_id=correlation_id,
            now=utcnow(),
        )
    except Exception:  # the database is away too: the log line above is what remains
        log.exception("dead_letter_not_recorded", task=name, task_id=task_id)


def replay(
    uow_factory: Callable[[], SqlAlchemyUnitOfWork],
    dead_letter_id: int,
    *,
    send_task: Callable[[str, list[Any], dict[str, Any]], str],
    now: datetime,
) -> str | None:
    """Publish the dead letter's task again with the same arguments; None if unknown or replayed already."""
    with uow_factory() as uow:
        letter = uow.dead_letters.get(dead_letter_id, for_update=True)
        if letter is None or letter.replayed_at is not None:
            return None
        new_id = send_task(letter.task_name, list(letter.args), dict(letter.kwargs))
        uow.dead_letters.mark_replayed(dead_letter_id, replay_task_id=new_id, now=now)
        uow.commit()
    log.info("dead_letter_replayed", dead_letter_id=dead_letter_id, task_id=new_id)
    return new_id
