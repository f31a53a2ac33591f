"""The backup-and-restore drill, against the suite's real PostgreSQL.

Given a database seeded through the app's own models, when infra/scripts/backup dumps it, the database is
dropped and infra/scripts/restore brings the dump back into a fresh database, then every table has the same
rows (counted, and checksummed here in Python, independently of the scripts' own manifest check).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.pool import NullPool

from core.clock import utcnow
from db.migrate import upgrade
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from marketbot.embedded import drop_database, ensure_database
from tests.deploy.conftest import SCRIPTS, libpq, pg_bin_dir_for
from tests.integration import seed
from tests.integration.order_seed import paid_order

pytestmark = pytest.mark.slow


def with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    return f"{head.rpartition('/')[0]}/{name}{sep}{query}"


def table_fingerprints(url: str) -> dict[str, tuple[int, str]]:
    """table → (rows, sha256 of the sorted rows as Python values): what a correct restore must reproduce."""
    conn = psycopg2.connect(libpq(url), options="-c timezone=UTC")
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
            )
            tables = [row[0] for row in cur.fetchall()]
            result = {}
            for table in tables:
                cur.execute(f'SELECT * FROM public."{table}"')
                rows = sorted(repr(row) for row in cur.fetchall())
                result[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
            return result
    finally:
        conn.close()


@pytest.fixture
def source_database(database_url: str) -> Iterator[str]:
    """A scratch database next to the suite's, migrated to head and seeded through the app's models."""
    name = f"marketbot_drill_{uuid.uuid4().hex[:8]}"
    ensure_database(database_url, name)
    url = with_database(database_url, name)
    try:
        upgrade(url)
        engine = make_engine(url, poolclass=NullPool)
        factory = make_session_factory(engine)
        now = utcnow()
        with SqlAlchemyUnitOfWork(factory) as uow:
            owner = seed.user(uow, now, first_name="Owner")
            business = seed.verified_business(uow, owner, now, name="Fish & Chips")
            offers = [
                seed.offer(uow, business, now, title=f"Bag {i}", start=now + timedelta(hours=i))
                for i in range(3)
            ]
            for i in range(4):
                buyer = seed.user(uow, now, first_name=f"Buyer {i}")
                paid_order(uow, buyer, offers[i % 3], now, quantities=(1,))
            uow.commit()
        engine.dispose()
        yield url
    finally:
        drop_database(database_url, name)


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / script), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def script_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    bin_dir = pg_bin_dir_for(url)
    env.pop("PG_BIN_DIR", None)
    if bin_dir is not None:
        env["PG_BIN_DIR"] = str(bin_dir)
    env["DATABASE_URL"] = url
    env.update(extra)
    return env


def test_a_dropped_database_comes_back_whole_from_its_backup(
    source_database: str, database_url: str, tmp_path: Path
) -> None:
    # Given a seeded database and its fingerprints
    before = table_fingerprints(source_database)
    assert before["users"][0] == 5 and before["orders"][0] == 4 and before["payments"][0] == 4
    hook_log = tmp_path / "uploaded.txt"
    hook = tmp_path / "upload-hook"
    hook.write_text(f'#!/bin/sh\necho "$@" >> "{hook_log}"\n')
    hook.chmod(0o755)
    env = script_env(source_database, BACKUP_DIR=str(tmp_path / "backups"), BACKUP_UPLOAD_HOOK=str(hook))

    # When it is backed up and then dropped
    backup = run("backup", env=env)
    assert backup.returncode == 0, backup.stderr
    dump = Path(backup.stdout.strip().splitlines()[-1])
    manifest = dump.with_suffix(".manifest")
    assert dump.is_file() and manifest.is_file()
    assert oct(dump.stat().st_mode & 0o777) == "0o600"  # dumps hold personal data
    assert hook_log.read_text().split() == [str(dump), str(manifest)]
    manifest_rows = dict(line.split("\t")[:2] for line in manifest.read_text().splitlines())
    assert {t: int(n) for t, n in manifest_rows.items()} == {t: n for t, (n, _) in before.items()}
    drop_database(database_url, source_database.partition("?")[0].rpartition("/")[2])

    # Then restore creates a fresh database, verifies it against the manifest, and it matches ours too
    target = f"marketbot_restored_{uuid.uuid4().hex[:8]}"
    restore = run("restore", "--target-db", target, str(dump), env=script_env(database_url))
    try:
        assert restore.returncode == 0, restore.stderr
        assert restore.stdout.strip() == target
        assert "checksums equal" in restore.stderr
        assert table_fingerprints(with_database(database_url, target)) == before

        # and a second restore into the same name is refused: restore never overwrites a database
        again = run("restore", "--target-db", target, str(dump), env=script_env(database_url))
        assert again.returncode == 1 and "already exists" in again.stderr
    finally:
        drop_database(database_url, target)


def test_restore_fails_when_the_restored_rows_differ_from_the_manifest(
    source_database: str, database_url: str, tmp_path: Path
) -> None:
    env = script_env(source_database, BACKUP_DIR=str(tmp_path))
    backup = run("backup", env=env)
    assert backup.returncode == 0, backup.stderr
    dump = Path(backup.stdout.strip().splitlines()[-1])
    manifest = dump.with_suffix(".manifest")
    lines = manifest.read_text().splitlines()
    _table, rows, checksum = next(line.split("\t") for line in lines if line.startswith("users\t"))
    manifest.write_text(
        "\n".join(line for line in lines if not line.startswith("users\t"))
        + f"\nusers\t{int(rows) + 1}\t{checksum}\n"
    )

    target = f"marketbot_restored_{uuid.uuid4().hex[:8]}"
    try:
        restore = run("restore", "--target-db", target, str(dump), env=script_env(database_url))
        assert restore.returncode == 1
        assert "verification FAILED" in restore.stderr and "users" in restore.stderr
    finally:
        drop_database(database_url, target)


def test_backup_keeps_only_the_newest_backups(source_database: str, tmp_path: Path) -> None:
    env = script_env(source_database, BACKUP_DIR=str(tmp_path))
    old = ["marketbot-20200101T000000Z", "marketbot-20200102T000000Z", "marketbot-20200103T000000Z"]
    for name in old:
        (tmp_path / f"{name}.dump").write_bytes(b"old")
        (tmp_path / f"{name}.manifest").write_text("")
    (tmp_path / "unrelated.dump").write_bytes(b"not ours")

    backup = run("backup", "--keep", "2", env=env)

    assert backup.returncode == 0, backup.stderr
    newest = Path(backup.stdout.strip().splitlines()[-1]).name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            f"{old[2]}.dump",
            f"{old[2]}.manifest",
            newest,
            newest.replace(".dump", ".manifest"),
            "unrelated.dump",
        ]
    )


def test_scripts_explain_themselves_and_dry_run_touches_nothing(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    for script in ("backup", "restore"):
        usage = run(script, "--help", env=env)
        assert usage.returncode == 0 and usage.stdout.startswith("Usage:")
    dry = run("backup", "--dry-run", "--dir", str(tmp_path / "never"), env=env)
    assert dry.returncode == 0 and "dry run" in dry.stderr
    assert not (tmp_path / "never").exists()
    (tmp_path / "x.dump").write_bytes(b"")
    dry = run("restore", "--dry-run", "--no-verify", str(tmp_path / "x.dump"), env=env)
    assert dry.returncode == 0 and "would create database" in dry.stderr
    bad = run("backup", "--keep", "zero", env=env)
    assert bad.returncode == 1 and "--keep" in bad.stderr
