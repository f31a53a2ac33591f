"""Exactly one beat schedules: the lease, and two real `marketbot beat` processes racing for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from marketbot.beat_leader import LEADER_KEY, BeatLeader
from marketbot.harness import Process
from tests.conftest import _with_redis_db

# A Redis database of its own: the beats below publish real periodic tasks, which must not land in the
# queues other tests inspect.
BEAT_DB = 13


@pytest.fixture
def beat_redis_url(redis_url: str) -> Iterator[str]:
    url = _with_redis_db(redis_url, BEAT_DB)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def client(beat_redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(beat_redis_url)
    try:
        yield c
    finally:
        c.close()


def test_a_second_beat_cannot_take_the_lease_while_the_first_holds_it(client: redis.Redis) -> None:
    first = BeatLeader(client, holder="host-a:1")
    second = BeatLeader(client, holder="host-b:2")

    assert first.try_acquire()
    assert not second.try_acquire()
    assert not second.renew()  # renewing is only for the holder
    second.release()  # and releasing someone else's lease does nothing
    assert first.current() == "host-a:1"

    first.release()
    assert second.try_acquire() and second.current() == "host-b:2"


def test_a_dead_beats_lease_lapses_and_the_waiting_one_takes_over(client: redis.Redis) -> None:
    # Given a leader that stops renewing (killed), with a short lease
    BeatLeader(client, holder="dead:1", lease_seconds=0.5).try_acquire()
    waiting = BeatLeader(client, holder="next:2")

    # When another beat waits for the lease
    started = time.monotonic()
    became_leader = waiting.wait_until_leader(poll_seconds=0.1, timeout=5)

    # Then it takes over once the lease lapses, not before
    assert became_leader
    assert 0.3 <= time.monotonic() - started < 5
    assert waiting.current() == "next:2"


def test_a_leader_whose_lease_was_taken_is_told_to_stop(client: redis.Redis) -> None:
    leader = BeatLeader(client, holder="slow:1", lease_seconds=5, renew_every=0.1)
    assert leader.try_acquire()
    lost: list[bool] = []
    leader.keep_renewing(lambda: lost.append(True))

    # Another process took the lease (e.g. ours lapsed during a long pause)
    client.set(LEADER_KEY, "usurper:2")

    deadline = time.monotonic() + 5
    while not lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lost == [True]
    leader.release()
    assert client.get(LEADER_KEY) == b"usurper:2"  # the loser never deletes the new leader's lease


@pytest.mark.slow
def test_second_marketbot_beat_waits_and_takes_over_when_the_first_stops(
    beat_redis_url: str, database_url: str, tmp_path: Path, client: redis.Redis
) -> None:
    env = {
        "REDIS_URL": beat_redis_url,
        "DATABASE_URL": database_url,
        "LOG_FORMAT": "json",
        "MARKETBOT_DATA_DIR": str(tmp_path),
    }
    first = Process("beat-1", ["beat"], env)
    second = None
    try:
        first.wait_for_output("beat_leader_acquired", timeout=60)
        second = Process("beat-2", ["beat"], env)
        second.wait_for_output("beat_waiting_for_leader", timeout=60)
        assert not any("beat_leader_acquired" in line for line in second.output)

        # When the first beat stops (SIGTERM), it hands the lease back at once
        first.stop()
        second.wait_for_output("beat_leader_acquired", timeout=20)
        holder = client.get(LEADER_KEY)
        assert holder is not None and holder.decode().endswith(f":{second.proc.pid}")
    finally:
        first.stop()
        if second is not None:
            second.stop()
