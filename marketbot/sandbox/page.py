"""Serves the sandbox page (``/sandbox/``) and its settings from the Telegram stand-in's HTTP server.

Why on the stand-in's server rather than a server of its own: the page is a Telegram client, and the
stand-in is its Telegram. Everything the page needs (the chats as stored, uploaded photos, turning a click
into an Update and delivering it to the gateway's webhook) is the stand-in's ``/_sandbox`` API on the same
origin, so there is no proxy to write, no second port to pick or collide, no CORS, and `marketbot up`
prints one URL. The page itself is static files: no build step, no CDN, and a Content-Security-Policy that
lets it load and fetch only from this origin (the Pay link opens the Stripe stand-in in a new tab).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from marketbot.sandbox import city

STATIC = Path(__file__).parent / "static"
# Who the page lets you be. `marketbot up` makes 1000 the operator (ADMIN_TELEGRAM_IDS) and the README's
# `marketbot say` examples are user 1001, so the same people appear in the page and in a terminal.
PERSONAS: tuple[dict[str, Any], ...] = (
    {"id": 1001, "name": "Oscar", "role": "Business owner", "phone": "+6591110001", "color": "#e17076"},
    {"id": 1002, "name": "Mia", "role": "Customer", "phone": "+6591110002", "color": "#7bc862"},
    {"id": 1003, "name": "Leo", "role": "Customer", "phone": "+6591110003", "color": "#65aadd"},
    {"id": 1000, "name": "Ada", "role": "Admin", "phone": "+6591110000", "color": "#a695e7"},
)
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def install_page_routes(app: web.Application, *, bot_username: Callable[[], str]) -> None:
    async def root(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/sandbox/")

    async def index(_request: web.Request) -> web.Response:
        return _static_file("index.html")

    async def config(_request: web.Request) -> web.Response:
        return web.json_response(
            {"bot_username": bot_username(), "personas": list(PERSONAS), "city": city.as_json()},
            headers={"Cache-Control": "no-store"},
        )

    async def asset(request: web.Request) -> web.Response:
        return _static_file(request.match_info["name"])

    app.router.add_get("/", root)
    app.router.add_get("/sandbox", root)
    app.router.add_get("/sandbox/", index)
    app.router.add_get("/sandbox/config.json", config)
    app.router.add_get("/sandbox/static/{name}", asset)


def _static_file(name: str) -> web.Response:
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or not path.is_file() or path.suffix not in _TYPES:
        raise web.HTTPNotFound()
    return web.Response(
        body=path.read_bytes(),
        content_type=_TYPES[path.suffix],
        charset="utf-8",
        headers={
            "Content-Security-Policy": _CSP,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )
