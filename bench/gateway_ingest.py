"""Webhook updates one gateway process answers per second, and its ack latency at a steady 500/s.

    python -m bench.gateway_ingest [--quick]

One real `marketbot gateway` (webhook mode, real Redis broker; no worker needed: ingest ends at the
broker) receives `/start` updates from distinct users over keep-alive connections, exactly as Telegram
posts them (secret-token header). Throughput: a closed loop of 32 concurrent senders for a fixed time.
Latency: an open loop at 500 updates/s, each measured from its scheduled send time (so a stall counts
for every update queued behind it). Same-run baseline: a bare aiohttp endpoint doing one Redis LPUSH
(`bench.bare_ingest`), driven by the same client. Targets (issue: benchmarks): ≥ 1,500 updates/s;
p99 ≤ 20 ms at 500/s.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import aiohttp

from bench.common import (
    SECRET,
    SECRET_HEADER,
    Figure,
    ModuleProcess,
    Servers,
    median,
    percentile,
    stack,
    standalone,
    start_update,
)
from marketbot.harness import free_port, wait_gateway_healthy

REDIS_DB = 4
CONCURRENCY = 32
STEADY_RATE = 500
_ids = itertools.count(10**8)
_failures: list[int] = []  # per open-loop run: updates not answered 200 (5xx: Telegram would redeliver)


async def _closed_loop(url: str, seconds: float) -> float:
    headers = {"Content-Type": "application/json", SECRET_HEADER: SECRET}
    done = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def sender() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                update_id = next(_ids)
                async with session.post(url, data=start_update(update_id, update_id), headers=headers) as r:
                    await r.read()
                    if r.status == 200:
                        done += 1

        started = time.monotonic()
        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
        return done / (time.monotonic() - started)


async def _open_loop(url: str, rate: float, seconds: float) -> list[float]:
    headers = {"Content-Type": "application/json", SECRET_HEADER: SECRET}
    latencies: list[float] = []
    failures: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(scheduled: float) -> None:
            nonlocal failures
            update_id = next(_ids)
            async with session.post(url, data=start_update(update_id, update_id), headers=headers) as r:
                await r.read()
                if r.status != 200:
                    failures[r.status] = failures.get(r.status, 0) + 1
            latencies.append((time.monotonic() - scheduled) * 1000)

        started = time.monotonic()
        pending = []
        for i in range(int(rate * seconds)):
            scheduled = started + i / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*pending)
    _failures.append(sum(failures.values()))
    return latencies


def _measure(url: str, seconds: float) -> tuple[float, list[float]]:
    asyncio.run(_closed_loop(url, 1.0))  # warm up: connections, caches, JIT-less but lazy imports
    throughput = asyncio.run(_closed_loop(url, seconds))
    latencies = asyncio.run(_open_loop(url, STEADY_RATE, seconds))
    return throughput, latencies


def run(servers: Servers, quick: bool) -> list[Figure]:
    database_url = servers.database("gateway_ingest")
    redis_url = servers.redis(REDIS_DB)
    seconds = 2.0 if quick else 10.0
    port = free_port()
    bare = ModuleProcess("bare-ingest", "bench.bare_ingest", ["--port", str(port), "--redis", redis_url], {})
    try:
        wait_gateway_healthy(bare, port, timeout=60)
        bare_tps, bare_lat = _measure(f"http://127.0.0.1:{port}/telegram/webhook", seconds)
    finally:
        bare.stop()
    redis_url = servers.redis(REDIS_DB)
    with stack(database_url, redis_url, workers=0) as s:
        ours_tps, ours_lat = _measure(s.webhook_url, seconds)
    p50, p99 = median(ours_lat), percentile(ours_lat, 99)
    bare_p50, bare_p99 = median(bare_lat), percentile(bare_lat, 99)
    return [
        Figure(
            "gateway ingest",
            f"webhook updates answered/s ({CONCURRENCY} concurrent senders)",
            ours_tps,
            "updates/s",
            "bare aiohttp + one Redis LPUSH",
            bare_tps,
            ours_tps / bare_tps,
            "≥ 1,500 updates/s",
            ours_tps >= 1500,
        ),
        Figure(
            "gateway ingest",
            f"ack latency p50 at {STEADY_RATE}/s",
            p50,
            "ms",
            "bare endpoint p50",
            bare_p50,
            p50 / bare_p50,
        ),
        Figure(
            "gateway ingest",
            f"ack latency p99 at {STEADY_RATE}/s",
            p99,
            "ms",
            "bare endpoint p99",
            bare_p99,
            p99 / bare_p99,
            "≤ 20 ms",
            p99 <= 20,
            note=f"not answered 200 at {STEADY_RATE}/s: ours {_failures[-1]}, bare {_failures[-2]}",
        ),
    ]


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
