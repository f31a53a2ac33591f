"""The Bot API sender against the fake Telegram server (real aiogram client) and a real Redis budget."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import segno
from structlog.testing import capture_logs

from core.messages import QR_PAYLOAD_FIELD, InlineButton, Reply
from core.telegram_limits import MAX_CAPTION_CHARS, MAX_TEXT_CHARS, visible_length
from marketbot.fakes.telegram import FakeTelegram, UploadedFile
from tasks.adapters.qr import QR_BORDER, QR_ERROR, QR_SCALE
from tasks.adapters.ratelimit import TelegramRateLimiter
from tasks.adapters.telegram import (
    FLOOD_CONTROL,
    Blocked,
    BotApiSender,
    Rejected,
    RetryLater,
    Sent,
)
from tests.support.png import PNG_SIGNATURE, png_size, qr_modules

TOKEN = "123456:TEST"
KEYBOARD = {"inline_keyboard": [[{"text": "Reserve", "callback_data": "r:b:17"}]]}
PICKUP_LINK = "https://t.me/marketbot_test_bot?start=pk_7Q2M9XK4"


@pytest.fixture(scope="module")
def shared_sender(fake: FakeTelegram, limiter: TelegramRateLimiter) -> Iterator[BotApiSender]:
    # One sender for the module, as in a worker: its pooled connection is reused from test to test.
    s = BotApiSender(token=TOKEN, base_url=fake.base_url, limiter=limiter)
    yield s
    s.close()


@pytest.fixture
def sender(fake: FakeTelegram, shared_sender: BotApiSender) -> BotApiSender:
    fake.clear_calls()
    return shared_sender


@pytest.fixture
def chat_id() -> int:
    return random.randint(10**8, 10**10)


def _html(chat_id: int, text: str, **extra: Any) -> dict[str, Any]:
    return {"chat_id": chat_id, "text": text, "parse_mode": "HTML", **extra}


def test_a_message_is_delivered_with_its_keyboard(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    result = sender.send("sendMessage", _html(chat_id, "<b>Sourdough</b> 2 left", reply_markup=KEYBOARD))

    assert isinstance(result, Sent)
    [call] = fake.calls("sendMessage")
    assert call.token == TOKEN
    assert call.params["chat_id"] == chat_id
    assert call.params["reply_markup"] == KEYBOARD
    assert call.response["result"]["message_id"] == result.message_id


def test_flood_control_means_retry_after_telegrams_wait_and_holds_the_chat_back(
    sender: BotApiSender, fake: FakeTelegram, limiter: TelegramRateLimiter, chat_id: int
) -> None:
    fake.fail_next("sendMessage", status=429, retry_after=1)

    result = sender.send("sendMessage", _html(chat_id, "hello"))

    assert result == RetryLater(1.0, FLOOD_CONTROL)
    assert limiter.reserve(chat_id) > 0.5  # every worker now waits for this chat
    assert limiter.reserve(chat_id + 1) < 0.1  # other chats only wait for the global spacing, if at all


def test_a_telegram_server_error_is_retried(sender: BotApiSender, fake: FakeTelegram, chat_id: int) -> None:
    fake.fail_next("sendMessage", status=502)

    result = sender.send("sendMessage", _html(chat_id, "hello"))

    assert isinstance(result, RetryLater)
    assert result.attempted
    assert 0 < result.after <= 5
    assert result.reason.startswith("server_error")


def test_an_unreachable_server_is_retried(limiter: TelegramRateLimiter, chat_id: int) -> None:
    # Port 9 (discard) is closed here: the connection is refused at once.
    sender = BotApiSender(token=TOKEN, base_url="http://127.0.0.1:9", limiter=limiter)
    try:
        result = sender.send("sendMessage", _html(chat_id, "hello"))
    finally:
        sender.close()

    assert isinstance(result, RetryLater)
    assert result.reason.startswith("network_error")


def test_a_user_who_blocked_the_bot_is_blocked(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    fake.block_user(chat_id)

    result = sender.send("sendMessage", _html(chat_id, "hello"))

    assert isinstance(result, Blocked)


def test_an_edit_that_changes_nothing_counts_as_sent(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    first = sender.send("sendMessage", _html(chat_id, "<b>3 left</b>", reply_markup=KEYBOARD))
    assert isinstance(first, Sent)

    result = sender.send(
        "editMessageText",
        _html(chat_id, "<b>3 left</b>", message_id=first.message_id, reply_markup=KEYBOARD),
    )

    assert result == Sent(None)
    [edit] = fake.calls("editMessageText")
    assert "message is not modified" in edit.response["description"]


@pytest.mark.parametrize(
    ("method", "payload", "injected"),
    [
        ("editMessageText", {"message_id": 999_999, "text": "gone"}, None),
        ("deleteMessage", {"message_id": 5}, "Bad Request: message can't be deleted"),
    ],
)
def test_edits_and_deletes_of_missing_messages_are_rejected(
    sender: BotApiSender,
    fake: FakeTelegram,
    chat_id: int,
    method: str,
    payload: dict[str, Any],
    injected: str | None,
) -> None:
    if injected:
        fake.fail_next(method, status=400, description=injected)

    result = sender.send(method, {"chat_id": chat_id, **payload})

    assert isinstance(result, Rejected)
    assert ("can't be deleted" if injected else "message to edit not found") in result.reason


def test_a_5000_character_text_arrives_as_two_messages_with_the_keyboard_on_the_last(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    text = "<b>Today</b>\n" + "\n".join(f"{i:03} " + "x" * 95 for i in range(50))
    assert visible_length(text) > 5000

    result = sender.send("sendMessage", _html(chat_id, text, reply_markup=KEYBOARD))

    first, second = fake.calls("sendMessage")
    assert isinstance(result, Sent)
    assert result.message_id == second.response["result"]["message_id"]
    assert "reply_markup" not in first.params
    assert second.params["reply_markup"] == KEYBOARD
    assert all(visible_length(c.params["text"]) <= MAX_TEXT_CHARS for c in (first, second))
    assert first.params["text"].startswith("<b>Today</b>")
    assert second.params["text"].endswith("049 " + "x" * 95)


def test_a_long_plain_text_is_split_too(sender: BotApiSender, fake: FakeTelegram, chat_id: int) -> None:
    text = "a < b & c " * 500  # plain text: "<" and "&" are characters, not markup

    result = sender.send("sendMessage", {"chat_id": chat_id, "text": text})

    assert isinstance(result, Sent)
    sent = [c.params["text"] for c in fake.calls("sendMessage")]
    assert len(sent) == 2
    assert " ".join(sent).split() == text.split()


def test_a_long_caption_is_cut_and_the_rest_follows_as_a_message(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    caption = "<b>Bakery box</b>\n\n" + "Croissants, rolls and rye. " * 60
    payload = {
        "chat_id": chat_id,
        "photo": "https://example.com/box.jpg",
        "caption": caption,
        "parse_mode": "HTML",
        "reply_markup": KEYBOARD,
    }

    result = sender.send("sendPhoto", payload)

    [photo] = fake.calls("sendPhoto")
    [follow_up] = fake.calls("sendMessage")
    assert visible_length(photo.params["caption"]) <= MAX_CAPTION_CHARS
    assert "reply_markup" not in photo.params
    assert follow_up.params["reply_markup"] == KEYBOARD
    assert isinstance(result, Sent)
    assert result.message_id == follow_up.response["result"]["message_id"]
    words = (photo.params["caption"] + " " + follow_up.params["text"]).split()
    assert words == caption.split()


def test_when_the_rest_of_a_split_message_fails_only_the_rest_is_retried(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    caption = "Rye loaves. " * 120
    fake.fail_next("sendMessage", status=500)

    result = sender.send(
        "sendPhoto",
        {
            "chat_id": chat_id,
            "photo": "https://example.com/rye.jpg",
            "caption": caption,
            "reply_markup": KEYBOARD,
        },
    )

    assert isinstance(result, RetryLater)
    assert result.resume_with is not None
    method, payload = result.resume_with
    assert method == "sendMessage"
    assert payload["chat_id"] == chat_id
    assert payload["reply_markup"] == KEYBOARD
    assert (fake.calls("sendPhoto")[0].params["caption"] + " " + payload["text"]).split() == caption.split()


def test_callback_data_over_64_bytes_is_rejected_without_calling_telegram(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Buy", "callback_data": "buy:" + "Пекарня" * 6}]]}

    result = sender.send("sendMessage", _html(chat_id, "hi", reply_markup=keyboard))

    assert isinstance(result, Rejected)
    assert "64" in result.reason
    assert fake.calls() == []


def test_an_edit_too_long_for_one_message_is_rejected(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    result = sender.send("editMessageText", _html(chat_id, "x" * 5000, message_id=1))

    assert isinstance(result, Rejected)
    assert fake.calls() == []


def test_a_long_callback_answer_is_shortened(sender: BotApiSender, fake: FakeTelegram, chat_id: int) -> None:
    fake.send_callback(chat_id, "r:1")
    query_id = fake._state.updates[-1].payload["callback_query"]["id"]

    result = sender.send("answerCallbackQuery", {"callback_query_id": query_id, "text": "Sold out. " * 40})

    assert result == Sent(None)
    [call] = fake.calls("answerCallbackQuery")
    assert len(call.params["text"]) <= 200


def test_the_sender_waits_a_little_for_the_chats_next_slot(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    started = time.monotonic()
    results = [sender.send("sendMessage", _html(chat_id, f"n{i}")) for i in range(4)]

    assert all(isinstance(r, Sent) for r in results)
    assert time.monotonic() - started >= 0.9  # burst of 3, then about one per second
    assert all(c.status == 200 for c in fake.calls())  # and so Telegram never said 429


def test_a_long_wait_is_handed_back_instead_of_blocking_the_worker(
    fake: FakeTelegram, limiter: TelegramRateLimiter, chat_id: int
) -> None:
    fake.clear_calls()
    sender = BotApiSender(token=TOKEN, base_url=fake.base_url, limiter=limiter, max_inline_wait=0.2)
    limiter.penalize(chat_id, 5)
    try:
        result = sender.send("sendMessage", _html(chat_id, "later"))
    finally:
        sender.close()

    assert isinstance(result, RetryLater)
    assert not result.attempted
    assert 4 < result.after <= 5
    assert fake.calls() == []


def test_worker_threads_each_get_their_own_client(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    results: list[object] = []

    def work(offset: int) -> None:
        for i in range(2):
            results.append(sender.send("sendMessage", _html(chat_id + offset, f"t{offset}-{i}")))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 6
    assert all(isinstance(r, Sent) for r in results)
    loops = {id(client.loop) for client in sender._clients}
    assert len(loops) >= 3  # one event loop (and Bot) per thread, never shared across them


def test_no_message_text_or_chat_id_is_logged(sender: BotApiSender, fake: FakeTelegram, chat_id: int) -> None:
    secret_text = "Anna Kowalska, 12 Baker Street"
    fake.fail_next("sendMessage", status=400, description=f'Bad Request: can\'t parse "{secret_text}"')

    with capture_logs() as logs:
        sender.send("sendMessage", _html(chat_id, secret_text))
        sender.send("sendMessage", _html(chat_id, secret_text))

    assert logs
    dumped = repr(logs)
    assert secret_text not in dumped
    assert str(chat_id) not in dumped
    assert all(entry["chat"] == "redacted" for entry in logs)


# -- pickup QR codes: drawn at send time, uploaded as a photo ---------------------------------------------


def _qr_reply(chat_id: int, caption: str = "<b>Your pickup code</b>\nShow this at the counter.") -> Any:
    keyboard = ((InlineButton("My orders", callback_data="o:list"),),)
    return Reply(chat_id, caption, inline_keyboard=keyboard, qr_data=PICKUP_LINK).to_bot_api()


def _uploaded_png(call: Any) -> bytes:
    photo = call.params["photo"]
    assert isinstance(photo, UploadedFile), "the QR code must be uploaded as a file"
    return photo.data


def _modules_of(text: str) -> list[list[bool]]:
    return [[bool(v) for v in row] for row in segno.make_qr(text, error=QR_ERROR).matrix]


def test_a_qr_reply_arrives_as_an_uploaded_png_photo_with_our_caption(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    method, payload = _qr_reply(chat_id)
    assert method == "sendPhoto" and "photo" not in payload  # the outbox stores the text, not an image

    result = sender.send(method, payload)

    assert isinstance(result, Sent)
    [call] = fake.calls("sendPhoto")
    assert QR_PAYLOAD_FIELD not in call.params  # our own field never reaches Telegram
    assert call.params["caption"] == payload["caption"] and call.params["parse_mode"] == "HTML"
    assert call.params["reply_markup"] == payload["reply_markup"]
    png = _uploaded_png(call)
    assert png.startswith(PNG_SIGNATURE)
    width, height = png_size(png)
    assert width == height >= 290  # 10 px per module: big enough to scan from a phone screen
    # What a phone would scan: the pixels are exactly the QR code of the pickup link.
    assert qr_modules(png, scale=QR_SCALE, border=QR_BORDER) == _modules_of(PICKUP_LINK)
    message = call.response["result"]
    assert message["message_id"] == result.message_id
    assert message["caption"] == "Your pickup code\nShow this at the counter."
    assert fake.uploaded_file(message["photo"][-1]["file_id"]).data == png


def test_a_qr_photo_with_a_long_caption_is_followed_by_the_rest_as_a_message(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    caption = "<b>Your pickup code</b>\n\n" + "Bring a bag; the bakery closes at six. " * 40
    method, payload = _qr_reply(chat_id, caption)

    result = sender.send(method, payload)

    assert isinstance(result, Sent)
    [photo] = fake.calls("sendPhoto")
    [follow_up] = fake.calls("sendMessage")
    assert _uploaded_png(photo).startswith(PNG_SIGNATURE)
    assert visible_length(photo.params["caption"]) <= MAX_CAPTION_CHARS
    assert "reply_markup" not in photo.params
    assert follow_up.params["reply_markup"] == payload["reply_markup"]
    assert QR_PAYLOAD_FIELD not in follow_up.params
    assert (photo.params["caption"] + " " + follow_up.params["text"]).split() == caption.split()


@pytest.mark.parametrize("status", [429, 502])
def test_a_retried_qr_photo_uploads_the_same_image(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int, status: int
) -> None:
    method, payload = _qr_reply(chat_id)
    fake.fail_next("sendPhoto", status=status, retry_after=1 if status == 429 else None)

    first = sender.send(method, payload)
    second = sender.send(method, payload)  # what the outbox does: the stored payload, again

    assert isinstance(first, RetryLater)
    assert isinstance(second, Sent)
    failed, delivered = fake.calls("sendPhoto")
    assert (failed.status, delivered.status) == (status, 200)
    assert _uploaded_png(failed) == _uploaded_png(delivered)


def test_a_qr_reply_with_nothing_to_encode_is_rejected_without_calling_telegram(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    method, payload = _qr_reply(chat_id)

    result = sender.send(method, {**payload, QR_PAYLOAD_FIELD: ""})

    assert isinstance(result, Rejected)
    assert fake.calls() == []
