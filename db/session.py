"""Engine and session factory: one engine per process, sessions handed out by the unit of work.

Create the engine in the process that uses it. A Celery prefork child must not inherit its parent's pooled
connections (two processes would share one socket); build the engine after the fork, e.g. in
`worker_process_init`, or call `engine.dispose(close=False)` there.
"""

from __future__ import annotations

import functools
import select
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

# Enough for a worker process running a handful of threads; a pool much larger than the work in flight
# only holds idle server connections (PostgreSQL's max_connections is shared by every container).
DEFAULT_POOL_SIZE = 5
DEFAULT_MAX_OVERFLOW = 5
# Recycle well before typical NAT/firewall idle timeouts silently cut a pooled connection.
DEFAULT_POOL_RECYCLE_S = 1800

# A pooled connection idle at least this long is pinged (a `SELECT 1` round trip) before it is handed out;
# one used more recently is only checked for a word from the server (see `_check_liveness`). PgBouncer's
# `server_check_delay` makes the same trade with the same default.
IDLE_PING_S = 30.0
_IDLE_SINCE = "marketbot_idle_since"  # in the pool entry's info, which is cleared with its connection

# No statement of ours should take anywhere near this: the longest are the sweep's 5,000-row batches, well
# under a second. A statement past it (often one waiting for a lock a stuck transaction holds) is cancelled
# with an error its task can retry, instead of pinning a worker thread or process indefinitely; Celery's
# time limits do not reach a threaded pool. Migrations run without a limit.
DEFAULT_STATEMENT_TIMEOUT_S = 60.0
# A session left inside a transaction this long (its process hung or died mid-task) is ended by the server,
# which releases its row locks so buyers and the sweep can go on.
IDLE_IN_TRANSACTION_TIMEOUT_S = 300.0

_LIBPQ_PREFIXES = ("postgresql://", "postgres://")


def normalize_url(url: str) -> str:
    """Pin the psycopg2 driver: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which we don't ship.

    `postgres://` (Heroku-style) is accepted too; SQLAlchemy itself rejects that scheme.
    """
    for prefix in _LIBPQ_PREFIXES:
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S, **kw: Any) -> Engine:
    """An engine for `url` (any PostgreSQL URL spelling); keyword arguments override our defaults.

    Connections run with `TimeZone=UTC`, so timestamps come back as tz-aware datetimes in UTC whatever the
    server's default is, with `statement_timeout` (0: none) and `idle_in_transaction_session_timeout` set
    (an explicit `options` in the URL or `connect_args` replaces all three).

    A connection the server has ended (a restart, a failover, `pg_terminate_backend`) is replaced before it
    is handed out, as SQLAlchemy's `pool_pre_ping` would, but without a round trip for a connection that was
    in use moments ago (see `_check_liveness`). `pool_pre_ping=True` asks for the plain ping every time.
    """
    url = normalize_url(url)
    if "poolclass" not in kw:  # NullPool/StaticPool reject the sizing arguments
        kw.setdefault("pool_size", DEFAULT_POOL_SIZE)
        kw.setdefault("max_overflow", DEFAULT_MAX_OVERFLOW)
        kw.setdefault("pool_recycle", DEFAULT_POOL_RECYCLE_S)
    connect_args: dict[str, Any] = dict(kw.pop("connect_args", None) or {})
    query = make_url(url).query
    if "options" not in connect_args and "options" not in query:
        connect_args["options"] = (
            f"-c timezone=UTC -c statement_timeout={round(statement_timeout_s * 1000)}"
            f" -c idle_in_transaction_session_timeout={round(IDLE_IN_TRANSACTION_TIMEOUT_S * 1000)}"
        )
    if "application_name" not in connect_args and "application_name" not in query:
        # Names our sessions in pg_stat_activity, which is where one looks for a stuck lock holder.
        connect_args["application_name"] = "marketbot"
    engine = create_engine(url, connect_args=connect_args, **kw)
    if not kw.get("pool_pre_ping"):
        event.listen(engine.pool, "checkin", _mark_idle)
        event.listen(engine.pool, "checkout", functools.partial(_check_liveness, engine.dialect))
    return engine


def _mark_idle(dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
    entry.info[_IDLE_SINCE] = time.monotonic()


def _check_liveness(dialect: Dialect, dbapi_connection: Any, entry: ConnectionPoolEntry, proxy: Any) -> None:
    """Pool checkout: refuse a connection the server has ended, so the pool replaces it (and, as after a
    failed pre-ping, every connection older than it) instead of failing the caller's first statement.

    A `SELECT 1` round trip costs about as much as the conditional UPDATE a hold is built on, so it is paid
    only where it can find something: for a connection idle `IDLE_PING_S` or more (a silently dropped one,
    e.g. by a NAT), or one the server has written to while it was idle. An idle session gets nothing from
    PostgreSQL unless it is being ended (the FATAL notice and close of a shutdown, restart or terminate),
    and that check is one poll of the socket. A connection new from the server is not checked at all.
    """
    idle_since = entry.info.get(_IDLE_SINCE)
    if idle_since is None:
        return
    if time.monotonic() - idle_since < IDLE_PING_S and not _server_spoke(dbapi_connection):
        return
    try:
        dialect.do_ping(dbapi_connection)  # SQLAlchemy's own pre-ping: SELECT 1 outside any transaction
    except Exception as error:  # any failure here: the connection cannot be trusted with work
        raise exc.InvalidatePoolError(f"pooled connection failed its liveness check: {error}") from error


def _server_spoke(dbapi_connection: Any) -> bool:
    """True if the connection is known closed or its socket holds something unread (or has hung up)."""
    if dbapi_connection.closed:
        return True
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit.

    expire_on_commit=False: handlers commit and then build replies (or outbox ids to enqueue) from the rows
    they just wrote; expiring would turn each attribute read into a query on a closed unit of work.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)
