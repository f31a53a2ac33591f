"""Real servers for every test: embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set.

With DATABASE_URL set, the suite creates (and afterwards drops) its own database on that server, so a
developer's data is never touched. With REDIS_URL set, it uses database MARKETBOT_TEST_REDIS_DB (15) of that
server and flushes it at start. The resulting URLs are exported to os.environ so worker and gateway
subprocesses started by tests reach the same servers.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from marketbot.embedded import EmbeddedServers, drop_database, ensure_database
from marketbot.settings import normalize_database_url


def _with_redis_db(url: str, db: int) -> str:
    if url.startswith("unix://"):
        return url.split("?", 1)[0] + f"?db={db}"
    base, _, _ = url.rpartition("/") if url.count("/") > 2 else (url, "", "")
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def _servers() -> Iterator[dict[str, str]]:
    external_db = os.environ.get("DATABASE_URL")
    external_redis = os.environ.get("REDIS_URL")
    embedded = EmbeddedServers(Path(tempfile.mkdtemp(prefix="marketbot-test-")))
    test_db = f"marketbot_test_{uuid.uuid4().hex[:8]}"
    admin_url = external_db or embedded.start_postgres(database="postgres")
    ensure_database(admin_url, test_db)
    db_url = _replace_database(admin_url, test_db)
    if external_redis:
        redis_url = _with_redis_db(external_redis, int(os.environ.get("MARKETBOT_TEST_REDIS_DB", "15")))
    else:
        redis_url = embedded.start_redis()
    redis.Redis.from_url(redis_url).flushdb()
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    os.environ["DATABASE_URL"] = db_url
    os.environ["REDIS_URL"] = redis_url
    os.environ.pop("CELERY_BROKER_URL", None)
    try:
        yield {"database_url": db_url, "redis_url": redis_url}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        try:
            drop_database(admin_url, test_db)
        finally:
            embedded.stop()


def _replace_database(url: str, database: str) -> str:
    """Swap the database name in a PostgreSQL URL (host/port/query kept)."""
    head, sep, query = url.partition("?")
    prefix, _, _old = head.rpartition("/")
    return f"{prefix}/{database}{sep}{query}"


@pytest.fixture(scope="session")
def database_url(_servers: dict[str, str]) -> str:
    """A fresh database migrated to head (SQLAlchemy URL, psycopg2 driver)."""
    from db.migrate import upgrade

    url = normalize_database_url(_servers["database_url"])
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def redis_url(_servers: dict[str, str]) -> str:
    return _servers["redis_url"]


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()
