"""Flower for operators: behind basic auth, showing our queues by name."""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request

import pytest

from marketbot.harness import Process, free_port
from tasks.names import ALL_QUEUES

pytestmark = pytest.mark.slow


def _get(url: str, auth: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_flower_asks_for_credentials_and_lists_the_queues_by_name(redis_url: str) -> None:
    port = free_port()
    flower = Process(
        "flower",
        ["flower"],
        {"REDIS_URL": redis_url, "FLOWER_BASIC_AUTH": "ops:s3cret", "FLOWER_PORT": str(port)},
    )
    try:
        broker_page = f"http://127.0.0.1:{port}/broker"
        deadline = time.monotonic() + 60
        status, body = 0, ""
        while time.monotonic() < deadline:
            try:
                status, body = _get(broker_page, "ops:s3cret")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass  # not listening yet
            time.sleep(0.3)

        assert status == 200, flower.tail()
        for queue in ALL_QUEUES:
            assert queue in body
        assert _get(broker_page)[0] == 401
        assert _get(broker_page, "ops:wrong")[0] == 401
    finally:
        flower.stop()
