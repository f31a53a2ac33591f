"""Build aiogram's pydantic models on first use instead of all ~900 of them at import.

Why: `aiogram.types/__init__.py` ends with a loop that calls `model_rebuild(_types_namespace=…)` on every
Bot API type, which forces pydantic to build a validator and serializer for each, each with its own copy of
every nested schema. That defeats the `defer_build=True` aiogram sets on `TelegramObject`, and it is most of
our processes' start-up time and memory: on our 2-core machine `import aiogram.types` took 5.3 s and 170 MB
of RSS, against 1.6 s and 59 MB with this module installed (upstream: aiogram issues #1513 and #1876).
The gateway validates one type (`Update`, which pulls in the types an update can carry) and the workers a
handful of methods; the rest were never used.

How: `install()` wraps `BaseModel.model_rebuild` once, before aiogram is imported.
- While aiogram's loop runs, a call for an aiogram type with `_types_namespace` only records that namespace
  on the class (as pydantic's own parent namespace) and returns: the class stays deferred.
- Later, when pydantic builds any aiogram model on first use (through `model_rebuild`, which is how its
  deferred-build placeholders do it), the wrapper passes the recorded namespace, so forward references
  between Bot API types (`"User"`, `"Message"`, …) resolve exactly as aiogram's loop would have resolved them.
- Every other call passes straight through to pydantic, with the caller's frame depth preserved.

Bot API methods (`SendMessage`, … ~190 of them) are not covered by that loop: `TelegramMethod` sets no
`defer_build`, so pydantic built every method's validator as its class was defined (~15% of
`import aiogram`, for methods a process never calls). `install()` also sets `defer_build` on `TelegramMethod`
the moment `aiogram.methods.base` has run, before any method subclasses it (a one-shot import hook, as no
public pydantic or aiogram setting reaches it); each method is then built on first use, the same way.

`warm_up(*models)` builds the given models now. Call it at start-up, before serving or forking, for the
models a process uses on its hot path (the first update must not pay the build, and a prefork worker's
children then share the built schemas with their parent).

If aiogram was already imported when `install()` runs, it does nothing: aiogram then works as upstream
built it, only slower to import. Correctness never depends on this module.
"""

from __future__ import annotations

import sys
import threading
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any

from pydantic import BaseModel

_AIOGRAM = "aiogram."
_METHODS_BASE = "aiogram.methods.base"
_recorded_namespace: dict[str, Any] | None = None
_installed = False
_build_lock = threading.RLock()


def _is_aiogram(cls: type) -> bool:
    return cls.__module__.startswith(_AIOGRAM)


def install() -> bool:
    """Wrap `BaseModel.model_rebuild`; True if installed now (or before), False if aiogram came first."""
    global _installed
    if _installed:
        return True
    if any(name == "aiogram" or name.startswith(_AIOGRAM) for name in sys.modules):
        return False
    original = BaseModel.__dict__["model_rebuild"].__func__

    def model_rebuild(
        cls: type[BaseModel],
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: dict[str, Any] | None = None,
    ) -> bool | None:
        if not _is_aiogram(cls):
            return original(  # type: ignore[no-any-return]
                cls,
                force=force,
                raise_errors=raise_errors,
                _parent_namespace_depth=_parent_namespace_depth + 1,  # this wrapper is one frame deeper
                _types_namespace=_types_namespace,
            )
        if _types_namespace is not None and not cls.__pydantic_complete__ and not force:
            # aiogram.types' import-time loop: remember the namespace, keep the class deferred.
            _record(_types_namespace)
            return None
        with _build_lock:  # two threads of one worker must not build the same schema at once
            return original(  # type: ignore[no-any-return]
                cls,
                force=force,
                raise_errors=raise_errors,
                _parent_namespace_depth=_parent_namespace_depth + 1,
                _types_namespace={**(_recorded_namespace or {}), **(_types_namespace or {})},
            )

    BaseModel.model_rebuild = classmethod(model_rebuild)  # type: ignore[assignment, method-assign]
    sys.meta_path.insert(0, _DeferMethodBuilds())
    _installed = True
    return True


class _DeferMethodBuilds(MetaPathFinder):
    """Finds `aiogram.methods.base` as Python would, and sets `defer_build` on its `TelegramMethod` right
    after the module runs: pydantic reads a base's `model_config` when each subclass is defined, so every Bot
    API method is then created unbuilt. One-shot: it leaves `sys.meta_path` at its first match."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != _METHODS_BASE:
            return None
        sys.meta_path.remove(self)
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            module.TelegramMethod.model_config["defer_build"] = True

        loader.exec_module = exec_module  # type: ignore[method-assign]  # this module's own loader object
        return spec


def _record(namespace: dict[str, Any]) -> None:
    global _recorded_namespace
    _recorded_namespace = namespace


def warm_up(*models: type[BaseModel]) -> None:
    """Build these models' validators and serializers now (a no-op for models already built)."""
    for model in models:
        if not model.__pydantic_complete__:
            model.model_rebuild()
