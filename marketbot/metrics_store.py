"""Worker metrics kept in Redis, so the gateway's GET /metrics can show every worker process at once.

Celery's prefork pool runs tasks in short-lived child processes on several hosts; an in-process Prometheus
registry per child would be scraped from nowhere. Instead each process adds to shared Redis hashes (one
HINCRBYFLOAT pipeline per task) and the gateway renders them in the exposition format next to its own
metrics, with the queue depths read from the broker at scrape time.

    writer = MetricsWriter(redis_client)
    writer.incr("marketbot_reservations_total", {"outcome": "held"})
    writer.observe("marketbot_task_seconds", {"task": name}, 0.042)
    writer.set_gauge("marketbot_oldest_unpaid_hold_seconds", {}, 312.0)

Metrics must never break the work they measure: every write swallows Redis errors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

import redis
import structlog

log = structlog.get_logger(__name__)

COUNTERS_KEY: Final = "marketbot:metrics:counters"
GAUGES_KEY: Final = "marketbot:metrics:gauges"
TASK_SECONDS_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# name → (type, help). Only names listed here are rendered, so a typo can't invent a series.
METRICS: Final[dict[str, tuple[str, str]]] = {
    "marketbot_tasks_total": ("counter", "Tasks finished, by task and outcome (success, failure, retry)"),
    "marketbot_task_seconds": ("histogram", "Task run time in seconds, by task"),
    "marketbot_task_retries_total": ("counter", "Task retries scheduled, by task"),
    "marketbot_reservations_total": ("counter", "Buy attempts, by outcome (held, sold_out, not_on_sale, …)"),
    "marketbot_payments_total": (
        "counter",
        "Stripe checkout outcomes, by outcome (paid, failed, expired, …)",
    ),
    "marketbot_refunds_total": ("counter", "Refunds, by outcome (succeeded, failed, retried)"),
    "marketbot_outbound_messages_total": ("counter", "Bot API calls from the outbox, by result"),
    "marketbot_telegram_429_total": ("counter", "Bot API calls answered 429 Too Many Requests"),
    "marketbot_oldest_unpaid_hold_seconds": ("gauge", "Age of the oldest hold still waiting for payment"),
    "marketbot_unpaid_holds": ("gauge", "Holds waiting for payment (not lapsed)"),
    "marketbot_dead_letters_open": ("gauge", "Dead letters not replayed yet"),
    "marketbot_outbox_pending": ("gauge", "Outbox messages waiting to be sent"),
    "marketbot_refunds_pending": ("gauge", "Refunds requested and not yet confirmed by Stripe"),
    "marketbot_gauges_updated_timestamp_seconds": ("gauge", "When the gauges above were last computed"),
    "marketbot_queue_messages": ("gauge", "Messages waiting in each Celery queue"),
    "marketbot_queue_unacked": (
        "gauge",
        "Messages delivered to workers and not yet acknowledged (all queues)",
    ),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def series(name: str, labels: Mapping[str, str] | None = None) -> str:
    """`name{a="x",b="y"}` with labels sorted and escaped: the field name in Redis and the exposition line."""
    if not labels:
        return name
    inner = ",".join(f'{key}="{_escape(str(labels[key]))}"' for key in sorted(labels))
    return f"{name}{{{inner}}}"


class MetricsWriter:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def incr(self, name: str, labels: Mapping[str, str] | None = None, by: float = 1.0) -> None:
        try:
            self.client.hincrbyfloat(COUNTERS_KEY, series(name, labels), by)
        except redis.RedisError as exc:
            log.warning("metrics_write_failed", metric=name, error=type(exc).__name__)

    def observe(
        self,
        name: str,
        labels: Mapping[str, str],
        value: float,
        buckets: Iterable[float] = TASK_SECONDS_BUCKETS,
    ) -> None:
        self.write(observations=[(name, labels, value, buckets)])

    def write(
        self,
        *,
        counters: Iterable[tuple[str, Mapping[str, str] | None, float]] = (),
        observations: Iterable[tuple[str, Mapping[str, str], float, Iterable[float]]] = (),
    ) -> None:
        """Several counter increments and histogram observations in one round trip (a task's end: its
        outcome and its run time, so every task pays one write, not two)."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for name, labels, by in counters:
                pipe.hincrbyfloat(COUNTERS_KEY, series(name, labels), by)
            for name, labels, value, buckets in observations:
                for bound in buckets:  # every bucket, so the histogram is complete from the first observation
                    bucket = series(f"{name}_bucket", {**labels, "le": _le(bound)})
                    pipe.hincrbyfloat(COUNTERS_KEY, bucket, 1 if value <= bound else 0)
                pipe.hincrbyfloat(COUNTERS_KEY, series(f"{name}_bucket", {**labels, "le": "+Inf"}), 1)
                pipe.hincrbyfloat(COUNTERS_KEY, series(f"{name}_sum", labels), value)
                pipe.hincrbyfloat(COUNTERS_KEY, series(f"{name}_count", labels), 1)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics_write_failed", error=type(exc).__name__)

    def set_gauges(self, values: Mapping[str, float]) -> None:
        """Replace the computed gauges at once (a gauge that is no longer computed disappears)."""
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(GAUGES_KEY)
            if values:
                pipe.hset(GAUGES_KEY, mapping={key: repr(float(v)) for key, v in values.items()})
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics_write_failed", metric="gauges", error=type(exc).__name__)


def _le(bound: float) -> str:
    return repr(float(bound))


def _base_name(field: str) -> str:
    name = field.split("{", 1)[0]
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in METRICS:
            return name.removesuffix(suffix)
    return name


def _number(raw: bytes | str) -> str:
    value = float(raw)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value) if not value.is_integer() else str(int(value))


def render(*hashes: Mapping[bytes | str, bytes | str]) -> str:
    """Prometheus text exposition of the stored series, grouped under one HELP/TYPE per metric."""
    grouped: dict[str, list[str]] = {}
    for stored in hashes:
        for raw_field, raw_value in stored.items():
            field = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
            base = _base_name(field)
            if base not in METRICS:
                continue
            grouped.setdefault(base, []).append(f"{field} {_number(raw_value)}")
    lines: list[str] = []
    for base in sorted(grouped):
        kind, help_text = METRICS[base]
        lines.append(f"# HELP {base} {help_text}")
        lines.append(f"# TYPE {base} {kind}")
        lines.extend(sorted(grouped[base]))
    return "\n".join(lines) + ("\n" if lines else "")
