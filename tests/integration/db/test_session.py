"""make_engine accepts every PostgreSQL URL spelling operators use and always picks psycopg2."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from db.session import make_engine, normalize_url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:secret@db:5432/marketbot",
        "postgres://app:secret@db:5432/marketbot",
        "postgresql+psycopg2://app:secret@db:5432/marketbot",
    ],
)
def test_engine_uses_psycopg2_for_any_postgres_url(url: str) -> None:
    engine = make_engine(url)
    try:
        assert engine.url.drivername == "postgresql+psycopg2"
        assert (engine.url.host, engine.url.database) == ("db", "marketbot")
        assert not engine.pool._pre_ping  # our own liveness check instead (test_connection_liveness.py)
    finally:
        engine.dispose()


def test_unix_socket_urls_keep_their_host_parameter() -> None:
    url = "postgresql://postgres:@/marketbot?host=/tmp/pgdata"
    assert normalize_url(url) == "postgresql+psycopg2://postgres:@/marketbot?host=/tmp/pgdata"


def test_connections_carry_a_statement_timeout_that_cancels_a_stuck_statement(database_url: str) -> None:
    """A statement stuck past the timeout (here a sleep, in life usually a lock wait) ends with an error the
    task can retry instead of pinning its worker; the default leaves every real statement far inside it."""
    default = make_engine(database_url, poolclass=NullPool)
    short = make_engine(database_url, poolclass=NullPool, statement_timeout_s=0.2)
    try:
        with default.connect() as conn:
            assert conn.scalar(text("SHOW statement_timeout")) == "1min"
            assert conn.scalar(text("SHOW idle_in_transaction_session_timeout")) == "5min"
            assert conn.scalar(text("SHOW TimeZone")) == "UTC"
        with short.connect() as conn, pytest.raises(OperationalError, match="statement timeout"):
            conn.execute(text("SELECT pg_sleep(2)"))
    finally:
        default.dispose()
        short.dispose()
