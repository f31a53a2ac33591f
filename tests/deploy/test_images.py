"""The Dockerfiles: hadolint-clean, and shaped the way docs/deploy.md promises (no Docker engine here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from marketbot.cli import build_parser
from tests.deploy.conftest import ROOT, tool
from tests.deploy.runtime_lock import EMBEDDED_ONLY, read_lock, runtime_closure

DOCKERFILES = ["Dockerfile.bot", "Dockerfile.worker"]
# python:3.11-slim-bookworm, uncompressed as `docker images` shows it: debian:bookworm-slim (~75 MB) plus
# CPython, pip and their Debian runtime libraries (~50 MB), per the image's published layer sizes.
BASE_IMAGE_MB = 125
# The target is 200 MB; the estimate is ~215 MB (docs/deploy.md, "Image size" says where it goes
# and what would cut it). This bound keeps it from growing unnoticed.
IMAGE_BUDGET_MB = 225


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / name).read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage(name: str) -> list[tuple[str, str]]:
    steps = instructions(name)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_hadolint_passes_on_both_dockerfiles() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", *DOCKERFILES], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_is_multi_stage_pinned_and_unprivileged(name: str) -> None:
    steps = instructions(name)
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", args["PYTHON_IMAGE"]), "base pinned by version"
    assert sum(1 for w, _ in steps if w == "FROM") == 2
    final = final_stage(name)
    user = [a for w, a in final if w == "USER"]
    assert user and not user[-1].startswith(("0", "root")), "runs as a non-root user"
    final_runs = " ".join(a for w, a in final if w == "RUN")
    for build_tool in ("apt-get", "gcc", "pip install", "build-essential"):
        assert build_tool not in final_runs, f"{build_tool} belongs in the builder stage"
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in final
    assert ("STOPSIGNAL", "SIGTERM") in final
    assert any(w == "HEALTHCHECK" and "marketbot-healthcheck" in a for w, a in final)


@pytest.mark.parametrize(
    ("name", "command"), [("Dockerfile.bot", "gateway"), ("Dockerfile.worker", "worker")]
)
def test_entrypoint_is_the_marketbot_command_the_tests_run(name: str, command: str) -> None:
    final = dict(final_stage(name))
    assert final["ENTRYPOINT"] == '["marketbot"]'
    assert final["CMD"] == f'["{command}"]'
    # the subcommand exists in the CLI the tests drive
    assert build_parser().parse_args([command]).command == command


def test_the_build_context_keeps_secrets_and_local_state_out() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") - 0] == "*", "allow-list: everything is excluded first"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert not any(a.startswith((".env", ".venv", "tests", ".marketbot")) for a in allowed)
    copied = {
        a.split()[0].rstrip("/")
        for name in DOCKERFILES
        for w, a in instructions(name)
        if w == "COPY" and not a.startswith("--from")
    }
    assert copied <= allowed | {"pyproject.toml", "README.md"}, copied - allowed


def test_lock_pins_the_whole_runtime_closure_except_the_embedded_servers() -> None:
    lock = read_lock()
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", v) for v in lock.values()), "every line is name==version"
    needed = set(runtime_closure())
    assert needed <= set(lock), f"missing from infra/requirements.lock: {sorted(needed - set(lock))}"
    assert not (set(lock) & EMBEDDED_ONLY)


def test_image_size_estimate_stays_under_budget() -> None:
    """Base image + the installed size of every locked distribution + our own code (no .pyc: --no-compile)."""
    import importlib.metadata as md

    installed = 0
    for name in read_lock():
        dist = md.distribution(name)
        installed += sum(f.size or 0 for f in dist.files or [])
    ours = sum(
        p.stat().st_size
        for pkg in ("core", "db", "tasks", "bot_gateway", "beat_schedule", "marketbot")
        for p in (ROOT / pkg).rglob("*.py")
    )
    estimate_mb = BASE_IMAGE_MB + (installed + ours) / 1e6
    print(f"image size estimate: {estimate_mb:.0f} MB", file=sys.stderr)
    assert estimate_mb < IMAGE_BUDGET_MB


def test_healthcheck_script_knows_both_roles(tmp_path: Path) -> None:
    script = ROOT / "infra" / "docker" / "healthcheck.py"
    usage = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=False
    )
    assert usage.returncode == 0 and "gateway" in usage.stdout and "worker" in usage.stdout
    down = subprocess.run(
        [sys.executable, str(script), "gateway", "--url", "http://127.0.0.1:9/healthz", "--timeout", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert down.returncode == 1 and "unhealthy" in down.stderr
