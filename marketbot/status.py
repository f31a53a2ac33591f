"""`marketbot status`: one screen an operator reads first when something seems wrong.

    queues         interactive 0 · payments 0 · outbound 3 · maintenance 0   (unacked 1)
    workers        2 answering: w0@host (12 ms), w1@host (15 ms)
    beat leader    host:4242 (lease 27 s left)
    unpaid holds   4, oldest 3 min 12 s
    dead letters   0 open
    outbox         3 pending · refunds 0 pending

Each section is gathered on its own: an unreachable broker or database is reported in its line and makes
the exit status 1, but never hides the other lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from marketbot.beat_leader import LEADER_KEY
from marketbot.settings import Settings
from tasks.names import ALL_QUEUES

_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@dataclass
class Status:
    queues: dict[str, int] = field(default_factory=dict)
    unacked: int | None = None
    workers: dict[str, float] = field(default_factory=dict)  # name → ping round trip in ms
    beat_leader: str | None = None
    beat_lease_seconds: float | None = None
    gauges: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _guard(status: Status, what: str, step: Callable[[], None]) -> None:
    try:
        step()
    except Exception as exc:  # reported, never fatal: the other sections still matter
        status.problems.append(f"{what}: {type(exc).__name__}: {exc}"[:200])


def gather(settings: Settings, *, ping_timeout: float = 1.5) -> Status:
    status = Status()
    client = redis.Redis.from_url(settings.require("redis_url"), socket_connect_timeout=2, socket_timeout=3)

    def queues() -> None:
        broker_url = settings.celery_broker_url_raw
        broker = client if broker_url is None else redis.Redis.from_url(broker_url, socket_connect_timeout=2)
        for queue in ALL_QUEUES:
            status.queues[queue] = sum(int(broker.llen(queue + suffix)) for suffix in _PRIORITY_SUFFIXES)
        status.unacked = int(broker.hlen("unacked"))

    def workers() -> None:
        from tasks.app import create_app

        app = create_app(settings)
        started = time.monotonic()
        replies = app.control.inspect(timeout=ping_timeout).ping() or {}
        elapsed_ms = (time.monotonic() - started) * 1000
        status.workers = {name: round(elapsed_ms, 1) for name in sorted(replies)}

    def beat() -> None:
        holder = client.get(LEADER_KEY)
        status.beat_leader = holder.decode() if isinstance(holder, bytes) else holder
        ttl_ms = int(client.pttl(LEADER_KEY))
        status.beat_lease_seconds = ttl_ms / 1000 if ttl_ms > 0 else None

    def database() -> None:
        from core.clock import utcnow
        from db.session import make_engine, make_session_factory
        from db.uow import SqlAlchemyUnitOfWork
        from tasks.metrics import compute_gauges

        engine = make_engine(settings.sqlalchemy_url)
        try:
            factory = make_session_factory(engine)
            status.gauges = compute_gauges(lambda: SqlAlchemyUnitOfWork(factory), now=utcnow())
        finally:
            engine.dispose()

    _guard(status, "queues", queues)
    _guard(status, "workers", workers)
    _guard(status, "beat", beat)
    _guard(status, "database", database)
    return status


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def render(status: Status) -> str:
    lines = []
    if status.queues:
        depth = " · ".join(f"{name} {count}" for name, count in status.queues.items())
        lines.append(f"queues         {depth}   (unacked {status.unacked})")
    if status.workers:
        names = ", ".join(status.workers)
        lines.append(f"workers        {len(status.workers)} answering: {names}")
    elif not any(p.startswith("workers") for p in status.problems):
        lines.append("workers        none answering (is any `marketbot worker` running?)")
    if status.beat_leader:
        lease = f" (lease {status.beat_lease_seconds:.0f} s left)" if status.beat_lease_seconds else ""
        lines.append(f"beat leader    {status.beat_leader}{lease}")
    else:
        lines.append("beat leader    none (no `marketbot beat` is scheduling the periodic jobs)")
    g = status.gauges
    if g:
        holds = int(g["marketbot_unpaid_holds"])
        oldest = _duration(g["marketbot_oldest_unpaid_hold_seconds"]) if holds else "-"
        lines.append(f"unpaid holds   {holds}, oldest {oldest}")
        lines.append(f"dead letters   {int(g['marketbot_dead_letters_open'])} open (marketbot dead-letters)")
        lines.append(
            f"outbox         {int(g['marketbot_outbox_pending'])} pending · "
            f"refunds {int(g['marketbot_refunds_pending'])} pending"
        )
    for problem in status.problems:
        lines.append(f"unavailable    {problem}")
    return "\n".join(lines)


def as_json(status: Status) -> str:
    data: dict[str, Any] = asdict(status)
    return json.dumps(data, indent=2, sort_keys=True)
