"""The fake Stripe's hosted Checkout page: ``GET /pay/{id}`` shows the amount and a Pay button (with a
"delayed payment method" box), ``POST /pay/{id}`` pays and redirects to ``success_url``. For the sandbox."""

from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING

from aiohttp import web

from marketbot.fakes.stripe_state import ZERO_DECIMAL, StripeApiError

if TYPE_CHECKING:
    from marketbot.fakes.stripe import FakeStripe

__all__ = ["install_pay_routes"]


def install_pay_routes(app: web.Application, fake: FakeStripe) -> None:
    app.router.add_get("/pay/{id}", functools.partial(_pay_page, fake))
    app.router.add_post("/pay/{id}", functools.partial(_pay_submit, fake))


async def _pay_page(fake: FakeStripe, request: web.Request) -> web.Response:
    session = fake.find_session(request.match_info["id"])
    if session is None:
        return web.Response(status=404, text="No such checkout session")
    amount, currency = session["amount_total"], session["currency"]
    shown = (
        f"{amount} {currency.upper()}"
        if currency in ZERO_DECIMAL
        else (f"{amount / 100:.2f} {currency.upper()}")
    )
    if session["status"] != "open":
        form = f"<p>This checkout session is {html.escape(session['status'])}.</p>"
    else:
        cancel = html.escape(session.get("cancel_url") or "#")
        form = (
            '<form method="post"><label><input type="checkbox" name="async_payment" value="1"> '
            'delayed payment method</label><br><button type="submit">Pay</button></form>'
            f'<p><a href="{cancel}">Cancel</a></p>'
        )
    page = (
        f"<!doctype html><html><head><title>Fake Stripe Checkout</title></head><body>"
        f"<h1>Pay {html.escape(shown)}</h1><p>{html.escape(session['id'])}</p>{form}</body></html>"
    )
    return web.Response(text=page, content_type="text/html")


async def _pay_submit(fake: FakeStripe, request: web.Request) -> web.Response:
    session_id = request.match_info["id"]
    form = await request.post()
    try:
        session = fake.complete_checkout(session_id, async_payment=bool(form.get("async_payment")))
    except (StripeApiError, KeyError) as exc:
        return web.Response(status=400, text=html.escape(str(exc)))
    success = session.get("success_url")
    if success:
        raise web.HTTPSeeOther(success.replace("{CHECKOUT_SESSION_ID}", session_id))
    return web.Response(text="<!doctype html><p>Paid.</p>", content_type="text/html")
