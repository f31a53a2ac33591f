"""The `marketbot` entry point: each subcommand refuses bad configuration with one clear line."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


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


# -- marketbot up ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> dict[str, dict[str, str]]:
    """The environment of each direct child of `pid`, by its marketbot subcommand (gateway, worker, beat)."""
    found: dict[str, dict[str, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            raw_env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        args = [a.decode() for a in argv if a]
        if ppid != pid or "marketbot.cli" not in args:
            continue
        env = dict(v.decode().split("=", 1) for v in raw_env if b"=" in v)
        env["_ARGV"] = " ".join(args)
        found[args[args.index("marketbot.cli") + 1]] = env
    return found


@pytest.mark.slow
def test_up_without_stripe_keys_runs_the_stripe_stand_in_and_hands_it_to_every_process(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    http_port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/tmp",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MARKETBOT_DATA_DIR": str(tmp_path),
        "HTTP_PORT": str(http_port),
        "FAKE_TELEGRAM_PORT": "0",
        "FAKE_STRIPE_PORT": "0",
        "LOG_LEVEL": "WARNING",
    }
    up = subprocess.Popen(
        [sys.executable, "-m", "marketbot.cli", "up", "--concurrency", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert up.stdout is not None
    threading.Thread(target=lambda: lines.extend(iter(up.stdout.readline, "")), daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        while not any("running; press Ctrl-C" in line for line in lines):
            assert up.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        banner = "".join(lines)
        match = re.search(r"Stripe is the local stand-in at (http://127\.0\.0\.1:\d+)", banner)
        assert match, banner
        stripe_url = match.group(1)
        assert f"http://127.0.0.1:{http_port}/stripe/webhook" in banner

        children = _children(up.pid)

        assert set(children) == {"gateway", "worker", "beat"}
        for child in children.values():
            assert child["STRIPE_SECRET_KEY"].startswith("sk_test_local")
            assert child["STRIPE_API_BASE_URL"] == stripe_url
            assert child["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
        assert "--queues interactive,payments,outbound,maintenance" in children["worker"]["_ARGV"]
        # The stand-in answers like Stripe, for the key the processes were given.
        key = children["gateway"]["STRIPE_SECRET_KEY"]
        request = urllib.request.Request(
            f"{stripe_url}/v1/checkout/sessions/cs_test_missing", headers={"Authorization": f"Bearer {key}"}
        )
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(request, timeout=5)
        assert missing.value.code == 404
        assert json.loads(missing.value.read())["error"]["code"] == "resource_missing"
    finally:
        up.send_signal(signal.SIGINT)
        try:
            code = up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
    assert code == 0, "".join(lines)
