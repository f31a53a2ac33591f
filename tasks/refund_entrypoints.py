"""Celery entrypoint of the refund task (payments queue): parse the refund id, call one handler, done."""

from __future__ import annotations

from typing import Any

from core.clock import utcnow
from tasks import metrics, runtime
from tasks.app import app
from tasks.entrypoints import publish_send
from tasks.handlers import TRANSIENT_ERRORS
from tasks.names import EXECUTE_REFUND
from tasks.refund_flows import execute_refund as execute_refund_flow


# Stripe trouble is bounded by the handler (it counts attempts on the refund row, so the bound survives
# redeliveries); database or Redis trouble is retried here, also bounded: a refund left `requested` is
# still on record for operators and sweeps.
@app.task(
    name=EXECUTE_REFUND,
    bind=True,
    max_retries=50,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
)
def execute_refund(self: Any, refund_id: int) -> str:
    outcome = execute_refund_flow(
        int(refund_id), uow_factory=runtime.uow_factory(), payments=runtime.payments(), now=utcnow
    )
    for outbox_id in outcome.outbox_ids:
        publish_send(outbox_id)
    metrics.count("marketbot_refunds_total", outcome=outcome.kind)
    if outcome.kind == "retry":
        raise self.retry(countdown=outcome.retry_after)
    return outcome.kind
