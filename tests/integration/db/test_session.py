"""make_engine accepts every PostgreSQL URL spelling operators use and always picks psycopg2."""

from __future__ import annotations

import pytest

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
