"""The Dockerfiles: hadolint-clean, and shaped the way docs/deploy.md promises (no Docker engine here)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from marketbot.cli import build_parser
from tests.deploy.conftest import ROOT, tool
from tests.deploy.runtime_lock import (
    EMBEDDED_ONLY,
    GATEWAY_LOCK,
    LOCK,
    PRUNED_DIR_NAMES,
    PRUNED_SUFFIXES,
    PRUNED_TREES,
    WORKER_ONLY,
    canonical,
    gateway_closure,
    read_lock,
    runtime_closure,
)

DOCKERFILES = ["Dockerfile.bot", "Dockerfile.worker"]
IMAGE_LOCKS = {"Dockerfile.bot": GATEWAY_LOCK, "Dockerfile.worker": LOCK}
# Published, not measured here: python:3.11.15-slim-bookworm is 129.96 MB and 3.11.16-slim-bookworm 130.01 MB
# uncompressed on amd64 ("Virtual Size", the sum of its layers' file sizes, in docker-library/repo-info
# repos/python/local/). 3.11.14 shares the Debian base and differs by a patch release of CPython. It agrees
# with a derivation from parts: debian:bookworm-slim ~74.8 MB + the Debian runtime packages the python
# Dockerfile adds (libssl3, openssl, tzdata, libsqlite3-0, ca-certificates, readline, ncursesw, gdbm, expat:
# 14.9 MB of dpkg Installed-Size) + CPython 3.11 in /usr/local pruned and stripped as that Dockerfile does,
# with pip and setuptools (40.7 MB measured) = ~130.4 MB.
BASE_IMAGE_MB = 130.0
# issue 7: each final image under 200 MB.
IMAGE_TARGET_MB = 200.0
# Our code: every file of the packages pyproject installs (modules, locales, migrations, sandbox assets).
OUR_PACKAGES = ("core", "db", "tasks", "bot_gateway", "beat_schedule", "marketbot")


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


def test_gateway_lock_is_the_gateway_closure_and_a_subset_of_the_worker_lock() -> None:
    gateway, worker = read_lock(GATEWAY_LOCK), read_lock(LOCK)
    assert set(gateway_closure()) <= set(gateway), sorted(set(gateway_closure()) - set(gateway))
    assert {n: v for n, v in worker.items() if n in gateway} == gateway, "same pins as the worker image"
    assert not (set(gateway) & (WORKER_ONLY | EMBEDDED_ONLY)), set(gateway) & WORKER_ONLY
    assert "psycopg2-binary" in gateway, "/readyz checks the database when DATABASE_URL is set"
    for name, lock in IMAGE_LOCKS.items():
        copied = [a for w, a in instructions(name) if w == "COPY" and "requirements" in a]
        assert copied == [f"{lock.relative_to(ROOT)} ./{lock.relative_to(ROOT)}"], (name, copied)


# Runs `marketbot gateway`'s imports with every installed distribution outside the gateway lock hidden, as in
# the gateway image: optional imports (stripe tries httpx, SQLAlchemy's greenlet...) must fall back, and the
# readiness checks' lazy imports (psycopg2, kombu) and the Redis broker transport must load.
_GATEWAY_IMPORTS = """
import importlib.abc, importlib.metadata as md, json, sys
preloaded = set(sys.modules)  # by the interpreter and this venv's .pth files, before the gateway's code
allowed = set(json.loads(sys.argv[1]))
owners = md.packages_distributions()
hidden = {top for top, dists in owners.items() if not allowed & {d.lower().replace("_", "-") for d in dists}}

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the gateway image)", name=name)

sys.meta_path.insert(0, Hide())
import marketbot.cli, bot_gateway.app, tasks.app
from bot_gateway import health
health.database_check("postgresql://u@127.0.0.1:1/x")
health.broker_check("redis://127.0.0.1:1/0")
from kombu.transport import redis as _
new = set(sys.modules) - preloaded
print(json.dumps(sorted({d for m in new for d in owners.get(m.split(".")[0], [])})))
"""


def test_the_gateway_process_needs_nothing_outside_its_lock() -> None:
    gateway = set(read_lock(GATEWAY_LOCK))
    result = subprocess.run(
        [sys.executable, "-c", _GATEWAY_IMPORTS, json.dumps(sorted(gateway | {"marketbot"}))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = {canonical(d) for d in json.loads(result.stdout)} - {"marketbot"}
    assert loaded <= gateway and not (loaded & WORKER_ONLY), loaded - gateway


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST, typing_only: bool = False) -> list[str]:
    """Modules imported outside `if TYPE_CHECKING:` blocks (absolute `from x import y` also yields x.y)."""
    found: list[str] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                found += _runtime_imports(ast.Module(body=[child], type_ignores=[]), typing_only)
            continue
        if not typing_only and isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif not typing_only and isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found += _runtime_imports(node, typing_only)
    return found


def test_the_pruned_subpackages_are_never_imported_at_run_time() -> None:
    """The Dockerfiles delete PRUNED_TREES: no other module may import them outside TYPE_CHECKING."""
    for name in DOCKERFILES:
        text = (ROOT / name).read_text()
        assert all(f'"$site/{tree}"' in text for tree in PRUNED_TREES), name
    for tree in PRUNED_TREES:
        package, module = tree.split("/")[0], tree.replace("/", ".")
        top = Path(md.distribution(package).locate_file(package))
        offenders = [
            f"{path.relative_to(top.parent)}: {imported}"
            for path in top.rglob("*.py")
            if not path.is_relative_to(top.parent / tree)
            for imported in _runtime_imports(ast.parse(path.read_bytes()))
            if imported == module or imported.startswith(module + ".")
        ]
        assert not offenders, offenders
    ours = [p for pkg in OUR_PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    for path in ours:
        for imported in _runtime_imports(ast.parse(path.read_bytes())):
            assert not imported.startswith(tuple(t.replace("/", ".") for t in PRUNED_TREES)), (path, imported)


def _pruned(relative: Path) -> bool:
    posix = relative.as_posix()
    return (
        bool(PRUNED_DIR_NAMES & set(relative.parts[:-1]))
        or relative.suffix in PRUNED_SUFFIXES
        or any(posix.startswith(tree + "/") for tree in PRUNED_TREES)
    )


def _installed_bytes(lock: Path, scratch: Path) -> int:
    """What the builder leaves of the locked distributions: their files after pruning, *.so stripped."""
    strip = shutil.which("strip")
    total = 0
    for name, version in read_lock(lock).items():
        dist = md.distribution(name)
        assert dist.version == version, (
            f"{name}: installed {dist.version}, locked {version} (regenerate the lock)"
        )
        for entry in dist.files or []:
            path = Path(dist.locate_file(entry))
            if _pruned(Path(entry)) or not path.is_file():
                continue
            if path.suffix == ".so" and strip:
                copy = scratch / path.name
                shutil.copyfile(path, copy)
                subprocess.run([strip, "--strip-unneeded", str(copy)], check=True)
                total += copy.stat().st_size
                copy.unlink()
            else:  # without binutils the estimate stays unstripped, i.e. on the safe side
                total += path.stat().st_size
    return total


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_size_estimate_is_under_the_200_mb_target(name: str, tmp_path: Path) -> None:
    """Published base image + measured venv (locked distributions as the builder prunes them) + our code.

    Sizes are sums of file sizes, as Docker counts a layer (directories, and bytecode, which processes cache
    under PYTHONPYCACHEPREFIX instead, add nothing). docs/deploy.md, "Image size", has the breakdown.
    """
    dependencies = _installed_bytes(IMAGE_LOCKS[name], tmp_path)
    ours = sum(
        p.stat().st_size
        for pkg in OUR_PACKAGES
        for p in (ROOT / pkg).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    extras = (ROOT / "infra" / "docker" / "healthcheck.py").stat().st_size
    estimate_mb = BASE_IMAGE_MB + (dependencies + ours + extras) / 1e6
    print(
        f"{name}: {BASE_IMAGE_MB:.1f} base + {dependencies / 1e6:.1f} dependencies + {ours / 1e6:.1f} ours"
        f" = {estimate_mb:.1f} MB",
        file=sys.stderr,
    )
    assert estimate_mb < IMAGE_TARGET_MB


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
