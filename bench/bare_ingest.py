"""The gateway-ingest baseline: a bare aiohttp endpoint that does one Redis push per POST and answers 200.

    python -m bench.bare_ingest --port 8099 --redis unix:///path/redis.sock?db=4

Started by bench.gateway_ingest as a separate process, like the gateway it is compared with.
"""

from __future__ import annotations

import argparse

import redis.asyncio
from aiohttp import web


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    args = parser.parse_args()
    client = redis.asyncio.Redis.from_url(args.redis)

    async def webhook(request: web.Request) -> web.Response:
        await client.lpush("bench:bare", await request.read())
        return web.Response(text="ok")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/telegram/webhook", webhook)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
