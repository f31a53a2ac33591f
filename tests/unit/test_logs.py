"""No personal data in logs; user ids appear only as keyed hashes; correlation ids are carried."""

from __future__ import annotations

import io
import json
import logging

import structlog

from marketbot.logs import configure_logging, correlation, hash_id


def test_planted_personal_data_never_reaches_the_log_output() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", fmt="json", hash_key="test-key", stream=stream)
    log = structlog.get_logger("test")
    planted = {
        "first_name": "Zebedee",
        "username": "zeb_secret_handle",
        "phone_number": "+6591234567",
        "text": "my address is 42 Secret Lane",
        "latitude": 1.3521987,
        "longitude": 103.8198123,
    }
    with correlation("tg-777"):
        log.info("update_handled", user_id=8123456789, chat_id=8123456789, **planted)
        logging.getLogger("celery.worker").info("stdlib line", extra={"username": "zeb_secret_handle"})
    output = stream.getvalue()

    for value in (
        "Zebedee",
        "zeb_secret_handle",
        "+6591234567",
        "Secret Lane",
        "1.3521987",
        "103.8198123",
        "8123456789",
    ):
        assert value not in output
    first = json.loads(output.splitlines()[0])
    assert first["user_id"] == hash_id(8123456789)
    assert first["correlation_id"] == "tg-777"


def test_hashes_are_stable_and_keyed() -> None:
    configure_logging("INFO", hash_key="key-a", stream=io.StringIO())
    a = hash_id(42)
    assert a == hash_id(42)
    configure_logging("INFO", hash_key="key-b", stream=io.StringIO())
    assert hash_id(42) != a
