"""Redis and PostgreSQL restarted under a running gateway and worker: nothing is lost, work resumes by itself.

The outage without running workers (they start after Redis returns) is tests/e2e/test_broker_outage.py;
here the same processes live through the restart, which is where Celery has been known to stop consuming
after a reconnect (celery#8030).
"""

from __future__ import annotations

import re
import time

import pytest

from marketbot.harness import text_update
from tests.faults.conftest import FaultStack, new_user_id, wait_until

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
def test_redis_restart_refuses_updates_while_away_and_workers_consume_again_after(stack: FaultStack) -> None:
    """Injects: Redis (mailbox and broker) stopped, then started again on the same socket and data while the
    gateway and the worker keep running. Checks: /readyz says 503 naming redis and broker; a webhook POST
    gets a 5xx (so Telegram keeps the update); after the restart the same update is accepted and answered,
    and an update sent after the restart is answered within seconds by the same worker process."""
    worker_pid = stack.worker.proc.pid
    stack.redis_server.stop()
    try:
        _, body = wait_until(
            lambda: (r := stack.readyz())[0] == 503 and r, timeout=30, what="/readyz reports the outage"
        )
        assert body["checks"]["redis"].startswith("unavailable")
        assert body["checks"]["broker"].startswith("unavailable")
        assert body["checks"]["database"] == "ok"

        refused_user = new_user_id()
        refused = text_update(refused_user, "/start", first_name="Away")
        assert stack.post_update(refused) >= 500
    finally:
        stack.redis_server.start()

    wait_until(lambda: stack.readyz()[0] == 200, timeout=30, what="/readyz is ready again")
    # The worker really lost its broker connection (else this test would prove nothing about reconnecting)
    wait_until(
        lambda: any("Connection to broker lost" in line for line in list(stack.worker.output)),
        timeout=30,
        what="the worker noticed the outage",
    )
    # Telegram's redelivery of the refused update is not mistaken for a duplicate
    assert stack.post_update(refused) == 200
    stack.wait_for_reply(refused_user, "Welcome to MarketBot, Away!", timeout=60)

    after_user = new_user_id()
    started = time.monotonic()
    stack.telegram.send_user_message(after_user, "/start", first_name="Back")
    stack.wait_for_reply(after_user, "Welcome to MarketBot, Back!", timeout=60)
    assert time.monotonic() - started < 30, "the worker took too long to consume again"
    assert stack.worker.proc.pid == worker_pid and stack.worker.proc.poll() is None
    assert len(stack.sent_to(refused_user)) == 1 and len(stack.sent_to(after_user)) == 1


_RETRY = re.compile(r"drain_user_mailbox\[[^\]]+\] retry: Retry in (\d+(?:\.\d+)?)s")


def _drain_retries(stack: FaultStack, update_id: int) -> list[float]:
    """The waits of this update's drain retries, from Celery's log lines (correlation id tg-<update id>)."""
    return [
        float(m.group(1))
        for line in list(stack.worker.output)
        if f"tg-{update_id}" in line and (m := _RETRY.search(line))
    ]


@pytest.mark.timeout(240)
def test_postgres_restart_delays_the_reply_with_bounded_retries_and_loses_nothing(stack: FaultStack) -> None:
    """Injects: PostgreSQL stopped while a user writes, started again later (same data, same socket).
    Checks: the gateway accepts the update (200, it needs no database); the worker's task fails and is
    retried with backoff (several retries, each waiting at most the 30 s cap, no busy loop); once the
    database is back the reply arrives, exactly once."""
    stack.postgres.stop()
    user = new_user_id()
    try:
        update = stack.telegram.send_user_message(user, "/start", first_name="Patient")
        wait_until(
            lambda: (update["update_id"], 200) in stack.telegram.webhook_deliveries,
            timeout=30,
            what="the gateway accepts the update while the database is down",
        )
        wait_until(
            lambda: len(_drain_retries(stack, update["update_id"])) >= 3,
            timeout=90,
            what=f"the drain task retries while the database is down:\n{stack.worker.tail(30)}",
        )
        assert stack.sent_to(user) == []
    finally:
        stack.postgres.start()

    stack.wait_for_reply(user, "Welcome to MarketBot, Patient!", timeout=90)
    waits = _drain_retries(stack, update["update_id"])
    assert all(0 <= w <= 30 for w in waits), waits
    assert len(waits) < 20, f"retrying too eagerly: {waits}"
    time.sleep(1.0)  # a duplicated reply would follow right behind
    assert len(stack.sent_to(user)) == 1
    rows = stack.rows("SELECT status FROM outbox WHERE chat_id = :c", c=user)
    assert [r.status for r in rows] == ["sent"]
