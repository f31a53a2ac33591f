"""`marketbot status`: the operator's first screen, from the real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import redis

from marketbot.beat_leader import LEADER_KEY
from marketbot.harness import ROOT
from tasks.app import app
from tasks.names import PURGE_PROCESSED_EVENTS


def _status(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketbot.cli", "status", *argv],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_status_shows_queues_beat_leader_and_the_database_numbers(
    database_url: str, redis_url: str, redis_client: redis.Redis
) -> None:
    # Given a message waiting in the maintenance queue and a beat holding the lease
    redis_client.delete("maintenance")
    app.send_task(PURGE_PROCESSED_EVENTS)
    redis_client.set(LEADER_KEY, "beat-host:4242", px=20_000)
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    try:
        text = _status(env)
        machine = _status(env, "--json")
    finally:
        redis_client.delete(LEADER_KEY, "maintenance")

    assert text.returncode == 0, text.stdout + text.stderr
    assert "maintenance 1" in text.stdout
    assert "beat leader    beat-host:4242 (lease" in text.stdout
    assert "unpaid holds" in text.stdout and "dead letters" in text.stdout
    data = json.loads(machine.stdout)
    assert data["queues"]["maintenance"] == 1
    assert data["beat_leader"] == "beat-host:4242"
    assert "marketbot_oldest_unpaid_hold_seconds" in data["gauges"]
    assert data["problems"] == []


def test_status_says_what_is_unreachable_and_fails(redis_url: str, database_url: str) -> None:
    unreachable_db = database_url.rsplit("/", 1)[0] + "/no_such_database_here"
    result = _status({"DATABASE_URL": unreachable_db, "REDIS_URL": redis_url})

    assert result.returncode == 1
    assert "unavailable    database:" in result.stdout
    assert "queues" in result.stdout  # the reachable parts are still shown
