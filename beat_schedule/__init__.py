"""The periodic schedule, one readable table. Every job is idempotent: a missed or repeated tick is harmless.

Long delays are never Celery ETA tasks on Redis (they re-run after the visibility timeout); they are sweeps.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tasks.names import DRAIN_STALE_MAILBOXES, RESEND_PENDING_OUTBOX

#  job                         task                       every                       why
SCHEDULE: dict[str, dict[str, Any]] = {
    # Outbox rows whose send task was lost (publish failed after commit, worker died) get a new task.
    "resend-pending-outbox": {"task": RESEND_PENDING_OUTBOX, "schedule": timedelta(seconds=15)},
    # Mailboxes with updates but no drain task in flight (publish failed after the gateway stored them).
    "drain-stale-mailboxes": {"task": DRAIN_STALE_MAILBOXES, "schedule": timedelta(seconds=30)},
}
