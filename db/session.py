"""Engine and session factory: one engine per process, sessions handed out by the unit of work.

Create the engine in the process that uses it. A Celery prefork child must not inherit its parent's pooled
connections (two processes would share one socket); build the engine after the fork, e.g. in
`worker_process_init`, or call `engine.dispose(close=False)` there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# Enough for a worker process running a handful of threads; a pool much larger than the work in flight
# only holds idle server connections (PostgreSQL's max_connections is shared by every container).
DEFAULT_POOL_SIZE = 5
DEFAULT_MAX_OVERFLOW = 5
# Recycle well before typical NAT/firewall idle timeouts silently cut a pooled connection.
DEFAULT_POOL_RECYCLE_S = 1800

_LIBPQ_PREFIXES = ("postgresql://", "postgres://")


def normalize_url(url: str) -> str:
    """Pin the psycopg2 driver: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which we don't ship.

    `postgres://` (Heroku-style) is accepted too; SQLAlchemy itself rejects that scheme.
    """
    for prefix in _LIBPQ_PREFIXES:
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kw: Any) -> Engine:
    """An engine for `url` (any PostgreSQL URL spelling); keyword arguments override our defaults.

    Connections run with `TimeZone=UTC`, so timestamps come back as tz-aware datetimes in UTC whatever the
    server's default is (an explicit `options` in the URL or `connect_args` wins).
    """
    url = normalize_url(url)
    kw.setdefault("pool_pre_ping", True)
    if "poolclass" not in kw:  # NullPool/StaticPool reject the sizing arguments
        kw.setdefault("pool_size", DEFAULT_POOL_SIZE)
        kw.setdefault("max_overflow", DEFAULT_MAX_OVERFLOW)
        kw.setdefault("pool_recycle", DEFAULT_POOL_RECYCLE_S)
    connect_args: dict[str, Any] = dict(kw.pop("connect_args", None) or {})
    query = make_url(url).query
    if "options" not in connect_args and "options" not in query:
        connect_args["options"] = "-c timezone=UTC"
    if "application_name" not in connect_args and "application_name" not in query:
        # Names our sessions in pg_stat_activity, which is where one looks for a stuck lock holder.
        connect_args["application_name"] = "marketbot"
    return create_engine(url, connect_args=connect_args, **kw)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit.

    expire_on_commit=False: handlers commit and then build replies (or outbox ids to enqueue) from the rows
    they just wrote; expiring would turn each attribute read into a query on a closed unit of work.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)
