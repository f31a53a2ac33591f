"""The migrations build exactly the schema the models describe, undo it cleanly, and tolerate a crowd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.pool import NullPool

from db.migrate import current, downgrade, head, upgrade
from db.models import metadata
from db.session import make_engine
from tests.integration.db.conftest import throwaway_database

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(ctx, metadata))


def _catalog(url: str) -> dict[str, set[tuple[str, ...]]]:
    """Columns, constraints (with definitions) and indexes of the public schema, as PostgreSQL sees them."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            columns = conn.execute(
                text(
                    "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, ''),"
                    " is_identity, coalesce(character_maximum_length::text, '')"
                    " FROM information_schema.columns"
                    " WHERE table_schema = 'public' AND table_name <> 'alembic_version'"
                )
            )
            constraints = conn.execute(
                text(
                    "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
                    " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
                    " WHERE n.nspname = 'public' AND c.conrelid::regclass::text <> 'alembic_version'"
                )
            )
            indexes = conn.execute(
                text(
                    "SELECT tablename, indexname, indexdef FROM pg_indexes"
                    " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            )
            return {
                "columns": {tuple(map(str, row)) for row in columns},
                "constraints": {tuple(map(str, row)) for row in constraints},
                "indexes": {tuple(map(str, row)) for row in indexes},
            }
    finally:
        engine.dispose()


def test_schema_matches_models_after_migration(database_url: str, engine: Engine) -> None:
    # Given the shared test database, migrated to head by the suite
    # When autogenerate compares it with the models
    differences = _differences(engine)
    # Then there is nothing left to migrate
    assert differences == []
    assert current(database_url) == head() == "0004"


def test_migration_builds_the_same_constraints_and_indexes_as_the_models(database_url: str) -> None:
    # Autogenerate ignores CHECK constraints; compare PostgreSQL's own view of both schemas instead.
    # Given a database built straight from the models
    with throwaway_database(database_url) as scratch_url:
        scratch = make_engine(scratch_url, poolclass=NullPool)
        try:
            metadata.create_all(scratch)
        finally:
            scratch.dispose()
        from_models = _catalog(scratch_url)
    # When it is compared with the migrated one
    from_migrations = _catalog(database_url)
    # Then every column, constraint (name and definition) and index is the same
    for kind in ("columns", "constraints", "indexes"):
        assert from_migrations[kind] == from_models[kind], kind


def test_downgrade_then_upgrade_round_trips(database_url: str) -> None:
    with throwaway_database(database_url) as url:
        # Given a database at head
        upgrade(url)
        assert current(url) == head()
        # When it is downgraded to base
        downgrade(url, "base")
        # Then only Alembic's bookkeeping table is left
        engine = make_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                assert inspect(conn).get_table_names() == ["alembic_version"]
            assert current(url) is None
            # And upgrading again rebuilds a schema identical to the models
            upgrade(url)
            assert current(url) == head()
            assert _differences(engine) == []
        finally:
            engine.dispose()


def test_containers_migrating_at_the_same_time_do_not_collide(database_url: str) -> None:
    # Separate processes, as containers are (Alembic's `context` is process-global: threads can't stand in).
    with throwaway_database(database_url) as url:
        # Given several services starting together against an empty database
        env = {**os.environ, "DATABASE_URL": url}
        # When they all run the migrations at once
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "db.migrate", "upgrade"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outcomes = [(run.wait(timeout=120), run.communicate()[1]) for run in runs]
        # Then the advisory lock queues them: all succeed and the schema is at head once
        assert [code for code, _ in outcomes] == [0, 0, 0, 0], [err for _, err in outcomes]
        assert current(url) == head()


def test_every_foreign_key_is_indexed(engine: Engine) -> None:
    # Without an index, deleting/locking a parent row scans the child table, and joins degrade with size.
    with engine.connect() as conn:
        inspector = inspect(conn)
        unindexed = []
        for table in inspector.get_table_names():
            leading_columns = [tuple(ix["column_names"]) for ix in inspector.get_indexes(table)]
            leading_columns += [tuple(uq["column_names"]) for uq in inspector.get_unique_constraints(table)]
            leading_columns.append(tuple(inspector.get_pk_constraint(table)["constrained_columns"]))
            for fk in inspector.get_foreign_keys(table):
                cols = tuple(fk["constrained_columns"])
                if not any(existing[: len(cols)] == cols for existing in leading_columns):
                    unindexed.append(f"{table}{cols}")
    assert unindexed == []


def test_every_timestamp_column_is_timezone_aware(engine: Engine) -> None:
    with engine.connect() as conn:
        naive = conn.execute(
            text(
                "SELECT table_name || '.' || column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'"
            )
        ).all()
    assert naive == []


def test_migrate_module_runs_from_the_command_line(database_url: str) -> None:
    # Given DATABASE_URL in the environment, as in a container
    env = {**os.environ, "DATABASE_URL": database_url}
    # When an operator runs the module
    result = subprocess.run(
        [sys.executable, "-m", "db.migrate", "current"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then it reports the revision
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == head()
