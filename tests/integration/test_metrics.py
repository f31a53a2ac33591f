"""Operators' numbers: worker counters and gauges kept in Redis, served with queue depths at GET /metrics."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from core.reservations import Line
from db.offer_repositories import NewItem
from db.uow import SqlAlchemyUnitOfWork
from marketbot.fakes.telegram import FakeTelegram
from marketbot.metrics_store import COUNTERS_KEY, GAUGES_KEY, MetricsWriter, render
from tasks import metrics
from tests.integration import seed
from tests.support.gateway import gateway_env, run_with_gateway


@pytest.fixture
def clean_metrics(redis_client: redis.Redis) -> Iterator[MetricsWriter]:
    redis_client.delete(COUNTERS_KEY, GAUGES_KEY)
    yield MetricsWriter(redis_client)
    redis_client.delete(COUNTERS_KEY, GAUGES_KEY)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse the exposition text the way Prometheus does (a format error raises here)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_counters_histograms_and_gauges_render_as_valid_prometheus_text(
    clean_metrics: MetricsWriter, redis_client: redis.Redis
) -> None:
    writer = clean_metrics
    writer.incr("marketbot_reservations_total", {"outcome": "held"})
    writer.incr("marketbot_reservations_total", {"outcome": "held"})
    writer.incr("marketbot_reservations_total", {"outcome": "sold_out"})
    writer.observe("marketbot_task_seconds", {"task": "marketbot.payments.create_checkout"}, 0.07)
    writer.set_gauges({"marketbot_oldest_unpaid_hold_seconds": 42.5})
    writer.incr("not_a_metric_we_know")  # never rendered: only declared names are

    text = render(redis_client.hgetall(COUNTERS_KEY), redis_client.hgetall(GAUGES_KEY))
    samples = _samples(text)

    assert samples[("marketbot_reservations_total", (("outcome", "held"),))] == 2
    assert samples[("marketbot_reservations_total", (("outcome", "sold_out"),))] == 1
    task = ("task", "marketbot.payments.create_checkout")
    assert samples[("marketbot_task_seconds_bucket", (("le", "0.05"), task))] == 0
    assert samples[("marketbot_task_seconds_bucket", (("le", "0.1"), task))] == 1
    assert samples[("marketbot_task_seconds_bucket", (("le", "+Inf"), task))] == 1
    assert samples[("marketbot_task_seconds_count", (task,))] == 1
    assert samples[("marketbot_oldest_unpaid_hold_seconds", ())] == 42.5
    assert "not_a_metric_we_know" not in text
    assert text.count("# TYPE marketbot_reservations_total counter") == 1


def test_outbound_results_count_429s_separately(
    clean_metrics: MetricsWriter, redis_client: redis.Redis
) -> None:
    metrics.outbound_result("sent")
    metrics.outbound_result("flood_control")
    samples = _samples(render(redis_client.hgetall(COUNTERS_KEY)))
    assert samples[("marketbot_outbound_messages_total", (("result", "sent"),))] == 1
    assert samples[("marketbot_outbound_messages_total", (("result", "flood_control"),))] == 1
    assert samples[("marketbot_telegram_429_total", ())] == 1


def test_the_oldest_unpaid_hold_gauge_ignores_lapsed_holds(
    uow_factory: Callable[[], SqlAlchemyUnitOfWork],
) -> None:
    # Given a hold made 4 minutes ago that is still running (the test database may hold others too)
    now = datetime.now(UTC)
    with uow_factory() as uow:
        owner = seed.user(uow, now)
        offer = seed.offer(
            uow, seed.verified_business(uow, owner, now), now, items=[NewItem("Loaf", 5, 600, 250)]
        )
        made = now - timedelta(minutes=4)
        uow.reservations.hold(
            user_id=seed.user(uow, now).id,
            offer_id=offer.id,
            lines=[Line(offer.items[0].id, 1)],
            idempotency_key=uuid.uuid4().hex,
            expires_at=made + timedelta(minutes=15),
            now=made,
        )
        uow.commit()

    gauges = metrics.compute_gauges(uow_factory, now=now)

    assert gauges["marketbot_oldest_unpaid_hold_seconds"] >= 4 * 60 - 1
    assert gauges["marketbot_unpaid_holds"] >= 1
    assert gauges["marketbot_gauges_updated_timestamp_seconds"] == pytest.approx(now.timestamp())


def test_gateway_metrics_show_queue_depths_and_what_workers_stored(
    redis_url: str, redis_client: redis.Redis, clean_metrics: MetricsWriter
) -> None:
    # Given two messages waiting in the maintenance queue and a counter a worker stored
    from tasks.app import app
    from tasks.names import PURGE_PROCESSED_EVENTS

    redis_client.delete("maintenance")
    for _ in range(2):
        app.send_task(PURGE_PROCESSED_EVENTS)
    clean_metrics.incr("marketbot_payments_total", {"outcome": "paid"})

    with FakeTelegram() as telegram:
        env = gateway_env(redis_url, telegram.base_url)

        async def scenario(http: Any, base: str) -> str:
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                return str(await response.text())

        text = run_with_gateway(env, scenario)
    redis_client.delete("maintenance")

    samples = _samples(text)
    assert samples[("marketbot_queue_messages", (("queue", "maintenance"),))] == 2
    assert ("marketbot_queue_messages", (("queue", "interactive"),)) in samples
    assert samples[("marketbot_payments_total", (("outcome", "paid"),))] == 1
    assert "marketbot_gateway_webhook_requests_total" in text  # the gateway's own metrics are still there
