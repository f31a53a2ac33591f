"""The fake Telegram server, driven through the real aiogram client exactly as production code uses it.

These tests pin the behaviours other tests rely on: Telegram's wire format and result shapes (aiogram must
parse them), Telegram's error texts and status codes (aiogram maps them to exception classes), flood limits,
webhook delivery semantics and getUpdates long polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import segno
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from marketbot.fakes.telegram import FakeTelegram, UploadedFile
from marketbot.fakes.telegram_text import EntityParseError, parse_formatted

TOKEN = "123456:TEST-token"
USER = 5550001
# The smallest JPEG the fake reads as one: start of image, a baseline frame header (800x600, one
# component), end of image. Telegram would also decode the scan; the fake only reads the size.
JPEG_800x600 = (
    b"\xff\xd8"
    + b"\xff\xc0\x00\x0b\x08"
    + (600).to_bytes(2, "big")
    + (800).to_bytes(2, "big")
    + b"\x01\x01\x11\x00"
    + b"\xff\xd9"
)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@contextlib.asynccontextmanager
async def bot_for(fake: FakeTelegram) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
    try:
        yield bot
    finally:
        await bot.session.close()


def run(fake: FakeTelegram, scenario: Callable[[Bot], Any]) -> Any:
    """Run ``scenario(bot)`` on a fresh event loop with a real aiogram Bot pointed at the fake."""

    async def main() -> Any:
        async with bot_for(fake) as bot:
            return await scenario(bot)

    return asyncio.run(main())


def _png(code: segno.QRCode, *, scale: int) -> bytes:
    out = io.BytesIO()
    code.save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def keyboard(data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Reserve", callback_data=data)]])


def raw_call(
    fake: FakeTelegram, path: str, payload: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    """Plain HTTP, for what aiogram would refuse to send (bad tokens) or to parse (malformed updates)."""
    data = json.dumps(payload or {}).encode()
    request = urllib.request.Request(
        f"{fake.base_url}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# -- basic round trips ------------------------------------------------------------------------------------


def test_get_me_and_send_message_with_inline_keyboard(fake: FakeTelegram) -> None:
    async def scenario(bot: Bot) -> tuple[Any, Message]:
        me = await bot.get_me()
        sent = await bot.send_message(USER, "Fresh bread, 50% off", reply_markup=keyboard("offer:17"))
        return me, sent

    me, sent = run(fake, scenario)
    assert me.id == 123456 and me.is_bot and me.username == "marketbot_test_bot"
    assert me.can_join_groups is not None and me.supports_inline_queries is not None
    assert sent.chat.id == USER and sent.chat.type == "private" and sent.text == "Fresh bread, 50% off"
    assert sent.from_user is not None and sent.from_user.id == me.id
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "offer:17"
    [call] = fake.calls("sendMessage")
    assert call.status == 200 and call.token == TOKEN
    assert call.params["chat_id"] == USER
    assert call.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Reserve", "callback_data": "offer:17"}]]
    }
    assert call.response["result"]["message_id"] == sent.message_id
    assert fake.wait_for_calls("SENDMESSAGE")[0] is call


def test_message_ids_per_chat_and_user_names_remembered(fake: FakeTelegram) -> None:
    fake.send_user_message(USER, "hi", first_name="Alice", username="alice")

    async def scenario(bot: Bot) -> list[Message]:
        return [await bot.send_message(USER, "one"), await bot.send_message(USER + 1, "two")]

    first, other = run(fake, scenario)
    assert first.message_id == 2  # the user's message was 1 in this chat
    assert other.message_id == 1
    assert first.chat.first_name == "Alice" and first.chat.username == "alice"
    assert other.chat.first_name == "User"


def test_edit_to_identical_content_is_not_modified(fake: FakeTelegram) -> None:
    async def scenario(bot: Bot) -> None:
        sent = await bot.send_message(USER, "<b>Bagels</b>", parse_mode="HTML", reply_markup=keyboard("a"))
        with pytest.raises(TelegramBadRequest, match="message is not modified"):
            await bot.edit_message_text(
                text="<b>Bagels</b>",
                chat_id=USER,
                message_id=sent.message_id,
                parse_mode="HTML",
                reply_markup=keyboard("a"),
            )
        edited = await bot.edit_message_text(text="Sold out", chat_id=USER, message_id=sent.message_id)
        assert isinstance(edited, Message) and edited.text == "Sold out" and edited.reply_markup is None
        with pytest.raises(TelegramBadRequest, match="message to edit not found"):
            await bot.edit_message_text(text="x", chat_id=USER, message_id=999)
        assert await bot.delete_message(USER, sent.message_id) is True
        with pytest.raises(TelegramBadRequest, match="message to delete not found"):
            await bot.delete_message(USER, sent.message_id)

    run(fake, scenario)


def test_send_photo_by_file_id_and_upload(fake: FakeTelegram) -> None:
    async def scenario(bot: Bot) -> tuple[Message, Message]:
        by_id = await bot.send_photo(USER, "AgACAgIAAxkBAAIBZ2Zexisting", caption="Croissants")
        uploaded = await bot.send_photo(USER, BufferedInputFile(JPEG_800x600, filename="p.jpg"))
        with pytest.raises(TelegramBadRequest, match="message caption is too long"):
            await bot.send_photo(USER, "AgACAgIAAxkBAAIBZ2Zexisting", caption="c" * 1025)
        return by_id, uploaded

    by_id, uploaded = run(fake, scenario)
    assert by_id.photo is not None and len(by_id.photo) == 3 and by_id.caption == "Croissants"
    assert all(p.file_id and p.file_unique_id and p.width and p.height and p.file_size for p in by_id.photo)
    assert uploaded.photo is not None and len(uploaded.photo) == 3
    first, second, _ = fake.calls("sendPhoto")
    assert first.params["photo"] == "AgACAgIAAxkBAAIBZ2Zexisting"
    assert isinstance(second.params["photo"], UploadedFile)
    assert second.params["photo"].data == JPEG_800x600
    assert [(p.width, p.height) for p in uploaded.photo] == [(90, 68), (320, 240), (800, 600)]


def test_an_uploaded_photo_is_kept_under_its_new_file_ids(fake: FakeTelegram) -> None:
    code = segno.make_qr("https://t.me/marketbot_test_bot?start=pk_1")
    png = _png(code, scale=10)
    side, _ = code.symbol_size(scale=10, border=4)

    async def scenario(bot: Bot) -> Message:
        return await bot.send_photo(USER, BufferedInputFile(png, filename="qr.png"), caption="Pickup")

    sent = run(fake, scenario)

    assert sent.photo is not None and sent.caption == "Pickup"
    largest = sent.photo[-1]
    assert side > 320
    assert (largest.width, largest.height) == (side, side)  # never scaled up past what was sent
    assert [p.width for p in sent.photo] == [90, 320, side]
    assert all(fake.uploaded_file(p.file_id).data == png for p in sent.photo)
    resent = run(fake, lambda bot: bot.send_photo(USER, largest.file_id))
    assert resent.photo == sent.photo  # a file_id Telegram issued sends the same photo again


def test_a_photo_can_be_uploaded_directly_as_the_photo_field(fake: FakeTelegram) -> None:
    png = _png(segno.make_qr("pk_2"), scale=4)
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER))
    form.add_field("photo", png, filename="qr.png", content_type="image/png")

    async def post() -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{fake.base_url}/bot{TOKEN}/sendPhoto", data=form) as response,
        ):
            return dict(await response.json())

    body = asyncio.run(post())

    assert body["ok"] is True
    file_id = body["result"]["photo"][-1]["file_id"]
    assert fake.uploaded_file(file_id).data == png
    [call] = fake.calls("sendPhoto")
    assert isinstance(call.params["photo"], UploadedFile) and call.params["photo"].filename == "qr.png"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "file must be non-empty"),
        (b"%PDF-1.7 not a photo", "IMAGE_PROCESS_FAILED"),
        (b"\xff\xd8 a JPEG start and nothing else", "IMAGE_PROCESS_FAILED"),
        ("truncated-png", "IMAGE_PROCESS_FAILED"),
        ("corrupt-png", "IMAGE_PROCESS_FAILED"),
        (b"GIF89a" + (2000).to_bytes(2, "little") + (10).to_bytes(2, "little"), "PHOTO_INVALID_DIMENSIONS"),
    ],
)
def test_an_upload_telegram_cant_read_as_a_photo_is_refused(
    fake: FakeTelegram, data: bytes | str, error: str
) -> None:
    png = _png(segno.make_qr("pk_3"), scale=2)
    if data == "truncated-png":
        data = png[: len(png) // 2]
    elif data == "corrupt-png":
        data = png[:40] + bytes([png[40] ^ 0xFF]) + png[41:]  # one flipped byte fails the chunk's CRC
    assert isinstance(data, bytes)

    async def scenario(bot: Bot) -> None:
        with pytest.raises(TelegramBadRequest, match=error):
            await bot.send_photo(USER, BufferedInputFile(data, filename="photo.png"))

    run(fake, scenario)
    assert fake.bot_messages(USER) == []


# -- validation with Telegram's texts ---------------------------------------------------------------------


def test_text_length_limit_counts_parsed_text(fake: FakeTelegram) -> None:
    async def scenario(bot: Bot) -> None:
        with pytest.raises(TelegramBadRequest, match="message is too long"):
            await bot.send_message(USER, "a" * 4097)
        assert (await bot.send_message(USER, "a" * 4096)).text == "a" * 4096
        tagged = await bot.send_message(USER, "<b>" + "&lt;" * 4096 + "</b>", parse_mode="HTML")
        assert tagged.text == "<" * 4096 and tagged.entities is not None
        with pytest.raises(TelegramBadRequest, match="message text is empty"):
            await bot.send_message(USER, "<b> </b>", parse_mode="HTML")

    run(fake, scenario)


def test_markup_parse_errors(fake: FakeTelegram) -> None:
    async def scenario(bot: Bot) -> None:
        with pytest.raises(TelegramBadRequest, match="can't parse entities: Can't find end tag"):
            await bot.send_message(USER, "<b>unclosed", parse_mode="HTML")
        with pytest.raises(TelegramBadRequest, match='Unsupported start tag "div"'):
            await bot.send_message(USER, "<div>x</div>", parse_mode="HTML")
        with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
            await bot.send_message(USER, "Only 4.50 today", parse_mode="MarkdownV2")
        ok = await bot.send_message(USER, "Only *4\\.50* today", parse_mode="MarkdownV2")
        assert ok.text == "Only 4.50 today" and ok.entities is not None and ok.entities[0].type == "bold"

    run(fake, scenario)


def test_callback_data_over_64_bytes_is_rejected(fake: FakeTelegram) -> None:
    async def scenario(bot: Bot) -> None:
        too_long = "д" * 32 + "x"  # 33 characters but 65 bytes in UTF-8
        with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
            await bot.send_message(USER, "pick", reply_markup=keyboard(too_long))
        with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
            await bot.send_message(USER, "pick", reply_markup=keyboard(""))
        await bot.send_message(USER, "pick", reply_markup=keyboard("д" * 32))

    run(fake, scenario)
    assert [c.status for c in fake.calls("sendMessage")] == [400, 400, 200]


def test_callback_query_round_trip(fake: FakeTelegram) -> None:
    async def send(bot: Bot) -> Message:
        return await bot.send_message(USER, "Offer", reply_markup=keyboard("reserve:1"))

    sent = run(fake, send)
    update = fake.send_callback(USER, "reserve:1", message_id=sent.message_id)
    query = update["callback_query"]
    assert isinstance(query["id"], str) and query["chat_instance"] and query["data"] == "reserve:1"
    assert query["message"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "reserve:1"

    async def answer(bot: Bot) -> None:
        with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
            await bot.answer_callback_query(query["id"], text="x" * 201)
        assert await bot.answer_callback_query(query["id"], text="Reserved!") is True
        with pytest.raises(TelegramBadRequest, match="query is too old"):
            await bot.answer_callback_query(query["id"])

    run(fake, answer)


def test_other_methods_answer_valid_shapes(fake: FakeTelegram) -> None:
    from aiogram.types import BotCommand, MenuButtonCommands

    async def scenario(bot: Bot) -> None:
        assert await bot.send_chat_action(USER, "typing") is True
        assert await bot.set_my_commands([BotCommand(command="start", description="Start")]) is True
        assert [c.command for c in await bot.get_my_commands()] == ["start"]
        assert await bot.set_chat_menu_button(menu_button=MenuButtonCommands()) is True
        photo = await bot.send_photo(USER, "file-id", caption="old")
        edited = await bot.edit_message_caption(chat_id=USER, message_id=photo.message_id, caption="new")
        assert isinstance(edited, Message) and edited.caption == "new"
        marked = await bot.edit_message_reply_markup(
            chat_id=USER, message_id=photo.message_id, reply_markup=keyboard("k")
        )
        assert isinstance(marked, Message) and marked.reply_markup is not None

    run(fake, scenario)


def test_malformed_token_and_unknown_method(fake: FakeTelegram) -> None:
    assert raw_call(fake, "/botnot-a-token/getMe") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert raw_call(fake, f"/bot{TOKEN}/sendTelepathy")[0] == 404
    assert raw_call(fake, f"/bot{TOKEN}/GETME")[1]["ok"] is True
    assert raw_call(fake, f"/bot{TOKEN}/sendMessage", {"text": "x"})[1]["description"] == (
        "Bad Request: chat_id is empty"
    )


def test_query_string_and_form_encodings(fake: FakeTelegram) -> None:
    with urllib.request.urlopen(f"{fake.base_url}/bot{TOKEN}/sendMessage?chat_id=77&text=hi", timeout=5) as r:
        assert json.loads(r.read())["result"]["chat"]["id"] == 77
    markup = json.dumps(keyboard("m").model_dump(exclude_none=True))
    form = urllib.parse.urlencode({"chat_id": "78", "text": "menu", "reply_markup": markup}).encode()
    with urllib.request.urlopen(f"{fake.base_url}/bot{TOKEN}/sendMessage", data=form, timeout=5) as r:
        assert json.loads(r.read())["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "m"
    by_query, by_form = fake.calls("sendMessage")
    assert by_query.params == {"chat_id": 77, "text": "hi"}
    assert by_form.params["chat_id"] == 78 and isinstance(by_form.params["reply_markup"], dict)


# -- faults and limits ------------------------------------------------------------------------------------


def test_fail_next_429_and_blocked_user(fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", status=429, retry_after=7)
    fake.block_user(USER + 9)

    async def scenario(bot: Bot) -> None:
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(USER, "hello")
        assert caught.value.retry_after == 7
        await bot.send_message(USER, "hello")  # only the next call failed
        with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
            await bot.send_message(USER + 9, "hello")

    run(fake, scenario)
    assert fake.calls("sendMessage")[0].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }


def test_flood_limits_per_chat_and_global(fake: FakeTelegram) -> None:
    async def scenario(bot: Bot) -> None:
        for i in range(4):
            await bot.send_message(USER, f"msg {i}")
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(USER, "one too many")
        assert caught.value.retry_after == 1
        await bot.send_message(USER + 1, "other chats are fine")
        fake.per_chat_limit = (100, 1.0)
        fake.global_limit = (2, 0.5)
        await asyncio.sleep(0.55)
        await bot.send_message(USER + 2, "a")
        await bot.send_message(USER + 3, "b")
        with pytest.raises(TelegramRetryAfter):
            await bot.send_message(USER + 4, "c")
        await asyncio.sleep(0.55)  # the rejected call did not count: the window is free again
        await bot.send_message(USER + 4, "c")

    run(fake, scenario)


# -- update delivery --------------------------------------------------------------------------------------


def test_webhook_delivery_with_secret_retry_and_order(fake: FakeTelegram) -> None:
    received: list[tuple[int, str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        received.append((update["update_id"], request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        return web.Response(status=500 if len(received) == 1 else 200)

    async def scenario(bot: Bot) -> Any:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
            assert await bot.set_webhook(url, secret_token="s3cret-Token_1") is True
            first = fake.send_user_message(USER, "/start", first_name="Ann", language_code="de")
            second = fake.send_user_message(USER, "second")
            await wait_until(lambda: len(received) >= 3)
            with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook"):
                await bot.get_updates()
            info = await bot.get_webhook_info()
            return first, second, info
        finally:
            await runner.cleanup()

    first, second, info = run(fake, scenario)
    u1, u2 = first["update_id"], second["update_id"]
    assert u2 == u1 + 1
    assert received == [(u1, "s3cret-Token_1"), (u1, "s3cret-Token_1"), (u2, "s3cret-Token_1")]
    assert fake.webhook_deliveries == [(u1, 500), (u1, 200), (u2, 200)]
    assert info.url.endswith("/hook") and info.pending_update_count == 0
    assert info.last_error_message and "500" in info.last_error_message
    message = first["message"]
    assert message["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]
    assert message["from"] == {"id": USER, "is_bot": False, "first_name": "Ann", "language_code": "de"}
    assert message["chat"] == {"id": USER, "type": "private", "first_name": "Ann"}
    assert isinstance(message["date"], int) and u1 > 1000


def test_webhook_reply_method_from_aiogram_dispatcher(fake: FakeTelegram) -> None:
    """aiogram's SimpleRequestHandler may answer an update with a method call; Telegram executes it."""

    async def scenario(bot: Bot) -> None:
        dp = Dispatcher()

        @dp.message()
        async def pong(message: Message) -> SendMessage:
            return message.answer("pong")

        app = web.Application()
        SimpleRequestHandler(dp, bot, handle_in_background=False, secret_token="abc").register(app, "/wh")
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/wh", secret_token="abc")
            fake.send_user_message(USER, "ping")
            await wait_until(lambda: bool(fake.calls("sendMessage")))
        finally:
            await runner.cleanup()

    run(fake, scenario)
    [call] = fake.wait_for_calls("sendMessage")
    assert call.params["chat_id"] == USER and call.params["text"] == "pong"


def test_aiogram_dispatcher_polling_end_to_end(fake: FakeTelegram) -> None:
    """aiogram's own polling loop (offsets, allowed_updates, long polls) works against the fake."""

    async def scenario(bot: Bot) -> None:
        dp = Dispatcher()

        @dp.message()
        async def echo(message: Message) -> None:
            await message.answer(f"echo {message.text}", reply_markup=keyboard("again"))

        @dp.callback_query()
        async def again(query: CallbackQuery) -> None:
            await query.answer("ok")
            if isinstance(query.message, Message):
                await query.message.edit_text("edited")

        polling = asyncio.ensure_future(dp.start_polling(bot, handle_signals=False, polling_timeout=2))
        fake.send_user_message(USER, "one")
        fake.send_user_message(USER, "two")
        await wait_until(lambda: len([c for c in fake.calls("sendMessage") if c.status == 200]) == 2)
        fake.send_callback(USER, "again")
        await wait_until(lambda: bool(fake.calls("editMessageText")))
        await dp.stop_polling()
        await polling

    run(fake, scenario)
    sent = fake.calls("sendMessage")
    assert sorted(c.response["result"]["text"] for c in sent) == ["echo one", "echo two"]
    [edit] = fake.calls("editMessageText")
    latest = max(c.response["result"]["message_id"] for c in sent)
    assert edit.status == 200 and edit.params["message_id"] == latest  # callback came from the latest one
    assert fake.calls("answerCallbackQuery")[0].status == 200


def test_get_updates_long_poll_and_offset(fake: FakeTelegram) -> None:
    async def scenario(bot: Bot) -> None:
        started = time.monotonic()
        poll = asyncio.ensure_future(bot.get_updates(timeout=5))
        await asyncio.sleep(0.3)
        assert not poll.done()
        fake.send_user_message(USER, "I'd like the bagels")
        updates = await poll
        assert time.monotonic() - started < 3
        assert [u.message.text for u in updates if u.message] == ["I'd like the bagels"]
        again = await bot.get_updates(timeout=0)
        assert [u.update_id for u in again] == [updates[0].update_id]  # not confirmed yet
        assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == []
        assert (await bot.get_webhook_info()).pending_update_count == 0

    run(fake, scenario)


def test_get_updates_allowed_updates_and_competing_polls(fake: FakeTelegram) -> None:
    fake.send_callback(USER, "cb")
    fake.send_location(USER, 52.52, 13.405)

    async def scenario(bot: Bot) -> None:
        updates = await bot.get_updates(allowed_updates=["message"], timeout=0)
        assert len(updates) == 1 and updates[0].message is not None
        assert updates[0].message.location is not None and updates[0].message.location.latitude == 52.52
        older = asyncio.ensure_future(bot.get_updates(offset=updates[0].update_id + 1, timeout=5))
        await asyncio.sleep(0.2)
        newer = asyncio.ensure_future(bot.get_updates(timeout=0))
        with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
            await older
        assert await newer == []

    run(fake, scenario)


def test_send_update_delivers_raw_input(fake: FakeTelegram) -> None:
    fake.send_update({"message": {"text": "no chat, no date"}})
    status, body = raw_call(fake, f"/bot{TOKEN}/getUpdates")
    assert status == 200
    [update] = body["result"]
    assert update["message"] == {"text": "no chat, no date"} and isinstance(update["update_id"], int)


# -- pieces -----------------------------------------------------------------------------------------------


def test_entity_offsets_are_utf16_and_text_is_trimmed() -> None:
    text, entities = parse_formatted('  🍞 <a href="https://x.test/o?a=1&amp;b=2">Bread</a>\n', "HTML", None)
    assert text == "🍞 Bread"
    assert entities == [{"type": "text_link", "offset": 3, "length": 5, "url": "https://x.test/o?a=1&b=2"}]
    text, entities = parse_formatted('<pre><code class="language-py">x = 1</code></pre>', "html", None)
    assert entities == [{"type": "pre", "offset": 0, "length": 5, "language": "py"}]


@pytest.mark.parametrize(
    ("markup", "mode", "text", "types"),
    [
        (
            "[link](http://x.test/a_b) __u__ ||s|| ~st~ `c.d`",
            "MarkdownV2",
            "link u s st c.d",
            ["text_link", "underline", "spoiler", "strikethrough", "code"],
        ),
        ("```python\nprint(1)\n```", "MarkdownV2", "print(1)", ["pre"]),
        ("> quoted\n>lines\nafter", "MarkdownV2", "quoted\nlines\nafter", ["blockquote"]),
        ("*bold _both_*", "MarkdownV2", "bold both", ["bold", "italic"]),
        ("5\\.00 \\- 20% off\\!", "MarkdownV2", "5.00 - 20% off!", []),
        ("*b* _i_ `c` [t](http://u.test)", "Markdown", "b i c t", ["bold", "italic", "code", "text_link"]),
        (
            "<del>x</del><u>y</u><tg-spoiler>z</tg-spoiler>",
            "HTML",
            "xyz",
            ["strikethrough", "underline", "spoiler"],
        ),
    ],
)
def test_markup_parsers(markup: str, mode: str, text: str, types: list[str]) -> None:
    parsed, entities = parse_formatted(markup, mode, None)
    assert parsed == text
    assert [e["type"] for e in entities] == types


@pytest.mark.parametrize(
    ("markup", "mode", "error"),
    [
        ("*unclosed", "MarkdownV2", "Can't find end of Bold entity at byte offset 0"),
        ("a - b", "MarkdownV2", "Character '-' is reserved"),
        ("_unclosed", "Markdown", "Can't find end of the entity starting at byte offset 0"),
        ("a < b", "HTML", 'Unsupported start tag "" at byte offset 2'),
        ("<b>x</i>", "HTML", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<span>x</span>", "HTML", 'Tag "span" must have class "tg-spoiler"'),
    ],
)
def test_markup_parse_errors_match_telegram(markup: str, mode: str, error: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_formatted(markup, mode, None)
    assert error in str(caught.value)


def test_command_line_entry_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-m", "marketbot.fakes.telegram", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{base_url}/bot{TOKEN}/getMe", timeout=5) as response:
            assert json.loads(response.read())["result"]["is_bot"] is True
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
