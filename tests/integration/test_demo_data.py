"""`marketbot demo-data`: verified businesses with live offers in the demo city, and running it twice adds
nothing (real PostgreSQL; photos uploaded to the Telegram stand-in through the Bot API)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from marketbot.demo_data import BUSINESSES, PhotoUploader, seed
from marketbot.embedded import drop_database, ensure_database
from marketbot.fakes.telegram import FakeTelegram

NOON_IN_SINGAPORE = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


@pytest.fixture
def demo_database(database_url: str) -> Iterator[str]:
    """A database of its own: the demo city must not turn up in other tests' searches near Singapore."""
    from db.migrate import upgrade

    name = f"marketbot_demo_{uuid.uuid4().hex[:8]}"
    ensure_database(database_url, name)
    head, sep, query = database_url.partition("?")
    url = f"{head.rpartition('/')[0]}/{name}{sep}{query}"
    upgrade(url)
    try:
        yield url
    finally:
        drop_database(database_url, name)


@pytest.fixture
def uploader() -> Iterator[tuple[FakeTelegram, PhotoUploader]]:
    with FakeTelegram() as telegram:
        photos = PhotoUploader(telegram.base_url, "1000000:demo-token")
        try:
            yield telegram, photos
        finally:
            photos.close()


def _offers(database_url: str) -> list[sa.Row[tuple[str, str, str, datetime, datetime, str]]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT b.name, b.status, o.title, o.pickup_start, o.pickup_end, o.photo_file_id "
                        "FROM offers o JOIN businesses b ON b.id = o.business_id "
                        "JOIN users u ON u.id = b.owner_user_id "
                        "WHERE u.telegram_user_id BETWEEN 900001 AND 900999 AND o.status = 'published'"
                    )
                )
            )
    finally:
        engine.dispose()


def test_demo_data_publishes_the_demo_city_once_with_photos_and_local_pickup_windows(
    demo_database: str, uploader: tuple[FakeTelegram, PhotoUploader]
) -> None:
    database_url = demo_database
    telegram, photos = uploader
    # Given an empty demo city, when demo-data runs twice
    first = seed(database_url, photos, now=NOON_IN_SINGAPORE)
    second = seed(database_url, photos, now=NOON_IN_SINGAPORE + timedelta(minutes=5))

    # Then every demo offer was published once and is still live the second time
    expected = sum(len(b.offers) for b in BUSINESSES)
    assert (first.offers_created, second.offers_created, second.offers_kept) == (expected, 0, expected)
    offers = _offers(database_url)
    assert len(offers) == expected
    assert {row.status for row in offers} == {"verified"}
    # And pickup windows are evening hours in the venue's time (Singapore), today when still ahead
    bread = next(row for row in offers if row.title == "Evening bread bag")
    local = ZoneInfo("Asia/Singapore")
    assert bread.pickup_start.astimezone(local).strftime("%d %H:%M") == "23 19:00"
    assert bread.pickup_end.astimezone(local).strftime("%d %H:%M") == "23 21:00"
    # And each photo is an image the stand-in holds (the latest upload), so the sandbox page can show it
    for row in offers:
        assert telegram.uploaded_file(row.photo_file_id).data.startswith(b"\x89PNG")


def test_an_ended_window_moves_the_demo_offer_to_the_next_evening() -> None:
    from marketbot.demo_data import pickup_window

    offer = BUSINESSES[0].offers[0]  # 19:00-21:00
    late = datetime(2026, 11, 23, 12, 45, tzinfo=UTC)  # 20:45 in Singapore: under 30 minutes left
    start, end = pickup_window(offer, late)
    assert (start.day, start.hour, end.hour) == (24, 19, 21)
