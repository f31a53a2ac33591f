"""Memory after many tasks, and time from process start to ready.

    python -m bench.memory_start [--quick]

Start: a `marketbot gateway` (until /healthz answers, webhook registered) and a `marketbot worker`
(until Celery prints "ready."), each timed from the process start; baseline: a bare `python -c pass`.
Also, without a target: a worker of docker-compose.yml's `worker-interactive` queues (interactive,payments),
which loads no Telegram client (only the outbound queue's workers send).
Memory: the gateway receives N `/start` updates (distinct users, 16 concurrent senders) and one worker
(prefork -c 2, interactive queue only, so replies stay in the outbox) applies them; the RSS of the gateway
and of the largest worker child is read after the first checkpoint (10,000) and the second (50,000).
Targets (issue: benchmarks): gateway ≤ 100 MB, worker ≤ 150 MB, growth ≤ 5%; ready ≤ 2 s.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time

import aiohttp

from bench.common import (
    SECRET,
    SECRET_HEADER,
    Figure,
    Servers,
    median,
    rss_mb,
    stack,
    standalone,
    start_update,
)
from bench.contention import _count
from marketbot.harness import free_port, start_gateway, start_worker
from tasks.names import QUEUE_INTERACTIVE, QUEUE_PAYMENTS

REDIS_DB = 9
_ids = itertools.count(3 * 10**9)


async def _post_many(url: str, n: int) -> None:
    headers = {"Content-Type": "application/json", SECRET_HEADER: SECRET}
    queue = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:

        async def sender() -> None:
            for _ in queue:
                update_id = next(_ids)
                async with session.post(url, data=start_update(update_id, update_id), headers=headers) as r:
                    await r.read()

        await asyncio.gather(*(sender() for _ in range(16)))


def _wait_applied(url: str, target: int, stall_s: float = 60.0) -> int:
    """Wait until the worker has applied `target` updates, for as long as it keeps making progress; returns
    the count applied."""
    last, last_change = -1, time.monotonic()
    while (applied := _count(url, "SELECT count(*) FROM processed_events")) < target:
        if applied != last:
            last, last_change = applied, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            return applied  # stalled: the count applied is reported and the figure shows it
        time.sleep(1.0)
    return applied


def _start_times(env: dict[str, str]) -> tuple[float, float, float, float]:
    bare = []
    for _ in range(3):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.monotonic() - t0)
    t0 = time.monotonic()
    port = free_port()
    gateway = start_gateway({**env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}, port=port, name="g-start")
    gateway_s = time.monotonic() - t0
    gateway.stop()
    t0 = time.monotonic()
    worker = start_worker(env, name="w-start", concurrency=2)
    worker_s = time.monotonic() - t0
    worker.stop()
    t0 = time.monotonic()
    queues = f"{QUEUE_INTERACTIVE},{QUEUE_PAYMENTS}"
    worker = start_worker(env, name="w-start-interactive", concurrency=2, queues=queues)
    interactive_s = time.monotonic() - t0
    worker.stop()
    return gateway_s, worker_s, interactive_s, median(bare)


def run(servers: Servers, quick: bool) -> list[Figure]:
    url = servers.database("memory_start")
    redis_url = servers.redis(REDIS_DB)
    first, second = (200, 1000) if quick else (10_000, 50_000)
    figures: list[Figure] = []
    with stack(url, redis_url, worker_queues="interactive") as s:
        gateway_s, worker_s, interactive_s, bare_s = _start_times(s.env)
        gateway_pid = s.gateways[0].proc.pid
        worker_pid = s.workers[0].proc.pid
        rss: dict[str, list[float]] = {"gateway": [], "worker": []}
        applied_at: list[int] = []
        done = 0
        for checkpoint in (first, second):
            asyncio.run(_post_many(s.webhook_url, checkpoint - done))
            done = checkpoint
            rss["gateway"].append(rss_mb(gateway_pid))
            applied = _wait_applied(url, checkpoint)
            applied_at.append(applied)
            rss["worker"].append(rss_mb(worker_pid, children=True))
        figures.append(
            Figure(
                "memory and start",
                "worker tasks applied at the second checkpoint",
                applied,
                "tasks",
                note=f"checkpoints {first:,} and {second:,}",
            )
        )
    for name, limit in (("gateway", 100), ("worker", 150)):
        a, b = rss[name]
        growth = (b - a) / a
        figures.append(
            Figure(
                "memory and start",
                f"{name} RSS after {second:,}",
                b,
                "MB",
                f"after {first:,}",
                a,
                b / a,
                f"≤ {limit} MB, growth ≤ 5%",
                b <= limit and growth <= 0.05 and (name == "gateway" or applied_at[-1] >= second),
                f"growth {growth:+.1%}"
                + ("" if name == "gateway" else f"; tasks applied {applied_at[0]:,} and {applied_at[1]:,}"),
            )
        )
    for name, seconds in (("gateway", gateway_s), ("worker", worker_s)):
        figures.append(
            Figure(
                "memory and start",
                f"{name} start → ready",
                seconds,
                "s",
                "python -c pass",
                bare_s,
                seconds / bare_s,
                "≤ 2 s",
                seconds <= 2,
            )
        )
    figures.append(
        Figure(
            "memory and start",
            "worker start → ready, queues interactive,payments",
            interactive_s,
            "s",
            "python -c pass",
            bare_s,
            interactive_s / bare_s,
            note="docker-compose.yml's worker-interactive; no target of its own",
        )
    )
    return figures


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
