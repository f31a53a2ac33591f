"""The shared Telegram budget as workers use it, on a real Redis: one message per second per chat with no
burst except a reply's second call (paid back), waits for the chat told apart from waits for the bot, and
bot-wide slots booked ahead so none goes unused, yet never 30 arriving within a second."""

from __future__ import annotations

import itertools
import threading
import time

from tasks.adapters.ratelimit import GLOBAL_ARRIVAL_MARGIN_SECONDS
from tests.integration.conftest import LimiterFactory

Factory = LimiterFactory


def test_a_chat_gets_one_message_per_second_and_no_burst(make_limiter: Factory) -> None:
    limiter = make_limiter()

    assert limiter.reserve(42) == 0.0
    wait = limiter.reserve(42)

    assert 0.9 < wait <= 1.0


def test_a_replys_second_call_goes_at_once_and_the_chat_pays_it_back(make_limiter: Factory) -> None:
    limiter = make_limiter()

    assert limiter.reserve(42) == 0.0
    # The photo's edit, the message's rest: right behind (the bot-wide spacing apart, ~1/29 s, booked)
    assert limiter.try_reserve(42, follow_up=True, ahead=0.1).taken
    third = limiter.try_reserve(42, follow_up=True, ahead=0.1)
    next_reply = limiter.try_reserve(42, ahead=0.1)

    assert not third.taken and 0.9 < third.chat_wait <= 1.0  # a reply gets one call of credit, not more
    assert not next_reply.taken and 1.9 < next_reply.chat_wait <= 2.0  # two calls, two seconds


def test_the_limiter_remembers_which_reply_took_a_chats_last_slot(make_limiter: Factory) -> None:
    limiter = make_limiter()
    assert limiter.try_reserve(42, reply="buy-1", ahead=0.1).taken  # Buy's "reserved" edit

    other = limiter.try_reserve(42, reply="start-2", ahead=0.1)
    assert not other.taken and 0.9 < other.chat_wait <= 1.0  # another reply: the chat's next slot
    assert limiter.chat_wait(42, reply="buy-1") == 0.0
    # The same reply's next call, from whichever worker: right behind, once
    assert limiter.try_reserve(42, reply="buy-1", ahead=0.1).taken
    third = limiter.try_reserve(42, reply="buy-1", ahead=0.1)
    assert not third.taken and 0.9 < third.chat_wait <= 1.0
    assert 1.9 < limiter.try_reserve(42, reply="start-2", ahead=0.1).chat_wait <= 2.0


def test_a_slot_taken_for_something_else_ends_a_replys_credit(make_limiter: Factory) -> None:
    limiter = make_limiter(per_chat_per_second=5)  # 0.2 s apart
    assert limiter.try_reserve(9, reply="a", ahead=0.1).taken
    time.sleep(0.25)
    assert limiter.try_reserve(9, ahead=0.1).taken  # a reminder: no reply behind it

    late = limiter.try_reserve(9, reply="a", ahead=0.1)

    assert not late.taken and 0.1 < late.chat_wait <= 0.2


def test_telegrams_wait_for_a_chat_holds_back_a_replys_second_call_too(make_limiter: Factory) -> None:
    limiter = make_limiter()
    assert limiter.reserve(42) == 0.0

    limiter.penalize(42, 3)

    assert 2.9 < limiter.reserve(42, follow_up=True) <= 3.0


def test_a_refusal_says_whether_the_chat_or_the_bot_holds_the_send_back(make_limiter: Factory) -> None:
    limiter = make_limiter()
    assert limiter.reserve(7) == 0.0

    by_chat = limiter.try_reserve(7)
    by_bot = limiter.try_reserve(8)  # another chat, right behind: only the bot-wide spacing (~1/29 s)

    assert not by_chat.taken and 0.9 < by_chat.chat_wait <= 1.0
    assert not by_bot.taken and by_bot.chat_wait == 0.0 and 0 < by_bot.global_wait < 0.05


def test_peeking_at_a_chats_wait_takes_nothing(make_limiter: Factory) -> None:
    limiter = make_limiter()
    assert limiter.chat_wait(5) == 0.0
    assert limiter.chat_wait(5) == 0.0
    assert limiter.reserve(5) == 0.0

    assert 0.9 < limiter.chat_wait(5) <= 1.0
    assert 0.9 < limiter.reserve(5) <= 1.0


def test_booked_slots_keep_any_second_under_thirty_while_none_goes_unused(make_limiter: Factory) -> None:
    limiter = make_limiter()
    slots: list[float] = []
    lock = threading.Lock()

    def worker(first_chat: int) -> None:
        for chat in range(first_chat, first_chat + 12):
            slot = limiter.try_reserve(chat, ahead=2.0)
            assert slot.taken
            with lock:
                slots.append(time.monotonic() + slot.global_wait)

    threads = [threading.Thread(target=worker, args=(1000 * i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 48 sends booked at once by 4 workers: one slot each, back to back at the budget's spacing
    slots.sort()
    spacing = (1 + GLOBAL_ARRIVAL_MARGIN_SECONDS) / 30
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) > 0.75 * spacing  # (measured here, a few ms after Redis booked them)
    assert slots[-1] - slots[0] < 47 * spacing + 0.1  # no slot lost between one worker's wait and the next
    assert all(slots[i + 30] - slots[i] > 1.0 for i in range(len(slots) - 30))  # 31 never within 1 s


def test_a_slot_further_ahead_than_asked_is_not_booked(make_limiter: Factory) -> None:
    limiter = make_limiter(global_per_second=10)
    assert limiter.try_reserve(1, ahead=1.0).taken

    refused = limiter.try_reserve(2, ahead=0.05)

    assert not refused.taken and 0.05 < refused.global_wait <= 0.11
    assert limiter.try_reserve(2, ahead=0.2).taken  # nothing was charged for the refusal
