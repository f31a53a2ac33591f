"""A bad or missing variable stops a process at start with one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from marketbot.settings import ConfigError, load_settings, normalize_database_url, redis_url_for_celery


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "PUBLIC_BASE_URL",
        "TELEGRAM_WEBHOOK_SECRET",
        "HTTP_PORT",
        "ADMIN_TELEGRAM_IDS",
        "LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TELEGRAM_BOT_TOKEN", "not-a-token", "TELEGRAM_BOT_TOKEN: must look like"),
        ("HTTP_PORT", "eighty", "HTTP_PORT:"),
        ("HTTP_PORT", "70000", "HTTP_PORT:"),
        ("ADMIN_TELEGRAM_IDS", "12,bob", "ADMIN_TELEGRAM_IDS: must be comma-separated numeric"),
        ("PUBLIC_BASE_URL", "http://bot.example.com", "PUBLIC_BASE_URL: must start with https://"),
        ("TELEGRAM_WEBHOOK_SECRET", "has spaces", "TELEGRAM_WEBHOOK_SECRET: must be 1-256"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: must be a PostgreSQL URL"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL:"),
    ],
)
def test_bad_variable_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_admin_ids_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TELEGRAM_IDS", " 1, 8000000000 ,")
    assert load_settings().admin_telegram_ids == frozenset({1, 8_000_000_000})


def test_urls_are_adapted_for_our_drivers() -> None:
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert redis_url_for_celery("unix:///tmp/r.sock?db=3") == "redis+socket:///tmp/r.sock?virtual_host=3"
    assert redis_url_for_celery("redis://h:6379/0") == "redis://h:6379/0"


def test_process_refuses_to_start_with_a_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    result = subprocess.run(
        [sys.executable, "-m", "marketbot.cli", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["marketbot: configuration error: DATABASE_URL: not set"]


def test_check_config_accepts_a_good_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TELEGRAM_BOT_TOKEN": "123:abc"}
    result = subprocess.run(
        [sys.executable, "-m", "marketbot.cli", "check-config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
    assert "123:abc" not in result.stdout
