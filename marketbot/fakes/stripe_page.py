"""The fake Stripe's hosted Checkout page, for the sandbox and local use.

``GET /pay/{id}`` shows the amount and what a customer can do on a real Checkout page, plus the outcomes
Stripe produces later, so every path of our payment handling can be tried by hand:

- Pay (card): the session completes and is paid → ``checkout.session.completed``; redirect to success_url.
- Pay with a delayed method: completed but unpaid → ``completed``; then "The bank confirms" →
  ``async_payment_succeeded`` or "The bank declines" → ``async_payment_failed``.
- Card declined: Stripe shows the error on its page and sends nothing; the session stays open.
- Let it expire: the session expires → ``checkout.session.expired`` (as when the customer walks away).
- Cancel: back to cancel_url (the session stays open, as on Stripe).
"""

from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING, Any

from aiohttp import web

from marketbot.fakes.stripe_state import ZERO_DECIMAL, StripeApiError

if TYPE_CHECKING:
    from marketbot.fakes.stripe import FakeStripe

__all__ = ["install_pay_routes"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#1a1f36}"
    "button{display:block;width:100%;margin:.5rem 0;padding:.7rem;font-size:1rem;border-radius:.4rem;"
    "border:1px solid #635bff;background:#635bff;color:#fff;cursor:pointer}"
    "button.secondary{background:#fff;color:#635bff}p.error{color:#c0123c}small{color:#697386}"
)


def install_pay_routes(app: web.Application, fake: FakeStripe) -> None:
    app.router.add_get("/pay/{id}", functools.partial(_pay_page, fake))
    app.router.add_post("/pay/{id}", functools.partial(_pay_submit, fake))


def _amount(session: dict[str, Any]) -> str:
    amount, currency = session["amount_total"], session["currency"]
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount / 100:.2f} {currency.upper()}"


def _button(action: str, label: str, *, secondary: bool = False) -> str:
    css = ' class="secondary"' if secondary else ""
    return f'<button type="submit" name="action" value="{action}"{css}>{html.escape(label)}</button>'


def _page(session: dict[str, Any], body: str, *, status: int = 200) -> web.Response:
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Fake Stripe Checkout</title><style>{_STYLE}</style></head><body>"
        f"<h1>Pay {html.escape(_amount(session))}</h1><p><small>{html.escape(session['id'])} · "
        "local Stripe stand-in</small></p>"
        f"{body}</body></html>"
    )
    return web.Response(text=page, content_type="text/html", status=status)


def _form(session: dict[str, Any], error: str | None = None) -> str:
    intent_status = session.get("payment_status")
    if session["status"] == "complete" and intent_status == "unpaid":
        return (
            "<p>Paid with a delayed method: the bank has not confirmed yet.</p>"
            '<form method="post">'
            + _button("bank_confirms", "The bank confirms")
            + _button("bank_declines", "The bank declines", secondary=True)
            + "</form>"
        )
    if session["status"] != "open":
        return f"<p>This checkout session is {html.escape(session['status'])}.</p>"
    cancel = html.escape(session.get("cancel_url") or "#")
    shown_error = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return (
        f'{shown_error}<form method="post">'
        + _button("pay", "Pay")
        + _button("pay_delayed", "Pay with a delayed method (bank transfer)", secondary=True)
        + _button("decline", "Use a card that is declined", secondary=True)
        + _button("expire", "Let the session expire", secondary=True)
        + f'</form><p><a href="{cancel}">Cancel and go back</a></p>'
    )


async def _pay_page(fake: FakeStripe, request: web.Request) -> web.Response:
    session = fake.find_session(request.match_info["id"])
    if session is None:
        return web.Response(status=404, text="No such checkout session")
    return _page(session, _form(session))


async def _pay_submit(fake: FakeStripe, request: web.Request) -> web.Response:
    session_id = request.match_info["id"]
    form = await request.post()
    action = str(form.get("action") or ("pay_delayed" if form.get("async_payment") else "pay"))
    try:
        if action in ("pay", "pay_delayed"):
            session = fake.complete_checkout(session_id, async_payment=action == "pay_delayed")
        elif action == "bank_confirms":
            session = fake.succeed_async_payment(session_id)
        elif action == "bank_declines":
            session = fake.fail_async_payment(session_id)
        elif action == "expire":
            session = fake.expire_checkout(session_id)
        elif action == "decline":
            # Stripe keeps the customer on its page with the card error; no event, the session stays open.
            current = fake.find_session(session_id)
            if current is None:
                raise KeyError(session_id)
            return _page(current, _form(current, "Your card was declined. Try another card."), status=402)
        else:
            return web.Response(status=400, text="Unknown action")
    except (StripeApiError, KeyError) as exc:
        return web.Response(status=400, text=html.escape(str(exc)))
    success = session.get("success_url")
    if action in ("pay", "bank_confirms") and success:
        raise web.HTTPSeeOther(success.replace("{CHECKOUT_SESSION_ID}", session_id))
    return _page(session, _form(session))
