"""Exactly one Celery beat: a Redis lease that the running beat renews and a second beat waits for.

Two beats would publish every periodic job twice. The jobs are idempotent, so that would be harmless but
wasteful; the real danger is an operator scaling `beat` by accident and doubling the maintenance load.

    leader = BeatLeader(redis_client, holder="host:pid")
    leader.wait_until_leader()     # blocks while another beat holds the lease
    leader.keep_renewing(on_lost)  # background thread; on_lost() when the lease can't be kept
    ...
    leader.release()

The lease expires LEASE_SECONDS after the last renewal, so a beat killed with SIGKILL is replaced within
that time. Renewal and release are compare-and-set scripts: a beat that lost its lease (paused too long)
can never extend or delete the new leader's lease.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable

import redis
import structlog

log = structlog.get_logger(__name__)

LEADER_KEY = "marketbot:beat:leader"
LEASE_SECONDS = 30
RENEW_EVERY_SECONDS = 10

# Extend only our own lease; 1 when extended, 0 when someone else holds it (or nobody).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class BeatLeader:
    def __init__(
        self,
        client: redis.Redis,
        *,
        holder: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        renew_every: float = RENEW_EVERY_SECONDS,
    ) -> None:
        self.client = client
        self.holder = holder or default_holder()
        self.lease_ms = int(lease_seconds * 1000)
        self.renew_every = renew_every
        self._stop = threading.Event()
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def current(self) -> str | None:
        value = self.client.get(LEADER_KEY)
        return value.decode() if isinstance(value, bytes) else value

    def try_acquire(self) -> bool:
        return bool(self.client.set(LEADER_KEY, self.holder, nx=True, px=self.lease_ms))

    def wait_until_leader(self, poll_seconds: float = 2.0, timeout: float | None = None) -> bool:
        """Block until this process holds the lease (True), or `timeout` passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        announced = None
        while not self._stop.is_set():
            try:
                if self.try_acquire():
                    log.info("beat_leader_acquired", holder=self.holder)
                    return True
                other = self.current()
                if other != announced:
                    log.warning("beat_waiting_for_leader", leader=other, holder=self.holder)
                    announced = other
            except redis.RedisError as exc:
                log.warning("beat_leader_redis_unavailable", error=type(exc).__name__)
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self._stop.wait(poll_seconds)
        return False

    def renew(self) -> bool:
        return bool(self._renew(keys=[LEADER_KEY], args=[self.holder, self.lease_ms]))

    def keep_renewing(self, on_lost: Callable[[], None]) -> threading.Thread:
        """Renew in the background; call `on_lost` once if the lease is taken or can't be renewed in time.

        A Redis outage shorter than the lease is ridden out; longer than that, another beat may have taken
        over, so this one must stop scheduling.
        """

        def run() -> None:
            last_ok = time.monotonic()
            while not self._stop.wait(self.renew_every):
                try:
                    if self.renew():
                        last_ok = time.monotonic()
                        continue
                    log.error("beat_leader_lost", holder=self.holder, leader=self.current())
                except redis.RedisError as exc:
                    if time.monotonic() - last_ok < self.lease_ms / 1000:
                        log.warning("beat_leader_renew_failed", error=type(exc).__name__)
                        continue
                    log.error("beat_leader_lease_lapsed", holder=self.holder)
                on_lost()
                return

        thread = threading.Thread(target=run, name="beat-leader", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(redis.RedisError):  # unreachable Redis: the lease expires on its own
            self._release(keys=[LEADER_KEY], args=[self.holder])
