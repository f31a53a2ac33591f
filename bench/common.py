"""What every benchmark shares: servers, the stack of real processes, pacing, percentiles, figures.

Our machines are shared and noisy, so a benchmark reports each figure next to a raw baseline measured in
the same run on the same servers; `Figure` carries both, the ratio, the issue's target and whether it was
met. Each benchmark module exposes `run(servers, quick) -> list[Figure]` for the suite (`bench.suite`) and a
`main()` for running it alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil
import redis

from marketbot.embedded import EmbeddedServers, drop_database, ensure_database
from marketbot.fakes.telegram import FakeTelegram
from marketbot.harness import Process, text_update
from marketbot.local_stack import Stack, local_stack, redis_url_with_db
from marketbot.local_stack import bot_api as local_stack_bot_api
from marketbot.settings import normalize_database_url

BOT_TOKEN = "123456:BENCH"
SECRET = "bench-secret"
STRIPE_WEBHOOK_SECRET = "whsec_bench"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class Figure:
    """One measured figure, with its same-run baseline and the issue's target."""

    benchmark: str
    name: str
    value: float
    unit: str
    baseline_name: str | None = None
    baseline: float | None = None
    ratio: float | None = None  # value / baseline, or baseline / value for latencies (always "ours vs raw")
    target: str | None = None
    passed: bool | None = None  # None: informational (no target)
    note: str = ""

    def line(self) -> str:
        parts = [f"{self.benchmark}: {self.name} = {self.value:,.2f} {self.unit}"]
        if self.baseline is not None:
            parts.append(f"baseline {self.baseline_name} = {self.baseline:,.2f}")
        if self.ratio is not None:
            parts.append(f"ratio {self.ratio:.2f}")
        if self.target:
            parts.append(f"target {self.target}: {'PASS' if self.passed else 'FAIL'}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def healthz_round_trips_ms(gateway_url: str, n: int = 100) -> list[float]:
    """The same-run baseline of the latency benchmarks: bare HTTP round trips to the gateway's /healthz."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{gateway_url}/healthz", timeout=5) as response:
            response.read()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank: a p99 of 100 samples is the 99th smallest."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


# -- servers -------------------------------------------------------------------------------------------------


@dataclass
class Servers:
    """PostgreSQL and Redis for the whole suite: embedded unless DATABASE_URL / REDIS_URL are set.

    Each benchmark gets a database of its own (created, migrated, dropped) and a Redis database it flushes,
    so one benchmark's 100,000 offers never slow another's queries."""

    admin_url: str
    redis_server_url: str
    _embedded: EmbeddedServers | None = None
    _databases: list[str] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def start(cls) -> Iterator[Servers]:
        embedded = EmbeddedServers(tempfile.mkdtemp(prefix="marketbot-bench-"))
        try:
            admin = os.environ.get("DATABASE_URL") or embedded.start_postgres("postgres")
            redis_url = os.environ.get("REDIS_URL") or embedded.start_redis()
            servers = cls(normalize_database_url(admin), redis_url, embedded)
            try:
                yield servers
            finally:
                for name in servers._databases:
                    with contextlib.suppress(Exception):
                        drop_database(servers.admin_url, name)
        finally:
            embedded.stop()

    def database(self, name: str) -> str:
        """A fresh, migrated database `bench_<name>`; returns its URL."""
        from db.migrate import upgrade

        database = f"bench_{name}"
        drop_database(self.admin_url, database)
        ensure_database(self.admin_url, database)
        self._databases.append(database)
        url = _with_database(self.admin_url, database)
        upgrade(url)
        return url

    def redis(self, db: int) -> str:
        """Redis database `db` of the server, flushed."""
        url = redis_url_with_db(self.redis_server_url, db)
        redis.Redis.from_url(url).flushdb()
        return url

    def versions(self) -> dict[str, str]:
        import psycopg2

        conn = psycopg2.connect(self.admin_url.replace("postgresql+psycopg2://", "postgresql://"))
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                row = cur.fetchone()
                pg = str(row[0]) if row else "?"
        finally:
            conn.close()
        info = redis.Redis.from_url(self.redis_server_url).info("server")
        return {"postgresql": pg, "redis": str(info.get("redis_version"))}


def _with_database(url: str, database: str) -> str:
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


# -- the stack of real processes (marketbot.local_stack) ----------------------------------------------------


@contextlib.contextmanager
def stack(
    database_url: str,
    redis_url: str,
    *,
    gateways: int = 1,
    workers: int = 1,
    worker_concurrency: int = 2,
    worker_queues: str | None = None,
    outbound_threads: int = 0,
    with_stripe: bool = False,
    telegram_limits: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Fake Telegram (and Stripe), `gateways` × `marketbot gateway`, `workers` × `marketbot worker`; the
    benchmark POSTs updates to the gateways itself, as Telegram would."""
    with local_stack(
        database_url,
        redis_url,
        bot_token=BOT_TOKEN,
        webhook_secret=SECRET,
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET if with_stripe else None,
        gateways=gateways,
        workers=workers,
        worker_concurrency=worker_concurrency,
        worker_queues=worker_queues,
        outbound_threads=outbound_threads,
        telegram_limits=telegram_limits,
        extra_env={
            "LOG_LEVEL": "WARNING",
            # Benchmarks send many updates per simulated user (e.g. /start then Buy); never throttle them.
            "USER_RATE_LIMIT": "1000",
            **(extra_env or {}),
        },
    ) as started:
        yield started


def bot_api(telegram: FakeTelegram, method: str, params: dict[str, Any]) -> Any:
    return local_stack_bot_api(telegram, BOT_TOKEN, method, params)


def start_update(user_id: int, update_id: int) -> bytes:
    return json.dumps(text_update(user_id, "/start", update_id=update_id, first_name="Bench")).encode()


def post_update(url: str, body: bytes, timeout: float = 10) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", SECRET_HEADER: SECRET}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)


def paced(rate: float, duration: float, action: Callable[[int], None], *, threads: int = 32) -> int:
    """Call `action(i)` at a steady `rate` per second for `duration` seconds (open loop: a slow action does
    not delay the next one's start, as real users don't wait for each other). Returns the number started."""
    total = int(rate * duration)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for i in range(total):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(action, i)
    return total


def rss_mb(pid: int, *, children: bool = False) -> float:
    """Resident memory of a process (MB); with `children`, the largest of its child processes instead."""
    proc = psutil.Process(pid)
    if children:
        kids = proc.children(recursive=True)
        return max((k.memory_info().rss for k in kids), default=0) / 2**20
    return float(proc.memory_info().rss) / 2**20


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def print_figures(figures: list[Figure]) -> None:
    for figure in figures:
        print(figure.line(), flush=True)


def standalone(run: Callable[[Servers, bool], list[Figure]]) -> int:
    """`main()` for one benchmark: `--quick` for a short run; servers started and stopped around it."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short run: does it work, not how fast")
    args = parser.parse_args()
    with Servers.start() as servers:
        print_figures(run(servers, args.quick))
    return 0


class ModuleProcess(Process):
    """A child `python -m <module> …` (a benchmark's own server or worker), kept like harness.Process."""

    def __init__(self, name: str, module: str, argv: list[str], env: dict[str, str]) -> None:
        import subprocess
        import sys
        import threading
        from collections import deque

        from marketbot.harness import ROOT

        self.name = name
        self.output: deque[str] = deque(maxlen=400)
        self._ready_marks: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *argv],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Set environment variables for this process (settings are read from the environment) and restore."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
