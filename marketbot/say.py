"""`marketbot say`: talk to a bot running locally against the Telegram stand-in, from a terminal.

    marketbot say /start
    marketbot say --press r:c          # press an inline button by its callback data
    marketbot say --user 42 "hello"    # be another user
    marketbot say --photo              # send a photo (the offer wizard asks for one)
    marketbot say --location 1.28,103.86   /   marketbot say --contact +6591234567

It sends the message through the stand-in exactly as Telegram would (an Update to the gateway's webhook),
then prints what the bot answers, with its buttons.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

_client = httpx.Client(timeout=10)


def _request(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = _client.get(url) if body is None else _client.post(url, json=body)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _render(message: dict[str, Any]) -> str:
    lines = [f"bot › {message.get('text') or message.get('caption') or '(photo)'}"]
    markup = message.get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        for button in row:
            hint = (
                f"marketbot say --press {button['callback_data']}"
                if "callback_data" in button
                else button.get("url")
            )
            lines.append(f"      [{button['text']}]  → {hint}")
    return "\n".join(lines)


def say(
    text: str | None,
    *,
    press: str | None,
    user: int,
    fake_url: str,
    share: str | None = None,
    wait: float = 10.0,
    quiet_after: float = 1.5,
) -> int:
    """Send one thing as `user`: a text, a button press, or with `share` a photo, location or contact."""
    base = f"{fake_url.rstrip('/')}/_sandbox/users/{user}"
    try:
        before = _request(f"{base}/messages")["messages"]
    except httpx.HTTPError:
        print(f"marketbot: no Telegram stand-in at {fake_url}; start the stack with `make run` first")
        return 1
    after = before[-1]["message_id"] if before else 0
    if press is not None:
        _request(f"{base}/callbacks", {"data": press})
    elif share == "photo":
        _request(f"{base}/photos", {})
    elif share == "contact":
        _request(f"{base}/contacts", {"phone_number": text or "+6590000000"})
    elif share == "location":
        latitude, _, longitude = (text or "1.2834,103.8607").partition(",")
        _request(f"{base}/locations", {"latitude": latitude, "longitude": longitude})
    else:
        _request(f"{base}/messages", {"text": text})
    deadline = time.monotonic() + wait
    seen: list[dict[str, Any]] = []
    last_new = time.monotonic()
    while time.monotonic() < deadline:
        fresh = _request(f"{base}/messages?after={after}")["messages"]
        if fresh:
            for message in fresh:
                print(_render(message))
            seen += fresh
            after = fresh[-1]["message_id"]
            last_new = time.monotonic()
        elif seen and time.monotonic() - last_new > quiet_after:
            break
        time.sleep(0.2)
    if not seen:
        print("marketbot: no answer yet; is the worker running? (see the `make run` terminal)")
        return 1
    return 0
