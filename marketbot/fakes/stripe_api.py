"""The Stripe API endpoints of the fake: Checkout Sessions, PaymentIntents, Refunds and Events.

Handlers run under ``FakeStripeState.lock``, take decoded params and return Stripe-shaped JSON objects or
raise ``StripeApiError`` with Stripe's error texts. The customer's side (paying, async outcomes) and refunds
live in ``stripe_payments``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from marketbot.fakes.stripe_payments import refund_payment
from marketbot.fakes.stripe_state import (
    MIN_CHARGE,
    ZERO_DECIMAL,
    FakeStripeState,
    StripeApiError,
    get_session,
    int_param,
    mark_expired,
    metadata_param,
    new_id,
    no_such,
)

__all__ = ["Context", "dispatch", "expire_session"]

Handler = Callable[[FakeStripeState, dict[str, Any], "re.Match[str]", "Context"], dict[str, Any]]


class Context:
    """What a handler needs beside params: the fake's public URL and the request's idempotency key."""

    def __init__(self, base_url: str, idempotency_key: str | None) -> None:
        self.base_url = base_url
        self.idempotency_key = idempotency_key


def _expand(state: FakeStripeState, obj: dict[str, Any], expand: Any, prefix: str = "") -> dict[str, Any]:
    out = copy.deepcopy(obj)
    fields = expand if isinstance(expand, list) else ([expand] if isinstance(expand, str) else [])
    for item in fields:
        name = item[len(prefix) :] if prefix and item.startswith(prefix) else item
        value = out.get(name)
        if name == "payment_intent" and isinstance(value, str) and value in state.payment_intents:
            out[name] = _expand(state, state.payment_intents[value], [], "")
        elif name == "latest_charge" and isinstance(value, str) and value in state.charges:
            out[name] = copy.deepcopy(state.charges[value])
        elif name == "line_items" and out.get("object") == "checkout.session":
            data = copy.deepcopy(state.line_items.get(out["id"], []))
            out[name] = {"object": "list", "data": data, "has_more": False, "url": "/v1/checkout/sessions/"}
    return out


# -- Checkout Sessions ------------------------------------------------------------------------------------


def _line_items(params: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    items = params.get("line_items")
    if not items:
        raise StripeApiError(400, "You must provide at least one line item.", param="line_items")
    if not isinstance(items, list):
        raise StripeApiError(400, "Invalid array", param="line_items")
    result: list[dict[str, Any]] = []
    currency = ""
    for n, item in enumerate(items):
        where = f"line_items[{n}]"
        if not isinstance(item, dict):
            raise StripeApiError(400, "Invalid object", param=where)
        if "price" in item:
            raise StripeApiError(
                404, f"No such price: '{item['price']}'", code="resource_missing", param=where
            )
        price = item.get("price_data")
        if not isinstance(price, dict):
            raise StripeApiError(400, "You must specify either `price` or `price_data`.", param=where)
        cur = str(price.get("currency", "")).lower()
        if not re.fullmatch(r"[a-z]{3}", cur):
            raise StripeApiError(
                400, "Missing required param: currency.", param=f"{where}[price_data][currency]"
            )
        if currency and cur != currency:
            raise StripeApiError(
                400, "All line items must use the same currency.", param=f"{where}[price_data][currency]"
            )
        currency = cur
        unit = int_param(price, "unit_amount", minimum=0, where=f"{where}[price_data][unit_amount]")
        if unit is None:
            raise StripeApiError(
                400, "Missing required param: unit_amount.", param=f"{where}[price_data][unit_amount]"
            )
        product = price.get("product_data")
        name = product.get("name") if isinstance(product, dict) else None
        if "product" not in price and not name:
            raise StripeApiError(
                400, "Missing required param: name.", param=f"{where}[price_data][product_data][name]"
            )
        quantity = int_param(item, "quantity", minimum=1, where=f"{where}[quantity]")
        if quantity is None:
            raise StripeApiError(400, "Missing required param: quantity.", param=f"{where}[quantity]")
        result.append(
            {
                "id": new_id("li"),
                "object": "item",
                "amount_subtotal": unit * quantity,
                "amount_total": unit * quantity,
                "currency": cur,
                "description": name,
                "quantity": quantity,
                "price": {"object": "price", "currency": cur, "unit_amount": unit, "type": "one_time"},
            }
        )
    return result, currency


def create_session(
    state: FakeStripeState, params: dict[str, Any], m: re.Match[str], ctx: Context
) -> dict[str, Any]:
    mode = params.get("mode")
    if not mode:
        raise StripeApiError(400, "Missing required param: mode.", param="mode")
    if mode != "payment":
        raise StripeApiError(400, f"The fake Stripe supports only mode=payment, not {mode!r}.", param="mode")
    items, currency = _line_items(params)
    total = sum(item["amount_total"] for item in items)
    minimum = MIN_CHARGE.get(currency)
    if minimum is not None and 0 < total < minimum:
        shown = str(minimum) if currency in ZERO_DECIMAL else f"{minimum / 100:.2f}"
        raise StripeApiError(
            400,
            f"The Checkout Session's total amount due must add up to at least {shown} {currency}",
            param="line_items",
        )
    now = state.now()
    expires_at = int_param(params, "expires_at")
    if expires_at is None:
        expires_at = now + 24 * 3600
    elif expires_at < now + 30 * 60:
        raise StripeApiError(
            400, "The `expires_at` timestamp must be at least 30 minutes from now.", param="expires_at"
        )
    elif expires_at > now + 24 * 3600:
        raise StripeApiError(
            400, "The `expires_at` timestamp must be less than 24 hours from now.", param="expires_at"
        )
    session_id = new_id("cs")
    session: dict[str, Any] = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": total,
        "amount_total": total,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id") or None,
        "created": now,
        "currency": currency,
        "customer": None,
        "customer_details": None,
        "customer_email": params.get("customer_email") or None,
        "expires_at": expires_at,
        "livemode": False,
        "metadata": metadata_param(params),
        "mode": "payment",
        "payment_intent": None,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "success_url": params.get("success_url"),
        "ui_mode": "hosted",
        "url": f"{ctx.base_url}/pay/{session_id}",
    }
    state.sessions[session_id] = session
    state.line_items[session_id] = items
    return _expand(state, session, params.get("expand"))


def retrieve_session(
    state: FakeStripeState, params: dict[str, Any], m: re.Match[str], ctx: Context
) -> dict[str, Any]:
    return _expand(state, get_session(state, m["id"]), params.get("expand"))


def expire_session(state: FakeStripeState, session_id: str) -> dict[str, Any]:
    session = get_session(state, session_id)
    if session["status"] != "open":
        raise StripeApiError(
            400,
            f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a '
            f'status of "{session["status"]}".',
        )
    mark_expired(state, session)
    return session


def _expire(state: FakeStripeState, params: dict[str, Any], m: re.Match[str], ctx: Context) -> dict[str, Any]:
    return _expand(state, expire_session(state, m["id"]), params.get("expand"))


def _created_filter(params: dict[str, Any]) -> Callable[[int], bool]:
    raw = params.get("created")
    if raw is None:
        return lambda _c: True
    if not isinstance(raw, dict):
        exact = int_param(params, "created")
        return lambda c: c == exact
    bounds = {op: int_param(raw, op, where=f"created[{op}]") for op in ("gt", "gte", "lt", "lte")}
    return lambda c: (
        (bounds["gt"] is None or c > bounds["gt"])
        and (bounds["gte"] is None or c >= bounds["gte"])
        and (bounds["lt"] is None or c < bounds["lt"])
        and (bounds["lte"] is None or c <= bounds["lte"])
    )


def _page(objects: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
    """Stripe's list object: newest first; ``limit`` (1..100, default 10), starting_after, ending_before."""
    limit = int_param(params, "limit", minimum=1) or 10
    if limit > 100:
        raise StripeApiError(400, "This value must be less than or equal to 100.", param="limit")
    ordered = list(reversed(objects))
    ids = [o["id"] for o in ordered]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        if after not in ids:
            raise no_such("object", str(after), "starting_after")
        ordered = ordered[ids.index(after) + 1 :]
        page = ordered[:limit]
    elif before:
        if before not in ids:
            raise no_such("object", str(before), "ending_before")
        ordered = ordered[: ids.index(before)]
        page = ordered[-limit:]
    else:
        page = ordered[:limit]
    return {"object": "list", "data": copy.deepcopy(page), "has_more": len(ordered) > len(page), "url": url}


def list_sessions(
    state: FakeStripeState, params: dict[str, Any], m: re.Match[str], ctx: Context
) -> dict[str, Any]:
    created = _created_filter(params)
    wanted = {k: params.get(k) for k in ("status", "payment_intent", "customer") if params.get(k)}
    found = [
        s
        for s in state.sessions.values()
        if created(s["created"]) and all(s.get(k) == v for k, v in wanted.items())
    ]
    page = _page(found, params, "/v1/checkout/sessions")
    page["data"] = [_expand(state, s, params.get("expand"), "data.") for s in page["data"]]
    return page


# -- PaymentIntents and Refunds ----------------------------------------------------------------------------


def _retrieve_pi(
    state: FakeStripeState, params: dict[str, Any], m: re.Match[str], ctx: Context
) -> dict[str, Any]:
    pi = state.payment_intents.get(m["id"])
    if pi is None:
        raise no_such("payment_intent", m["id"], "intent")
    return _expand(state, pi, params.get("expand"))


def _create_refund(
    state: FakeStripeState, params: dict[str, Any], m: re.Match[str], ctx: Context
) -> dict[str, Any]:
    return refund_payment(state, params, ctx.idempotency_key)


def _retrieve_refund(
    state: FakeStripeState, params: dict[str, Any], m: re.Match[str], ctx: Context
) -> dict[str, Any]:
    refund = state.refunds.get(m["id"])
    if refund is None:
        raise no_such("refund", m["id"])
    return copy.deepcopy(refund)


# -- Events ---------------------------------------------------------------------------------------------


def _retrieve_event(
    state: FakeStripeState, params: dict[str, Any], m: re.Match[str], ctx: Context
) -> dict[str, Any]:
    for event in state.events:
        if event["id"] == m["id"]:
            return copy.deepcopy(event)
    raise no_such("event", m["id"])


def _list_events(
    state: FakeStripeState, params: dict[str, Any], m: re.Match[str], ctx: Context
) -> dict[str, Any]:
    created = _created_filter(params)
    types = params.get("types") or ([params["type"]] if params.get("type") else [])

    def matches(event_type: str) -> bool:
        if not types:
            return True
        return any(re.fullmatch(re.escape(t).replace(r"\*", ".*"), event_type) for t in types)

    found = [e for e in state.events if created(e["created"]) and matches(e["type"])]
    return _page(found, params, "/v1/events")


_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("POST", re.compile(r"/v1/checkout/sessions"), create_session),
    ("GET", re.compile(r"/v1/checkout/sessions"), list_sessions),
    ("GET", re.compile(r"/v1/checkout/sessions/(?P<id>[^/]+)"), retrieve_session),
    ("POST", re.compile(r"/v1/checkout/sessions/(?P<id>[^/]+)/expire"), _expire),
    ("GET", re.compile(r"/v1/payment_intents/(?P<id>[^/]+)"), _retrieve_pi),
    ("POST", re.compile(r"/v1/refunds"), _create_refund),
    ("GET", re.compile(r"/v1/refunds/(?P<id>[^/]+)"), _retrieve_refund),
    ("GET", re.compile(r"/v1/events/(?P<id>[^/]+)"), _retrieve_event),
    ("GET", re.compile(r"/v1/events"), _list_events),
]


def dispatch(
    state: FakeStripeState, method: str, path: str, params: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    """Route one API request (under the state lock); unknown paths answer Stripe's 404."""
    for verb, pattern, handler in _ROUTES:
        match = pattern.fullmatch(path)
        if match is not None and verb == method:
            state.sweep_expired()
            return handler(state, params, match, ctx)
    raise StripeApiError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help "
        "at https://support.stripe.com/.",
    )
