"""Finding food on real PostgreSQL through the flows: tabs, categories, distance, stock and stale buttons."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from core.callbacks import Browse, SetRadius, ViewOffer, decode
from core.commands import Actor, FindFood, PressButton, ShareLocation
from core.conversation import UserView
from core.discovery import BACK_TO_LIST, bounding_box, haversine_m
from core.messages import Reply
from db.discovery_repositories import SearchArea
from db.models import Business, Offer, Reservation, ReservationItem, User
from db.offer_repositories import NewItem
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from tasks import discovery_flows
from tasks.business_flows import Context
from tests.integration import seed

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Singapore
LIST_MESSAGE_ID = 77
# A spot no other test pins anything near (the South Atlantic), so only this module's offers are around.
HOME = (-33.0, -40.0)
KM_NORTH = 1 / 111.195  # degrees of latitude per km


@pytest.fixture
def uow(database_url: str) -> Iterator[SqlAlchemyUnitOfWork]:
    engine = make_engine(database_url)
    with SqlAlchemyUnitOfWork(make_session_factory(engine)) as unit:
        yield unit  # never committed: nothing is left behind
    engine.dispose()


def _actor(user: User) -> Actor:
    return Actor(telegram_user_id=user.telegram_user_id, chat_id=user.telegram_user_id, language_code="en")


def _ctx(user: User, command: Any, now: datetime = NOW) -> Context:
    view = UserView(user.telegram_user_id, user.telegram_user_id, "en", user.first_name)
    return Context(command=command, user=view, row_id=user.id, admins=frozenset(), now=now)


def _press(user: User, action: Any, message_id: int = LIST_MESSAGE_ID) -> Context:
    command = PressButton(
        update_id=random.randint(1, 2**31),
        actor=_actor(user),
        received_at=NOW,
        correlation_id="test",
        callback_query_id="q",
        message_id=message_id,
        data=action.encode(),
    )
    return _ctx(user, command)


def _find(user: User) -> Context:
    return _ctx(
        user,
        FindFood(update_id=random.randint(1, 2**31), actor=_actor(user), received_at=NOW, correlation_id="t"),
    )


def _customer(uow: SqlAlchemyUnitOfWork, at: tuple[float, float] | None = HOME) -> User:
    user = seed.user(uow, NOW, "Cas")
    if at is not None:
        uow.users.set_location(user.telegram_user_id, at[0], at[1], NOW)
    return user


def _shop(
    uow: SqlAlchemyUnitOfWork,
    km_north: float,
    *,
    name: str = "Shop",
    category: str = "bakery",
    status: str = "verified",
    timezone: str = "Asia/Singapore",
) -> Business:
    owner = seed.user(uow, NOW, "Owner")
    business = uow.businesses.create_with_venue(
        owner_user_id=owner.id,
        name=name,
        category=category,
        currency="SGD",
        contact_phone="+65 6000 0000",
        address=f"{name} street 1",
        latitude=HOME[0] + km_north * KM_NORTH,
        longitude=HOME[1],
        timezone=timezone,
        now=NOW,
    )
    if status != "pending":
        uow.businesses.set_status(business, status, now=NOW)
    return business


def _offer(
    uow: SqlAlchemyUnitOfWork,
    business: Business,
    title: str,
    *,
    published: datetime = NOW,
    ends: datetime | None = None,
    items: list[NewItem] | None = None,
    status: str = "published",
    photo: str | None = "photo",
) -> Offer:
    end = ends or NOW + timedelta(hours=10)
    offer = uow.offers.create(
        business_id=business.id,
        venue_id=business.venues[0].id,
        title=title,
        description="Good food",
        photo_file_id=photo or "",
        thumb_file_id="thumb",
        pickup_start=end - timedelta(hours=2),
        pickup_end=end,
        currency="SGD",
        dietary_tags=["vegan"],
        status=status,
        now=published,
        items=items or [NewItem("Loaf", 5, 600, 250)],
    )
    if photo is None:
        offer.photo_file_id = None
        uow.session.flush()
    return offer


def _sell(
    uow: SqlAlchemyUnitOfWork, offer: Offer, quantity: int, *, status: str = "paid", expires: datetime = NOW
) -> None:
    """Take `quantity` of the offer's first item as a paid order would (or as a hold, with `status`)."""
    buyer = seed.user(uow, NOW, "Buyer")
    item = offer.items[0]
    uow.session.execute(
        text("UPDATE offer_items SET remaining = remaining - :q WHERE id = :id"),
        {"q": quantity, "id": item.id},
    )
    reservation = Reservation(
        id=uuid.uuid4(),
        user_id=buyer.id,
        offer_id=offer.id,
        status=status,
        expires_at=expires,
        total_minor=item.offer_price_minor * quantity,
        currency="SGD",
        idempotency_key=uuid.uuid4().hex,
        created_at=NOW,
        updated_at=NOW,
    )
    reservation.items.append(
        ReservationItem(offer_item_id=item.id, quantity=quantity, unit_price_minor=item.offer_price_minor)
    )
    uow.session.add(reservation)
    uow.session.flush()


def _titles(reply: Reply) -> list[str]:
    """Offer titles in list order, from the card buttons ("1. Title")."""
    return [
        b.text.split(". ", 1)[1]
        for row in reply.inline_keyboard
        for b in row
        if b.callback_data and b.callback_data.startswith("ov:")
    ]


def _data(reply: Reply) -> list[str]:
    return [b.callback_data or "" for row in reply.inline_keyboard for b in row]


def _only(replies: tuple[Reply, ...]) -> Reply:
    assert len(replies) == 1, replies
    return replies[0]


# -- the list ---------------------------------------------------------------------------------------------


def test_find_food_without_a_location_asks_for_it(uow: SqlAlchemyUnitOfWork) -> None:
    user = _customer(uow, at=None)
    reply = _only(discovery_flows.find_food(_find(user), uow))
    assert "Share your location" in reply.text and reply.reply_keyboard is not None


def test_sharing_a_location_saves_it_and_shows_the_nearby_list_at_once(uow: SqlAlchemyUnitOfWork) -> None:
    # Given a bakery 1 km from where the customer is standing, and a customer we never saw a location of
    _offer(uow, _shop(uow, 1, name="Crumbs"), "Sourdough")
    user = _customer(uow, at=None)
    command = ShareLocation(
        update_id=1,
        actor=_actor(user),
        received_at=NOW,
        correlation_id="t",
        latitude=HOME[0],
        longitude=HOME[1],
    )
    # When they share their location
    saved, listing = discovery_flows.location_shared(_ctx(user, command), uow, HOME[0], HOME[1])
    # Then it is remembered, the reply keyboard goes, and the list follows as a new message
    assert uow.discovery.location_of(user.id) == HOME
    assert saved.remove_reply_keyboard and not saved.inline_keyboard
    assert listing.edit_message_id is None and _titles(listing) == ["Sourdough"]
    assert "Crumbs" in listing.text and "1.0 km" in listing.text
    # And /find later shows the list straight away
    assert _titles(_only(discovery_flows.find_food(_find(user), uow))) == ["Sourdough"]


def test_each_tab_orders_nearby_offers_its_own_way(uow: SqlAlchemyUnitOfWork) -> None:
    # Given three offers at 0.5, 1.5 and 3 km, published at different times, ending at different times
    near = _offer(
        uow, _shop(uow, 0.5), "Near one", published=NOW - timedelta(hours=3), ends=NOW + timedelta(hours=9)
    )
    mid = _offer(
        uow, _shop(uow, 1.5), "Middle one", published=NOW - timedelta(hours=1), ends=NOW + timedelta(hours=3)
    )
    far = _offer(
        uow, _shop(uow, 3), "Far one", published=NOW - timedelta(hours=2), ends=NOW + timedelta(hours=6)
    )
    # and the far one sold best, the middle one next
    _sell(uow, far, 3)
    _sell(uow, mid, 1)
    user = _customer(uow)

    def tab(name: str) -> list[str]:
        return _titles(_only(discovery_flows.browse(_press(user, Browse(name)), uow, Browse(name))))  # type: ignore[arg-type]

    assert tab("near") == ["Near one", "Middle one", "Far one"]
    assert tab("latest") == ["Middle one", "Far one", "Near one"]
    assert tab("popular") == ["Far one", "Middle one", "Near one"]
    assert tab("ending") == ["Middle one", "Far one", "Near one"]
    assert near.id and far.id  # (kept for readability)


def test_a_tab_button_edits_the_list_message_in_place(uow: SqlAlchemyUnitOfWork) -> None:
    _offer(uow, _shop(uow, 1), "Bagels")
    user = _customer(uow)
    reply = _only(discovery_flows.browse(_press(user, Browse("latest")), uow, Browse("latest")))
    assert reply.edit_message_id == LIST_MESSAGE_ID
    assert "• Latest" in [b.text for b in reply.inline_keyboard[0]]


def test_the_category_row_filters_by_the_business_category(uow: SqlAlchemyUnitOfWork) -> None:
    _offer(uow, _shop(uow, 1, category="bakery"), "Croissants")
    _offer(uow, _shop(uow, 1.2, category="cafe"), "Flat white and cake")
    user = _customer(uow)
    cafes = Browse("near", "cafe")
    assert _titles(_only(discovery_flows.browse(_press(user, cafes), uow, cafes))) == ["Flat white and cake"]
    everything = Browse("near", "all")
    assert len(_titles(_only(discovery_flows.browse(_press(user, everything), uow, everything)))) == 2


def test_the_distance_limit_hides_farther_offers_and_is_remembered(uow: SqlAlchemyUnitOfWork) -> None:
    # Given offers at 2 km and 8 km, and a customer with the default 5 km limit
    _offer(uow, _shop(uow, 2), "Two km away")
    _offer(uow, _shop(uow, 8), "Eight km away")
    user = _customer(uow)
    assert _titles(_only(discovery_flows.find_food(_find(user), uow))) == ["Two km away"]
    # When they widen it to 10 km (from the Latest tab)
    reply = _only(discovery_flows.set_radius(_press(user, SetRadius(10)), uow, SetRadius(10)))
    # Then the Near tab, page 1, replaces the list, now with both, and 10 km is remembered
    assert reply.edit_message_id == LIST_MESSAGE_ID
    assert _titles(reply) == ["Two km away", "Eight km away"]
    assert "• Near" in [b.text for b in reply.inline_keyboard[0]]
    assert uow.discovery.search_radius_m(user.id) == 10_000
    # When they narrow it to 1 km, nothing is left, and the message says what to do
    narrow = _only(discovery_flows.set_radius(_press(user, SetRadius(1)), uow, SetRadius(1)))
    assert _titles(narrow) == [] and "wider distance" in narrow.text


def test_paused_expired_sold_out_and_unverified_offers_are_not_listed(uow: SqlAlchemyUnitOfWork) -> None:
    shop = _shop(uow, 1)
    _offer(uow, shop, "On sale")
    paused = _offer(uow, shop, "Paused one")
    uow.offers.set_status(paused, "paused", now=NOW)
    _offer(uow, shop, "Window over", ends=NOW - timedelta(minutes=1))
    sold = _offer(uow, shop, "All gone")
    _sell(uow, sold, 5)
    _offer(uow, _shop(uow, 1, status="suspended"), "Suspended shop")
    _offer(uow, _shop(uow, 1, status="pending"), "Pending shop")
    _offer(uow, shop, "Draft", status="draft")
    user = _customer(uow)
    assert _titles(_only(discovery_flows.find_food(_find(user), uow))) == ["On sale"]


def test_units_in_lapsed_holds_count_as_available_again(uow: SqlAlchemyUnitOfWork) -> None:
    # Given an offer of 5 whose units are all in holds: 3 lapsed a minute ago (not swept yet), 2 still live
    offer = _offer(uow, _shop(uow, 1), "Held bag")
    _sell(uow, offer, 3, status="held", expires=NOW - timedelta(minutes=1))
    _sell(uow, offer, 2, status="held", expires=NOW + timedelta(minutes=10))
    user = _customer(uow)
    # Then it is listed with 3 left, and its detail offers up to 3
    listing = _only(discovery_flows.find_food(_find(user), uow))
    assert _titles(listing) == ["Held bag"] and "3 left" in listing.text
    detail = _only(
        discovery_flows.view_offer(_press(user, ViewOffer(offer.id)), uow, ViewOffer(offer.id, (9,)))
    )
    assert "Reserve 3 · SGD 7.50" in [b.text for row in detail.inline_keyboard for b in row]


def test_cards_show_pickup_times_in_the_venue_timezone(uow: SqlAlchemyUnitOfWork) -> None:
    # Given a London venue and a Singapore venue, both picking up 16:00–18:00 UTC
    _offer(uow, _shop(uow, 1, timezone="Europe/London"), "London bag", ends=NOW + timedelta(hours=16))
    _offer(uow, _shop(uow, 2, timezone="Asia/Singapore"), "Singapore bag", ends=NOW + timedelta(hours=16))
    text_ = _only(discovery_flows.find_food(_find(_customer(uow)), uow)).text
    london, singapore = text_.split("Singapore bag")
    assert "Today 16:00–18:00 (GMT)" in london
    assert "Tomorrow 00:00–02:00" in singapore


def test_paging_walks_the_list_and_a_stale_page_lands_on_the_last_one(uow: SqlAlchemyUnitOfWork) -> None:
    shop = _shop(uow, 1)
    for n in range(7):
        _offer(uow, shop, f"Bag {n}", published=NOW - timedelta(minutes=n))
    user = _customer(uow)
    second = Browse("latest", "all", 1)
    reply = _only(discovery_flows.browse(_press(user, second), uow, second))
    assert _titles(reply) == ["Bag 5", "Bag 6"] and "6. Bag 5" in reply.text
    assert Browse("latest", "all", 0).encode() in _data(reply)
    gone = Browse("latest", "all", 4)  # an old Next button after offers sold out
    assert _titles(_only(discovery_flows.browse(_press(user, gone), uow, gone))) == ["Bag 5", "Bag 6"]


# -- the detail -------------------------------------------------------------------------------------------


def test_opening_an_offer_from_the_list_sends_a_photo_with_the_picker(uow: SqlAlchemyUnitOfWork) -> None:
    offer = _offer(
        uow,
        _shop(uow, 1.2, name="Crumbs"),
        "Evening bag",
        items=[NewItem("Loaf", 4, 600, 250), NewItem("Bun", 6, 300, 100)],
    )
    user = _customer(uow)
    reply = _only(discovery_flows.view_offer(_press(user, ViewOffer(offer.id)), uow, ViewOffer(offer.id)))
    assert reply.photo == "photo" and reply.edit_message_id is None
    method, payload = reply.to_bot_api()
    assert method == "sendPhoto" and len(payload["caption"]) <= 1024
    for fragment in ("Evening bag", "Crumbs", "Crumbs street 1", "1.2 km", "Good food", "Vegan"):
        assert fragment in reply.text
    labels = [b.text for row in reply.inline_keyboard for b in row]
    assert "Reserve 1 · SGD 2.50" in labels and "‹ Back to list" in labels
    assert decode(next(d for d in _data(reply) if d.startswith("by:"))) is not None


def test_a_picker_tap_edits_the_detail_caption(uow: SqlAlchemyUnitOfWork) -> None:
    offer = _offer(
        uow, _shop(uow, 1), "Evening bag", items=[NewItem("Loaf", 4, 600, 250), NewItem("Bun", 6, 300, 100)]
    )
    user = _customer(uow)
    tap = ViewOffer(offer.id, (1, 1))
    reply = _only(discovery_flows.view_offer(_press(user, tap, message_id=901), uow, tap))
    method, payload = reply.to_bot_api()
    assert method == "editMessageCaption" and payload["message_id"] == 901
    assert "Reserve 2 · SGD 3.50" in [b.text for row in reply.inline_keyboard for b in row]


def test_quantities_that_no_longer_fit_the_stock_are_corrected(uow: SqlAlchemyUnitOfWork) -> None:
    # Given the customer had picked 4 loaves, and then someone bought 3
    offer = _offer(uow, _shop(uow, 1), "Bag", items=[NewItem("Loaf", 4, 600, 250)], photo=None)
    _sell(uow, offer, 3)
    user = _customer(uow)
    tap = ViewOffer(offer.id, (4,))
    reply = _only(discovery_flows.view_offer(_press(user, tap), uow, tap))
    # Then the picker shows 1 (the most there is), with no + button, and a text edit (no photo)
    assert reply.to_bot_api()[0] == "editMessageText"
    assert "Reserve 1 · SGD 2.50" in [b.text for row in reply.inline_keyboard for b in row]
    assert ViewOffer(offer.id, (2,)).encode() not in _data(reply)


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("paused", "is paused"),
        ("expired", "has ended"),
        ("sold_out", "is sold out"),
        ("cancelled", "was cancelled"),
    ],
)
def test_an_offer_no_longer_on_sale_says_why_with_a_way_back(
    uow: SqlAlchemyUnitOfWork, setup: str, says: str
) -> None:
    offer = _offer(uow, _shop(uow, 1), "Late bag")
    user = _customer(uow)
    ctx = _press(user, ViewOffer(offer.id))
    if setup == "expired":  # the pickup window ended an hour ago; the expiry sweep has not run yet
        ctx = _ctx(user, ctx.command, now=NOW + timedelta(hours=11))
    elif setup == "sold_out":
        _sell(uow, offer, 5)
    else:
        uow.offers.set_status(offer, setup, now=NOW)
    reply = _only(discovery_flows.view_offer(ctx, uow, ViewOffer(offer.id)))
    assert says in reply.text and "Late bag" in reply.text
    assert _data(reply) == [BACK_TO_LIST.encode()]


def test_unknown_offer_ids_and_suspended_shops_get_a_friendly_answer(uow: SqlAlchemyUnitOfWork) -> None:
    user = _customer(uow)
    forged = ViewOffer(10**15)
    assert "isn't available" in _only(discovery_flows.view_offer(_press(user, forged), uow, forged)).text
    offer = _offer(uow, _shop(uow, 1, status="suspended"), "Hidden")
    hidden = ViewOffer(offer.id)
    reply = _only(discovery_flows.view_offer(_press(user, hidden), uow, hidden))
    assert "isn't available" in reply.text and "Hidden" not in reply.text


def test_back_to_list_from_a_detail_sends_the_list_as_a_new_message(uow: SqlAlchemyUnitOfWork) -> None:
    _offer(uow, _shop(uow, 1), "Bag")
    user = _customer(uow)
    reply = _only(discovery_flows.browse(_press(user, BACK_TO_LIST, message_id=901), uow, BACK_TO_LIST))
    assert reply.edit_message_id is None and _titles(reply) == ["Bag"]


# -- the index --------------------------------------------------------------------------------------------


def test_the_nearby_query_uses_the_gist_index_and_matches_exact_distances(uow: SqlAlchemyUnitOfWork) -> None:
    # Given 20,000 live offers spread over a country-sized area (about 1,100 km across), one item each
    shop = _shop(uow, 0, name="Chain")
    venue_id = shop.venues[0].id
    uow.session.execute(
        text(
            """
            WITH made AS (
                INSERT INTO offers (business_id, venue_id, title, status, pickup_start, pickup_end, currency,
                                    latitude, longitude, published_at, created_at, updated_at)
                SELECT :business, :venue, 'Bulk ' || g, 'published', :start, :end, 'SGD',
                       :lat0 + (random() - 0.5) * 10, :lon0 + (random() - 0.5) * 12, :now, :now, :now
                FROM generate_series(1, 20000) AS g
                RETURNING id
            )
            INSERT INTO offer_items (offer_id, position, name, quantity_total, remaining,
                                     normal_price_minor, offer_price_minor, created_at, updated_at)
            SELECT id, 0, 'Thing', 3, 3, 600, 250, :now, :now FROM made
            """
        ),
        {
            "business": shop.id,
            "venue": venue_id,
            "start": NOW,
            "end": NOW + timedelta(hours=5),
            "lat0": HOME[0],
            "lon0": HOME[1],
            "now": NOW,
        },
    )
    uow.session.execute(text("ANALYZE offers"))
    box = bounding_box(HOME[0], HOME[1], 25_000)
    area = SearchArea(HOME[0], HOME[1], 25_000, box.west, box.south, box.east, box.north)

    # When the Near tab asks for a 25 km radius
    plan = uow.discovery.nearby_query_plan(area, tab="near", now=NOW)
    assert "ix_offers_live_location" in plan, plan

    # Then the page holds exactly the offers within 25 km by haversine, nearest first
    page = uow.discovery.nearby_page(area, tab="near", category=None, now=NOW, limit=1000, offset=0)
    pins = uow.session.execute(
        text("SELECT id, latitude, longitude FROM offers WHERE business_id = :b AND title LIKE 'Bulk %'"),
        {"b": shop.id},
    ).all()
    expected = sorted(
        (haversine_m(HOME[0], HOME[1], lat, lon), oid)
        for oid, lat, lon in pins
        if haversine_m(HOME[0], HOME[1], lat, lon) <= 25_000
    )
    assert page.total == len(expected) > 0
    assert [o.offer_id for o in page.offers] == [oid for _, oid in expected]
    for offer, (meters, _) in zip(page.offers, expected, strict=True):
        assert math.isclose(offer.distance_m, meters, rel_tol=1e-9, abs_tol=1e-6)
