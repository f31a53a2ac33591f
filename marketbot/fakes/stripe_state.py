"""State, wire decoding and Stripe's error shape for the fake Stripe API (see ``marketbot.fakes.stripe``).

Everything here is plain data touched only under ``FakeStripeState.lock``; the HTTP server and the
test-facing helpers both go through it, so a test thread and the server loop never race.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ZERO_DECIMAL",
    "FakeStripeState",
    "RecordedRequest",
    "StripeApiError",
    "decode_form",
    "get_session",
    "new_id",
    "no_such",
]

API_VERSION = "2025-09-30.clover"
ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
# Stripe's minimum charge amounts (smallest unit) for the currencies we are likely to meet; others: none.
MIN_CHARGE = {
    "usd": 50,
    "eur": 50,
    "gbp": 30,
    "sgd": 50,
    "aud": 50,
    "cad": 50,
    "chf": 50,
    "hkd": 400,
    "jpy": 50,
}
_KEY_RE = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def new_id(prefix: str) -> str:
    """A Stripe-looking id: ``cs_test_…`` for Checkout Sessions, ``pi_…``/``re_…``/``evt_…`` otherwise."""
    body = secrets.token_urlsafe(18).replace("-", "a").replace("_", "b")
    return f"{prefix}_test_{body}" if prefix == "cs" else f"{prefix}_{body}"


@dataclass
class RecordedRequest:
    """One API request the fake received, with what it answered (for test assertions)."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int
    response: dict[str, Any]
    at: float


class StripeApiError(Exception):
    """An error answered in Stripe's shape, so stripe-python raises the matching exception class."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def _listify(value: Any) -> Any:
    """Dicts whose keys are all indices (``a[0]``, ``a[1]`` or ``a[]``) become lists, recursively."""
    if not isinstance(value, dict):
        return value
    fixed = {k: _listify(v) for k, v in value.items()}
    if fixed and all(k.isdigit() for k in fixed):
        return [fixed[k] for k in sorted(fixed, key=int)]
    return fixed


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decode form pairs with bracket nesting (``line_items[0][price_data][currency]=jpy``) to dicts/lists."""
    root: dict[str, Any] = {}
    appended: dict[int, int] = {}
    for key, value in pairs:
        match = _KEY_RE.match(key)
        if match is None:
            root[key] = value
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for i, part in enumerate(parts):
            if part == "":  # ``expand[]=x``: append
                counter = appended.get(id(node), len(node))
                appended[id(node)] = counter + 1
                part = str(counter)
            if i == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    result = _listify(root)
    assert isinstance(result, dict)
    return result


def int_param(
    params: Mapping[str, Any], name: str, *, minimum: int | None = None, where: str | None = None
) -> int | None:
    """An integer param (form values are text); ``where`` is the full bracketed name for errors."""
    raw = params.get(name)
    shown = where or name
    if raw is None or raw == "":
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise StripeApiError(400, f"Invalid integer: {raw}", param=shown) from None
    if minimum is not None and value < minimum:
        raise StripeApiError(400, f"This value must be greater than or equal to {minimum}.", param=shown)
    return value


def metadata_param(params: Mapping[str, Any]) -> dict[str, str]:
    raw = params.get("metadata") or {}
    if not isinstance(raw, dict):
        raise StripeApiError(400, "Invalid object", param="metadata")
    if len(raw) > 50:
        raise StripeApiError(400, "Metadata can have up to 50 keys.", param="metadata")
    for key, value in raw.items():
        if len(key) > 40:
            raise StripeApiError(
                400, "Metadata keys can be up to 40 characters long.", param=f"metadata[{key}]"
            )
        if len(str(value)) > 500:
            raise StripeApiError(
                400, "Metadata values can be up to 500 characters long.", param=f"metadata[{key}]"
            )
    return {str(k): str(v) for k, v in raw.items() if v != ""}


@dataclass
class IdempotentResult:
    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: dict[str, Any]
    at: float


@dataclass
class FakeStripeState:
    """Stripe's objects by id, events in creation order, idempotency keys and recorded requests."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    clock_offset: float = 0.0
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    line_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[str, IdempotentResult] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    # Called (under the lock) with every new event, to queue its webhook delivery.
    on_event: Any = None

    def now(self) -> int:
        return int(time.time() + self.clock_offset)

    def emit(self, type_: str, obj: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": idempotency_key},
            "type": type_,
        }
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def remember(self, key: str, result: IdempotentResult) -> None:
        horizon = result.at - 24 * 3600
        for old in [k for k, v in self.idempotency.items() if v.at < horizon]:
            del self.idempotency[old]
        self.idempotency[key] = result

    def sweep_expired(self) -> None:
        """Open sessions past ``expires_at`` expire, as Stripe does shortly after the deadline."""
        now = self.now()
        for session in self.sessions.values():
            if session["status"] == "open" and session["expires_at"] <= now:
                mark_expired(self, session)


def mark_expired(state: FakeStripeState, session: dict[str, Any]) -> None:
    session["status"] = "expired"
    session["url"] = None
    state.emit("checkout.session.expired", session)


def no_such(kind: str, ident: str, param: str = "id") -> StripeApiError:
    return StripeApiError(404, f"No such {kind}: '{ident}'", code="resource_missing", param=param)


def get_session(state: FakeStripeState, ident: str) -> dict[str, Any]:
    session = state.sessions.get(ident)
    if session is None:
        raise no_such("checkout.session", ident, "session")
    return session
