"""Fixtures for the database layer's integration tests (real PostgreSQL, migrated to head).

Tests share one database. Those that commit use random Telegram ids (and rows hanging off them) so they
never collide; those that only need to look use `session`, which is rolled back at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_session_factory
from marketbot.embedded import drop_database, ensure_database
from tests.integration.db.builders import random_telegram_id


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is always rolled back: the test leaves nothing behind."""
    s = session_factory()
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture
def telegram_id() -> int:
    return random_telegram_id()


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def throwaway_database(database_url: str) -> Iterator[str]:
    """A new, empty database on the same server as `database_url`, dropped afterwards."""
    name = f"marketbot_scratch_{uuid.uuid4().hex[:8]}"
    url = make_url(database_url)
    admin_url = url.set(database="postgres").render_as_string(hide_password=False)
    ensure_database(admin_url, name)
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        drop_database(admin_url, name)
