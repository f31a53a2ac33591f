"""Embedded servers start for a run and are really gone after it (no server left behind per test run)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import redis

from marketbot.embedded import EmbeddedServers


def test_embedded_redis_keeps_data_across_restarts_and_stops_its_process(tmp_path: Path) -> None:
    servers = EmbeddedServers(tmp_path)
    url = servers.start_redis()
    redis.Redis.from_url(url).set("kept", "yes")
    pid = servers._redis.pid

    servers.stop()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"redis-server {pid} is still running after stop()")
    again = EmbeddedServers(tmp_path)
    try:
        assert redis.Redis.from_url(again.start_redis()).get("kept") == b"yes"
    finally:
        again.stop()
