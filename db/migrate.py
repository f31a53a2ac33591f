"""Run Alembic migrations from code, without an alembic.ini.

    upgrade("postgresql://app:secret@db/marketbot")       # what `marketbot migrate` and the tests call
    python -m db.migrate upgrade                            # same, URL from DATABASE_URL
    python -m db.migrate revision -m "add offer ratings"    # autogenerate the next numbered migration

Safe to run from several containers starting at once: env.py serialises migrations on a PostgreSQL
advisory lock, and the ones that wait find the schema already at head.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from db.session import make_engine, normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at db/migrations, carrying the URL for env.py.

    The URL travels in `attributes`, not in `sqlalchemy.url`: ConfigParser would treat a `%` in a
    percent-encoded password as interpolation syntax.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["database_url"] = normalize_url(database_url)
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    engine = make_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    """The newest revision in db/migrations."""
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


def revision(database_url: str, message: str, *, autogenerate: bool = True) -> None:
    """Write the next migration, numbered after the current head (0001, 0002, ...) so files sort in order.

    With autogenerate the database must be at head; review the result by hand before committing it.
    """
    latest = head()
    rev_id = f"{int(latest) + 1:04d}" if latest and latest.isdigit() else None
    command.revision(alembic_config(database_url), message=message, autogenerate=autogenerate, rev_id=rev_id)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db.migrate", description="MarketBot migrations.")
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("upgrade", help="migrate up (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="migrate down to a revision ('-1', 'base', '0001')")
    down.add_argument("revision")
    sub.add_parser("current", help="print the database's revision")
    rev = sub.add_parser("revision", help="write a new migration")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--empty", action="store_true", help="do not autogenerate from the models")
    args = parser.parse_args(argv)

    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        print("DATABASE_URL: not set", file=sys.stderr)
        return 2
    if args.action == "upgrade":
        upgrade(database_url, args.revision)
    elif args.action == "downgrade":
        downgrade(database_url, args.revision)
    elif args.action == "current":
        print(current(database_url) or "(none)")
    else:
        revision(database_url, args.message, autogenerate=not args.empty)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
