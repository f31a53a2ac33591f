"""Container health checks, baked into both images as /usr/local/bin/marketbot-healthcheck.

    marketbot-healthcheck gateway   GET http://127.0.0.1:$HTTP_PORT/healthz answers 200
    marketbot-healthcheck worker    this container's Celery node answers a ping over the broker

Liveness only: a gateway whose broker is down still answers /healthz (restarting it would not help; /readyz
tells that story), and a worker answers the ping from its main process even when every pool process is
busy. The worker check costs one short-lived Python process and one broadcast on the broker every 30 s,
which is cheaper than a full `marketbot status` (that also queries PostgreSQL).
Exit status 0 healthy, 1 unhealthy, 2 usage.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import urllib.error
import urllib.request


def gateway(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our own loopback URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError) as exc:
        print(f"gateway unhealthy: {exc}", file=sys.stderr)
        return False


def worker(node: str, timeout: float) -> bool:
    from tasks.app import app

    replies = app.control.ping(destination=[node], timeout=timeout) or []
    if any(node in reply for reply in replies):
        return True
    print(f"worker unhealthy: {node} did not answer a ping within {timeout:g} s", file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="marketbot-healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["gateway", "worker"])
    port = os.environ.get("HTTP_PORT", "8080")
    parser.add_argument("--url", default=f"http://127.0.0.1:{port}/healthz", help="gateway: URL to GET")
    # Celery names a node celery@<hostname> unless `marketbot worker --hostname` says otherwise.
    parser.add_argument("--node", default=f"celery@{socket.gethostname()}", help="worker: node name")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    healthy = gateway(args.url, args.timeout) if args.what == "gateway" else worker(args.node, args.timeout)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
