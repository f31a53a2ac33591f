"""A person talks to the bot; every reply is produced by a worker and arrives through the Bot API."""

from __future__ import annotations

import itertools
import json
import random
import time
import urllib.error
import urllib.request
from typing import Any

import redis
import sqlalchemy as sa

from marketbot.harness import text_update
from marketbot.metrics_store import COUNTERS_KEY, series
from tasks.names import SEND_OUTBOX_MESSAGE
from tests.e2e.conftest import SECRET, Stack


def _user() -> int:
    return random.randint(10**9, 9 * 10**9)


def _replies_to(stack: Stack, user: int, count: int = 1, timeout: float = 20.0) -> list[Any]:
    return stack.telegram.wait_for_calls(
        "sendMessage", count=count, timeout=timeout, predicate=lambda c: c.params.get("chat_id") == user
    )


def _post_raw(stack: Stack, body: bytes, secret: str | None = SECRET) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(f"{stack.gateway_url}/telegram/webhook", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_start_gets_a_welcome_offering_both_roles(stack: Stack) -> None:
    user = _user()

    stack.telegram.send_user_message(user, "/start", first_name="Ana")

    (reply,) = _replies_to(stack, user)
    assert "Welcome to MarketBot, Ana!" in reply.params["text"]
    buttons = [b["text"] for row in reply.params["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["🔎 Find food", "🏪 Sell surplus food"]


def test_help_and_unknown_text_get_helpful_answers(stack: Stack) -> None:
    user = _user()
    stack.telegram.send_user_message(user, "/help")
    stack.telegram.send_user_message(user, "do you have bread?")

    help_reply, hint = _replies_to(stack, user, count=2)
    assert "/cancel" in help_reply.params["text"]
    assert "didn't understand" in hint.params["text"]


def test_choosing_find_food_stops_the_spinner_and_asks_for_location(stack: Stack) -> None:
    user = _user()
    stack.telegram.send_user_message(user, "/start")
    _replies_to(stack, user)

    stack.telegram.send_callback(user, "r:c")

    stack.telegram.wait_for_calls("answerCallbackQuery", timeout=10)
    _, ask = _replies_to(stack, user, count=2)
    assert ask.params["reply_markup"]["keyboard"][0][0]["request_location"] is True


def test_same_update_delivered_three_times_gets_one_reply(stack: Stack) -> None:
    user = _user()
    update = text_update(user, "/help")
    body = json.dumps(update).encode()

    assert [_post_raw(stack, body) for _ in range(3)] == [200, 200, 200]

    _replies_to(stack, user)
    time.sleep(1.5)  # give a wrongly duplicated reply time to show up
    assert len([c for c in stack.telegram.calls("sendMessage") if c.params.get("chat_id") == user]) == 1


def test_wrong_secret_is_rejected_and_nothing_is_answered(stack: Stack) -> None:
    user = _user()
    update = text_update(user, "hi")

    assert _post_raw(stack, json.dumps(update).encode(), secret="wrong") == 401

    time.sleep(1.0)
    assert [c for c in stack.telegram.calls("sendMessage") if c.params.get("chat_id") == user] == []


def test_malformed_json_gets_400_and_the_gateway_keeps_serving(stack: Stack) -> None:
    assert _post_raw(stack, b'{"update_id": 1, "message": ') == 400
    user = _user()
    stack.telegram.send_user_message(user, "/start")
    _replies_to(stack, user)


def test_a_burst_from_one_user_is_applied_in_update_order(stack: Stack, database_url: str) -> None:
    """40 updates at once from one user, four worker processes: applied strictly in update_id order."""
    user = _user()
    first = random.randint(10**8, 10**9)
    bodies = [
        json.dumps(text_update(user, f"burst {i}", update_id=first + i, message_id=i + 1)).encode()
        for i in range(40)
    ]
    # Posted back to back, as Telegram delivers them, while four worker processes race to drain them.
    assert [_post_raw(stack, body) for body in bodies] == [200] * 40

    engine = sa.create_engine(database_url)
    deadline = time.monotonic() + 60
    rows: list[Any] = []
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT dedup_key FROM outbox WHERE chat_id = :c ORDER BY id"), {"c": user}
            ).all()
        if len(rows) >= 40:
            break
        time.sleep(0.2)
    engine.dispose()
    applied = [int(r.dedup_key.split(":")[1]) for r in rows]
    # Outbox ids are assigned inside each update's transaction, so their order is the order in which the
    # updates were applied: exactly update order, each once.
    assert applied == [first + i for i in range(40)]


def test_a_chats_replies_keep_to_one_a_second_and_the_waits_show_as_retries(
    stack: Stack, redis_url: str
) -> None:
    counters = redis.Redis.from_url(redis_url)
    retries = series("marketbot_task_retries_total", {"task": SEND_OUTBOX_MESSAGE})
    before = float(counters.hget(COUNTERS_KEY, retries) or 0)
    user = _user()
    first = random.randint(10**8, 10**9)

    # Three messages at once from one person: three replies to one chat
    for i in range(3):
        body = json.dumps(text_update(user, f"hello {i}", update_id=first + i, message_id=i + 1)).encode()
        assert _post_raw(stack, body) == 200
    replies = _replies_to(stack, user, count=3)

    # Telegram's ~1 message/s per chat: each reply waited for its slot (a send task handed back, not asleep)
    times = sorted(call.at for call in replies)
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))
    assert float(counters.hget(COUNTERS_KEY, retries) or 0) >= before + 1
    counters.close()


def test_telegram_429_delays_the_reply_but_delivers_it_once(stack: Stack) -> None:
    user = _user()
    stack.telegram.fail_next("sendMessage", status=429, retry_after=1)

    stack.telegram.send_user_message(user, "/start")

    (reply,) = _replies_to(stack, user, timeout=30)
    rejected = [c for c in stack.telegram.calls("sendMessage") if c.status == 429]
    assert rejected and rejected[-1].at < reply.at
    time.sleep(1.0)
    assert (
        len(
            [
                c
                for c in stack.telegram.calls("sendMessage")
                if c.params.get("chat_id") == user and c.status == 200
            ]
        )
        == 1
    )


def test_user_who_blocked_the_bot_is_marked_unreachable(stack: Stack, database_url: str) -> None:
    user = _user()
    stack.telegram.block_user(user)

    stack.telegram.send_user_message(user, "/start")

    engine = sa.create_engine(database_url)
    deadline = time.monotonic() + 30
    row = None
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT u.unreachable_at, o.status FROM users u JOIN outbox o ON o.chat_id = u.chat_id "
                    "WHERE u.telegram_user_id = :u"
                ),
                {"u": user},
            ).first()
        if row is not None and row.status != "pending":
            break
        time.sleep(0.2)
    engine.dispose()
    assert row is not None and row.unreachable_at is not None and row.status == "dropped"
    forbidden = [c for c in stack.telegram.calls("sendMessage") if c.params.get("chat_id") == user]
    assert [c.status for c in forbidden] == [403]  # tried once, never retried


def test_a_person_can_talk_to_the_local_bot_from_a_terminal(stack: Stack, capsys: Any) -> None:
    from marketbot.say import say

    user = _user()
    assert say("/start", press=None, user=user, fake_url=stack.telegram.base_url) == 0
    assert say(None, press="r:b", user=user, fake_url=stack.telegram.base_url) == 0

    # Photos, pins and contacts go through the same stand-in (here outside any dialog: a clear answer).
    assert say(None, press=None, share="photo", user=user, fake_url=stack.telegram.base_url) == 0
    assert say("1.29,103.85", press=None, share="location", user=user, fake_url=stack.telegram.base_url) == 0

    printed = capsys.readouterr().out
    assert "Please answer with a text message." in printed  # the photo, where a business name was asked
    assert "Welcome to MarketBot" in printed
    assert "[🔎 Find food]  → marketbot say --press r:c" in printed
    assert "What is your business called?" in printed


def test_logs_follow_an_update_by_correlation_id_and_hold_no_personal_data(stack: Stack) -> None:
    user = _user()
    update = stack.telegram.send_user_message(
        user, "my flat is at 7 Planted Lane", first_name="Zebulonplanted", username="planted_handle"
    )
    _replies_to(stack, user)
    time.sleep(0.5)  # let the processes flush their last lines

    lines = [*stack.gateway.output, *(line for w in stack.workers for line in w.output)]
    correlation = f"tg-{update['update_id']}"
    tagged = [json.loads(line) for line in lines if correlation in line and line.startswith("{")]
    events = {entry["event"] for entry in tagged}
    # Gateway → drain task → handler → send task: one id all the way.
    assert {"update_received", "update_handled", "outbox_delivery"} <= events
    everything = "\n".join(lines)
    for planted in ("Zebulonplanted", "planted_handle", "Planted Lane", str(user)):
        assert planted not in everything
