"""Tasks a use case asks for, published only after its transaction commits ("publish after commit").

A handler that holds units, requests a refund or records a Stripe event cannot enqueue the follow-up task
inside its transaction: a worker could pick it up before the commit and find nothing. It appends a Job to
its context instead; the caller publishes the jobs once `commit()` has returned. The rows the jobs read
are durable, so a publish lost to a crash is found again by the periodic sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    task: str  # a name from tasks.names; its queue comes from the routes there
    args: tuple[str | int, ...] = ()


def publish(job: Job) -> None:
    """Send one job to its queue (the Celery app is imported lazily: db-only callers don't need it)."""
    from tasks.app import app

    app.send_task(job.task, args=list(job.args))
