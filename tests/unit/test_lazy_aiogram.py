"""aiogram's Bot API models are built on first use (marketbot/lazy_aiogram.py), and behave as upstream's."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from pydantic import BaseModel


def _run(code: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def test_aiogram_types_stay_unbuilt_until_used_and_then_resolve_forward_references() -> None:
    out = _run(
        """
        import marketbot
        from aiogram.types import Message, Update, User
        before = (Update.__pydantic_complete__, User.__pydantic_complete__)
        update = Update.model_validate({
            "update_id": 7,
            "message": {
                "message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"},
                "from": {"id": 5, "is_bot": False, "first_name": "Ana"},
                "text": "/start", "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                "reply_to_message": {"message_id": 0, "date": 0, "chat": {"id": 5, "type": "private"}},
            },
        })
        print(before, Update.__pydantic_complete__)
        print(type(update.message).__name__, type(update.message.from_user).__name__,
              type(update.message.reply_to_message).__name__, update.message.entities[0].type)
        """
    )
    assert out.splitlines() == ["(False, False) True", "Message User Message bot_command"]


def test_aiogram_methods_build_lazily_with_nested_types() -> None:
    out = _run(
        """
        import marketbot
        from marketbot import lazy_aiogram
        from aiogram.methods import SendMessage
        lazy_aiogram.warm_up(SendMessage)
        keyboard = {"inline_keyboard": [[{"text": "a", "callback_data": "x"}]]}
        call = SendMessage(chat_id=1, text="hi", reply_markup=keyboard)
        print(SendMessage.__pydantic_complete__, type(call.reply_markup).__name__,
              call.reply_markup.inline_keyboard[0][0].callback_data)
        """
    )
    assert out == "True InlineKeyboardMarkup x"


def test_import_after_aiogram_leaves_upstream_behaviour() -> None:
    out = _run(
        """
        import aiogram.types
        from marketbot import lazy_aiogram
        print(lazy_aiogram.install(), aiogram.types.Update.__pydantic_complete__)
        """
    )
    assert out == "False True"


def test_other_models_rebuild_with_the_callers_namespace() -> None:
    # The wrapper adds a frame: pydantic must still find names in the caller's locals.
    class Node(BaseModel):
        child: Leaf | None = None

    class Leaf(BaseModel):
        value: int

    assert Node.model_rebuild() is True
    assert Node.model_validate({"child": {"value": 3}}).child == Leaf(value=3)


def test_aiogram_methods_are_created_unbuilt_and_build_on_first_use() -> None:
    out = _run(
        """
        import sys
        import marketbot
        from aiogram.methods import AnswerCallbackQuery, DeleteWebhook, SendPhoto
        print(SendPhoto.__pydantic_complete__, DeleteWebhook.__pydantic_complete__,
              any(type(f).__name__ == "_DeferMethodBuilds" for f in sys.meta_path))
        call = SendPhoto(chat_id=5, photo="AgAC-file-id", caption="<b>x</b>", parse_mode="HTML",
                         reply_markup={"inline_keyboard": [[{"text": "Buy", "callback_data": "b:1"}]]})
        print(SendPhoto.__pydantic_complete__, call.model_dump(exclude_none=True)["reply_markup"])
        print(AnswerCallbackQuery.model_validate({"callback_query_id": "q"}).callback_query_id)
        """
    )
    assert out.splitlines() == [
        "False False False",
        "True {'inline_keyboard': [[{'text': 'Buy', 'callback_data': 'b:1'}]]}",
        "q",
    ]
