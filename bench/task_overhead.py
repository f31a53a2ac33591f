"""Our interactive task path with a no-op use case vs a bare Celery no-op task, same broker and worker.

    python -m bench.task_overhead [--quick]

One worker (`bench.noop_worker`: our Celery app and settings — acks late, prefetch 1, JSON, prefork -c 2 —
with `apply_mailbox_entry` replaced by a no-op) drains a pre-filled `interactive` queue. "Ours": N users
each with one command in their mailbox (stored by the gateway's own `mailbox.post`) and one
`drain_user_mailbox` task, so each task takes the user's lock and fencing token, reads the head, acks the
entry, releases and re-checks, as in production. Baseline: N bare no-op tasks published the same way. The
clock runs from the first message taken to the queue and the un-acked set both being empty, so worker
start-up is not counted. Target (issue: benchmarks): ours ≥ 70% of bare throughput.
"""

from __future__ import annotations

import asyncio
import json
import time

import redis
import redis.asyncio

from bench.common import BOT_TOKEN, Figure, ModuleProcess, Servers, environment, standalone
from bench.noop_worker import BARE_NOOP
from tasks.names import DRAIN_USER_MAILBOX, QUEUE_INTERACTIVE

REDIS_DB = 3


def _fill(redis_url: str, kind: str, n: int) -> None:
    from celery import Celery

    from marketbot.settings import load_settings
    from tasks import mailbox
    from tasks.app import celery_config

    app = Celery("bench-publisher")
    app.conf.update(celery_config(load_settings()))
    first_user = 5 * 10**9
    if kind == "ours":

        async def post_all() -> None:
            client = redis.asyncio.Redis.from_url(redis_url)
            for i in range(n):
                command = json.dumps({"kind": "bench", "update_id": 10**8 + i})
                await mailbox.post(client, first_user + i, 10**8 + i, command)
            await client.aclose()

        asyncio.run(post_all())
    with app.producer_or_acquire() as producer:
        for i in range(n):
            if kind == "ours":
                app.send_task(DRAIN_USER_MAILBOX, args=[first_user + i], producer=producer)
            else:
                app.send_task(BARE_NOOP, args=[first_user + i], queue=QUEUE_INTERACTIVE, producer=producer)


def _drain_rate(redis_url: str, env: dict[str, str], n: int) -> float:
    """Start the worker on the pre-filled queue; tasks per second from the first take to the last ack."""
    client = redis.Redis.from_url(redis_url)
    assert client.llen(QUEUE_INTERACTIVE) == n, "the queue was not filled as expected"
    worker = ModuleProcess("noop-worker", "bench.noop_worker", ["--concurrency", "2"], env)
    try:
        first = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            waiting = client.llen(QUEUE_INTERACTIVE)
            now = time.perf_counter()
            if first is None and waiting < n:
                first = now
            if first is not None and waiting == 0 and client.hlen("unacked") == 0:
                return n / (now - first)
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker exited:\n{worker.tail()}")
            time.sleep(0.002)
        raise TimeoutError(f"the worker did not drain {n} tasks:\n{worker.tail()}")
    finally:
        worker.stop()


def run(servers: Servers, quick: bool) -> list[Figure]:
    database_url = servers.database("task_overhead")
    n = 400 if quick else 2000
    rates: dict[str, float] = {}
    for kind in ("bare", "ours", "bare2", "ours2") if not quick else ("bare", "ours"):
        redis_url = servers.redis(REDIS_DB)
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "LOG_LEVEL": "WARNING",
        }
        with environment(env):
            _fill(redis_url, kind.rstrip("2"), n)
        rates.setdefault(kind.rstrip("2"), 0.0)
        # Alternating runs, best of each: the machine is shared, and a neighbour's burst should not decide.
        rates[kind.rstrip("2")] = max(rates[kind.rstrip("2")], _drain_rate(redis_url, env, n))
    ratio = rates["ours"] / rates["bare"]
    return [
        Figure(
            "task overhead",
            "interactive drain task, no-op use case",
            rates["ours"],
            "tasks/s",
            "bare Celery no-op task",
            rates["bare"],
            ratio,
            "≥ 70% of bare",
            ratio >= 0.7,
            note=f"{n} tasks, prefork -c 2, best of {'1' if quick else '2'} alternating runs",
        )
    ]


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
