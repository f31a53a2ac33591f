"""A pooled connection the server has ended is replaced before use; a live one is handed out without a ping.

db/session.py checks pooled connections itself instead of SQLAlchemy's pool_pre_ping, which costs a round
trip per checkout (as much as the conditional UPDATE a hold is built on). These tests end connections on a
real PostgreSQL the ways it ends them (terminate, idle time) and count the pings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import NullPool

from db import session as db_session
from db.session import make_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def admin(database_url: str) -> Iterator[Engine]:
    admin = make_engine(database_url, poolclass=NullPool)
    yield admin
    admin.dispose()


class PingCounter:
    def __init__(self, engine: Engine) -> None:
        self.pings = 0
        real = engine.dialect.do_ping

        def counting(dbapi_connection: DBAPIConnection) -> bool:
            self.pings += 1
            return bool(real(dbapi_connection))

        engine.dialect.do_ping = counting  # type: ignore[method-assign]


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_backend_pid()")))


def _settle(admin: Engine, pid: int) -> None:
    """Wait until the server has finished with backend `pid` (its notice and close are on the socket)."""
    deadline = time.monotonic() + 10
    with admin.connect() as conn:
        while conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}):
            assert time.monotonic() < deadline, f"backend {pid} did not exit"
            time.sleep(0.01)


def test_a_connection_in_steady_use_is_handed_out_without_a_ping(engine: Engine) -> None:
    counter = PingCounter(engine)
    pids = {_backend_pid(engine) for _ in range(20)}
    assert len(pids) == 1  # the same pooled connection every time
    assert counter.pings == 0


def test_a_connection_the_server_terminated_is_replaced_before_the_caller_sees_it(
    engine: Engine, admin: Engine
) -> None:
    counter = PingCounter(engine)
    pid = _backend_pid(engine)
    with admin.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    _settle(admin, pid)

    new_pid = _backend_pid(engine)  # no error reaches the caller

    assert new_pid != pid
    assert counter.pings == 1  # the server's goodbye on the socket triggered the one ping, which failed


def test_a_connection_idle_past_the_threshold_is_pinged_and_kept_when_alive(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = PingCounter(engine)
    pid = _backend_pid(engine)
    monkeypatch.setattr(db_session, "IDLE_PING_S", 0.05)
    time.sleep(0.1)

    assert _backend_pid(engine) == pid
    assert counter.pings == 1
