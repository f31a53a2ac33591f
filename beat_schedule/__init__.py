"""The periodic schedule, one readable table. Every job is idempotent: a missed or repeated tick is harmless.

Long delays are never Celery ETA tasks on Redis (they re-run after the visibility timeout); they are sweeps.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tasks.names import (
    DRAIN_STALE_MAILBOXES,
    EXPIRE_ENDED_OFFERS,
    PUBLISH_GAUGES,
    PURGE_PROCESSED_EVENTS,
    RECONCILE_PAYMENTS,
    RELEASE_EXPIRED_HOLDS,
    RESEND_PENDING_OUTBOX,
    SEND_PICKUP_REMINDERS,
)

#  job                         task                       every                       why
SCHEDULE: dict[str, dict[str, Any]] = {
    # Outbox rows whose send task was lost (publish failed after commit, worker died) get a new task.
    "resend-pending-outbox": {"task": RESEND_PENDING_OUTBOX, "schedule": timedelta(seconds=15)},
    # Mailboxes with updates but no drain task in flight (publish failed after the gateway stored them).
    "drain-stale-mailboxes": {"task": DRAIN_STALE_MAILBOXES, "schedule": timedelta(seconds=30)},
    # Lapsed holds give their units back and their Checkout Sessions are expired. Availability already
    # ignores them (expiry is a query condition), so this only tidies up.
    "release-expired-holds": {"task": RELEASE_EXPIRED_HOLDS, "schedule": timedelta(seconds=60)},
    # Offers whose pickup window ended become expired; each business gets its end-of-window summary.
    "expire-ended-offers": {"task": EXPIRE_ENDED_OFFERS, "schedule": timedelta(minutes=1)},
    # Buyers reminded once before their window ends; businesses get a last call for uncollected orders.
    "send-pickup-reminders": {"task": SEND_PICKUP_REMINDERS, "schedule": timedelta(minutes=1)},
    # Idempotency keys (update ids, Stripe event ids) past every redelivery window.
    "purge-processed-events": {"task": PURGE_PROCESSED_EVENTS, "schedule": timedelta(hours=1)},
    # Lost webhooks and lost tasks: finished sessions applied as if their webhook came, checkouts and
    # refunds whose task never ran published again (each open session is asked about every 2 minutes).
    "reconcile-payments": {"task": RECONCILE_PAYMENTS, "schedule": timedelta(seconds=60)},
    # Health numbers for /metrics and alerts: oldest unpaid hold, dead letters, pending outbox and refunds.
    "publish-gauges": {"task": PUBLISH_GAUGES, "schedule": timedelta(seconds=30)},
}
