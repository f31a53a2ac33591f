"""Alembic environment for MarketBot (driven by db.migrate; no alembic.ini).

The URL comes from the config attribute `database_url` (set by db.migrate), else `sqlalchemy.url`, else the
DATABASE_URL environment variable. A caller may also pass an open `connection` attribute to migrate inside
its own transaction.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.pool import NullPool

from db.models import metadata
from db.session import make_engine, normalize_url

# pg_advisory_xact_lock key for "a migration is running" (the bytes of "mbmigrat" as a bigint). Several
# containers starting at once would otherwise race to create the same tables; with the lock they queue,
# and each one reads the current revision only after the previous one committed, so the late ones no-op.
MIGRATION_LOCK_KEY = 0x6D626D6967726174

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    url = url or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL: not set (and no URL given to the migration)")
    return normalize_url(str(url))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # Autogenerate also notices changed server defaults (they carry rules such as "status starts at
        # pending"); our defaults are simple literals, which compare reliably.
        compare_server_default=True,
        # One transaction for the whole run (PostgreSQL has transactional DDL): a failed migration leaves
        # the schema where it was, and the advisory lock below lasts until everything is committed.
        transaction_per_migration=False,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


def run_migrations_offline() -> None:
    """`--sql` mode: print the SQL instead of running it (for a DBA to review)."""
    context.configure(
        url=_database_url(),
        target_metadata=metadata,
        literal_binds=True,
        compare_type=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        context.run_migrations()


def run_migrations_online() -> None:
    given: Connection | None = config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    # No statement timeout: building an index on a large table may take minutes.
    engine = make_engine(_database_url(), poolclass=NullPool, statement_timeout_s=0)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
