"""The `marketbot` entry point: each subcommand refuses bad configuration with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys


def _marketbot(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
    return subprocess.run(
        [sys.executable, "-m", "marketbot.cli", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_brings_the_database_to_head_and_is_idempotent(database_url: str) -> None:
    result = _marketbot("migrate", DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert "database migrated to head" in result.stdout


def test_flower_refuses_to_start_without_authentication(redis_url: str) -> None:
    result = _marketbot("flower", REDIS_URL=redis_url)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("marketbot: configuration error: FLOWER_BASIC_AUTH: not set")


def test_worker_names_an_unknown_queue(database_url: str, redis_url: str) -> None:
    result = _marketbot(
        "worker",
        "--queues",
        "interactive,bogus",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TELEGRAM_BOT_TOKEN="123:abc",
    )
    assert result.returncode == 2
    assert "--queues: unknown queue(s) bogus" in result.stderr


def test_webhook_mode_requires_the_secret(redis_url: str) -> None:
    result = _marketbot(
        "gateway",
        REDIS_URL=redis_url,
        TELEGRAM_BOT_TOKEN="123:abc",
        PUBLIC_BASE_URL="https://bot.example.com",
    )
    assert result.returncode == 2
    assert "TELEGRAM_WEBHOOK_SECRET: not set" in result.stderr
