"""Prometheus metrics of the gateway, served at GET /metrics."""

from __future__ import annotations

import functools

from prometheus_client import Counter, Histogram

UPDATES = Counter(
    "marketbot_gateway_updates_total",
    "Telegram updates received, by outcome "
    "(enqueued, duplicate, ignored, rate_limited, rejected, overloaded, failed)",
    ["outcome"],
)
WEBHOOK_REQUESTS = Counter(
    "marketbot_gateway_webhook_requests_total", "Webhook HTTP requests by path and status", ["path", "status"]
)
ENQUEUE_SECONDS = Histogram(
    "marketbot_gateway_enqueue_seconds",
    "Time to store an update in its mailbox and publish the drain task",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
STRIPE_EVENTS = Counter(
    "marketbot_gateway_stripe_events_total",
    "Stripe webhook events received, by outcome (enqueued, ignored, rejected, failed, disabled)",
    ["outcome"],
)


# `labels()` validates and looks up its values under a lock on every call, and every webhook counts twice.
# Children are created on first use (as `labels()` does), so a series appears once it has happened.
@functools.cache
def updates(outcome: str) -> Counter:
    """UPDATES for this outcome."""
    return UPDATES.labels(outcome)


@functools.cache
def webhook_requests(path: str, status: int) -> Counter:
    """WEBHOOK_REQUESTS for this path and status."""
    return WEBHOOK_REQUESTS.labels(path, str(status))
