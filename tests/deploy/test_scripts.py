"""The operator scripts: shellcheck-clean, and run here as far as a machine without Docker allows.

deploy runs against a stub `docker` first on PATH that records every call (and can fail one image tag),
health-check against the real gateway application served in-process, and the worker health check against
a real Celery worker's ping.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from marketbot.fakes.telegram import FakeTelegram
from tests.deploy.conftest import ROOT, SCRIPTS, tool
from tests.support.gateway import gateway_env, run_with_gateway

SHELL_SCRIPTS = sorted(p for p in SCRIPTS.iterdir() if p.is_file())


def test_every_script_passes_shellcheck() -> None:
    result = subprocess.run(
        [tool("shellcheck"), "--external-sources", *map(str, SHELL_SCRIPTS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["deploy", "backup", "restore", "health-check"])
def test_every_script_has_help(name: str) -> None:
    result = subprocess.run([str(SCRIPTS / name), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.startswith("Usage:")
    assert os.access(SCRIPTS / name, os.X_OK)


# --- deploy, against a stub docker -------------------------------------------------------------------------

STUB_DOCKER = """#!/usr/bin/env bash
# Records each call with the tag it ran under; the gateway never gets healthy on the tag in $STUB_FAIL_TAG.
printf '%s|%s\\n' "${MARKETBOT_TAG:-}" "$*" >> "$STUB_LOG"
if [[ "$*" == *"compose"*" ps "* ]]; then
  printf 'marketbot-gateway-1\\trunning\\thealthy\\n'
fi
if [[ "$*" == *" up "*" gateway" && -n "${STUB_FAIL_TAG:-}" \\
      && "${MARKETBOT_TAG:-}" == "$STUB_FAIL_TAG" ]]; then
  echo "container marketbot-gateway-1 is unhealthy" >&2
  exit 1
fi
exit 0
"""


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"# TYPE marketbot_gateway_updates_total counter\n" if self.path == "/metrics" else b"{}"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def healthy_gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def deploy_env(tmp_path: Path, healthy_gateway: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(STUB_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    env_file = tmp_path / "env.production"
    env_file.write_text("MARKETBOT_DOMAIN=bot.example.com\n")
    env_file.chmod(0o600)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STUB_LOG": str(tmp_path / "docker.log"),
        "MARKETBOT_STATE_DIR": str(tmp_path / "state"),
        "GATEWAY_URL": healthy_gateway,
        "ENV_FILE": str(env_file),
        "HOME": str(tmp_path),
    }


def deploy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / "deploy"), "--env-file", env["ENV_FILE"], "--health-timeout", "5", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(env: dict[str, str]) -> list[tuple[str, str]]:
    log = Path(env["STUB_LOG"])
    lines = log.read_text().splitlines() if log.exists() else []
    return [tuple(line.split("|", 1)) for line in lines]  # type: ignore[misc]


def test_deploy_dry_run_prints_the_plan_and_runs_nothing(deploy_env: dict[str, str]) -> None:
    result = deploy(deploy_env, "--tag", "v2", "--dry-run")
    assert result.returncode == 0, result.stderr
    plan = result.stdout.splitlines()
    assert calls(deploy_env) == []
    assert any("docker build --pull -f Dockerfile.worker -t marketbot-worker:v2" in p for p in plan)
    migrate = next(i for i, p in enumerate(plan) if "run --rm migrate" in p)
    restarts = [i for i, p in enumerate(plan) if " up -d --no-deps " in p]
    assert restarts and min(restarts) > migrate, "nothing restarts before the migration succeeded"
    assert plan[restarts[-2]].endswith(" gateway") and len(restarts) == 6
    assert not (Path(deploy_env["MARKETBOT_STATE_DIR"]) / "current").exists()


def test_deploy_rolls_out_records_the_tag_and_rolls_back_a_failing_one(deploy_env: dict[str, str]) -> None:
    state = Path(deploy_env["MARKETBOT_STATE_DIR"])
    # Given v1 deployed
    first = deploy(deploy_env, "--tag", "v1")
    assert first.returncode == 0, first.stderr
    assert (state / "current").read_text().strip() == "v1"
    # When v2 does not come up healthy
    Path(deploy_env["STUB_LOG"]).unlink()
    second = deploy({**deploy_env, "STUB_FAIL_TAG": "v2"}, "--tag", "v2")
    # Then the deploy fails, every service is back on v1, and v1 stays the recorded release
    assert second.returncode == 1
    assert "rolled back to v1, which is healthy" in second.stderr
    ups = [(tag, args) for tag, args in calls(deploy_env) if " up -d --no-deps " in args]
    assert [tag for tag, _ in ups] == ["v2"] * 5 + ["v1"] * 6
    assert ups[4][1].endswith(" gateway")
    assert (state / "current").read_text().strip() == "v1"


def test_deploy_explicit_rollback_swaps_current_and_previous(deploy_env: dict[str, str]) -> None:
    assert deploy(deploy_env, "--tag", "v1").returncode == 0
    assert deploy(deploy_env, "--tag", "v2").returncode == 0
    state = Path(deploy_env["MARKETBOT_STATE_DIR"])
    assert (state / "previous").read_text().strip() == "v1"
    back = deploy(deploy_env, "--rollback")
    assert back.returncode == 0, back.stderr
    assert (state / "current").read_text().strip() == "v1"
    assert (state / "previous").read_text().strip() == "v2"


def test_deploy_refuses_an_env_file_others_can_read(deploy_env: dict[str, str]) -> None:
    Path(deploy_env["ENV_FILE"]).chmod(0o644)
    result = deploy(deploy_env, "--tag", "v1")
    assert result.returncode == 1 and "chmod 600" in result.stderr
    assert calls(deploy_env) == []


def test_deploy_stops_before_restarting_anything_when_the_migration_fails(
    deploy_env: dict[str, str], tmp_path: Path
) -> None:
    stub = Path(deploy_env["PATH"].split(":", 1)[0]) / "docker"
    stub.write_text(STUB_DOCKER.replace("exit 0\n", '[[ "$*" == *"run --rm migrate"* ]] && exit 1\nexit 0\n'))
    result = deploy(deploy_env, "--tag", "v1")
    assert result.returncode == 1 and "migration failed" in result.stderr
    assert not any(" up -d --no-deps " in args for _, args in calls(deploy_env))


# --- health checks against real processes ------------------------------------------------------------------


def health_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / "health-check"), *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_health_check_passes_against_the_real_gateway_and_fails_when_it_is_gone(redis_url: str) -> None:
    with FakeTelegram() as telegram:

        async def scenario(_http: Any, base: str) -> tuple[subprocess.CompletedProcess[str], ...]:
            script = await asyncio.to_thread(health_check, "--url", base)
            image_check = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    str(ROOT / "infra/docker/healthcheck.py"),
                    "gateway",
                    "--url",
                    f"{base}/healthz",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            return script, image_check

        script, image_check = run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario)
    assert script.returncode == 0, script.stdout + script.stderr
    assert "ok       gateway /readyz" in script.stdout and "ok       gateway /metrics" in script.stdout
    assert image_check.returncode == 0, image_check.stderr

    gone = health_check("--url", "http://127.0.0.1:9", "--timeout", "1")
    assert gone.returncode == 1
    assert "FAILED   gateway /healthz answered 000" in gone.stderr
