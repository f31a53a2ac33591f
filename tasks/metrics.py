"""Worker-side metrics: every task's outcome and run time, domain counters, and the periodic gauges.

Stored in Redis through marketbot.metrics_store (see there why), rendered by the gateway's GET /metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery.signals import task_failure, task_postrun, task_prerun, task_retry
from sqlalchemy import text

from db.uow import SqlAlchemyUnitOfWork
from marketbot.metrics_store import TASK_SECONDS_BUCKETS, MetricsWriter

_started: dict[str, float] = {}


def writer() -> MetricsWriter:
    from tasks import runtime

    return runtime.metrics()


def count(name: str, **labels: str) -> None:
    """Add one to a domain counter, e.g. count("marketbot_reservations_total", outcome="held")."""
    writer().incr(name, labels)


def outbound_result(result: str) -> None:
    writer().incr("marketbot_outbound_messages_total", {"result": result})
    if result == "flood_control":
        writer().incr("marketbot_telegram_429_total")


@task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


@task_postrun.connect
def _task_finished(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id or "", None)
    name = getattr(task, "name", "unknown")
    outcome = {"SUCCESS": "success", "RETRY": "retry", "FAILURE": "failure"}.get(state or "", "other")
    counters = []
    if outcome != "failure":  # failures are counted by the failure signal, with their exception type
        counters.append(("marketbot_tasks_total", {"task": name, "outcome": outcome}, 1.0))
    observations = []
    if started is not None:
        seconds = time.monotonic() - started
        observations.append(("marketbot_task_seconds", {"task": name}, seconds, TASK_SECONDS_BUCKETS))
    writer().write(counters=counters, observations=observations)


@task_failure.connect
def _task_failed(sender: Any = None, **_: Any) -> None:
    writer().incr("marketbot_tasks_total", {"task": getattr(sender, "name", "unknown"), "outcome": "failure"})


@task_retry.connect
def _task_retried(sender: Any = None, **_: Any) -> None:
    count_retry(getattr(sender, "name", "unknown"))


def count_retry(task_name: str) -> None:
    """One retry of `task_name` scheduled: raised (the task_retry signal) or not (`retry(throw=False)`)."""
    writer().incr("marketbot_task_retries_total", {"task": task_name})


_GAUGES = text(
    """
    SELECT
      (SELECT extract(epoch FROM :now - min(created_at)) FROM reservations
        WHERE status = 'held' AND expires_at > :now) AS oldest_hold,
      (SELECT count(*) FROM reservations WHERE status = 'held' AND expires_at > :now) AS unpaid_holds,
      (SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL) AS dead_letters,
      (SELECT count(*) FROM outbox WHERE status = 'pending') AS outbox_pending,
      (SELECT count(*) FROM refunds WHERE status = 'requested') AS refunds_pending
    """
)


def compute_gauges(uow_factory: Callable[[], SqlAlchemyUnitOfWork], *, now: datetime) -> dict[str, float]:
    """The operator's health numbers from the database (each an indexed count or a partial-index scan)."""
    with uow_factory() as uow:
        row = uow.session.execute(_GAUGES, {"now": now}).mappings().one()
    return {
        "marketbot_oldest_unpaid_hold_seconds": float(row["oldest_hold"] or 0.0),
        "marketbot_unpaid_holds": float(row["unpaid_holds"]),
        "marketbot_dead_letters_open": float(row["dead_letters"]),
        "marketbot_outbox_pending": float(row["outbox_pending"]),
        "marketbot_refunds_pending": float(row["refunds_pending"]),
        "marketbot_gauges_updated_timestamp_seconds": now.timestamp(),
    }
