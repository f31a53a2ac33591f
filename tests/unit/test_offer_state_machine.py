"""The offer state machine: every pair in the table works, every pair outside it is refused."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from core.offers import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    OfferAction,
    OfferStatus,
    PickupWindowOver,
    TransitionRefused,
    allowed_actions,
    is_visible_to_customers,
    transition,
)

PICKUP_END = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
DURING_WINDOW = PICKUP_END - timedelta(hours=2)
AFTER_WINDOW = PICKUP_END + timedelta(minutes=1)

ALLOWED = sorted(TRANSITIONS.items())
REFUSED = sorted(set(itertools.product(OfferStatus, OfferAction)) - set(TRANSITIONS))


def _when_allowed(action: OfferAction) -> datetime:
    # Expiry is for offers whose pickup window has ended; everything else happens while it is open.
    return PICKUP_END if action is OfferAction.EXPIRE else DURING_WINDOW


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [(status, action, target) for (status, action), target in ALLOWED],
    ids=[f"{status}-{action}->{target}" for (status, action), target in ALLOWED],
)
def test_every_transition_in_the_table_is_allowed(
    status: OfferStatus, action: OfferAction, target: OfferStatus
) -> None:
    # Given an offer in `status`, when `action` happens at a sensible time
    result = transition(status, action, now=_when_allowed(action), pickup_end=PICKUP_END)

    # Then the offer moves to the status the table says
    assert result is target


@pytest.mark.parametrize("now", [DURING_WINDOW, AFTER_WINDOW], ids=["during-window", "after-window"])
@pytest.mark.parametrize(
    ("status", "action"), REFUSED, ids=[f"{status}-{action}" for status, action in REFUSED]
)
def test_every_pair_outside_the_table_is_refused(
    status: OfferStatus, action: OfferAction, now: datetime
) -> None:
    # Given an offer in `status`, when `action` is not in the table for it
    with pytest.raises(TransitionRefused) as refused:
        transition(status, action, now=now, pickup_end=PICKUP_END)

    # Then it is refused with the stable code, saying what was tried on what
    assert type(refused.value) is TransitionRefused
    assert refused.value.code == "offer_transition_refused"
    assert refused.value.params == {"status": status.value, "action": action.value}


def test_the_table_and_the_refusals_cover_every_pair_exactly_once() -> None:
    every_pair = set(itertools.product(OfferStatus, OfferAction))
    assert set(TRANSITIONS) | set(REFUSED) == every_pair
    assert not set(TRANSITIONS) & set(REFUSED)
    assert len(REFUSED) == len(OfferStatus) * len(OfferAction) - len(TRANSITIONS)


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (OfferStatus.DRAFT, OfferAction.PUBLISH),
        (OfferStatus.PAUSED, OfferAction.RESUME),
        (OfferStatus.SOLD_OUT, OfferAction.RESTOCK),
    ],
    ids=["publish-draft", "resume-paused", "restock-sold_out"],
)
@pytest.mark.parametrize("now", [PICKUP_END, AFTER_WINDOW], ids=["at-end", "after-end"])
def test_an_offer_cannot_go_on_sale_once_its_pickup_window_is_over(
    status: OfferStatus, action: OfferAction, now: datetime
) -> None:
    with pytest.raises(PickupWindowOver) as refused:
        transition(status, action, now=now, pickup_end=PICKUP_END)

    assert refused.value.code == "offer_window_over"
    assert refused.value.params == {"status": status.value, "action": action.value}
    assert isinstance(refused.value, TransitionRefused)  # callers catching the general refusal still do


@pytest.mark.parametrize(
    "status",
    [OfferStatus.DRAFT, OfferStatus.PUBLISHED, OfferStatus.PAUSED, OfferStatus.SOLD_OUT],
)
def test_an_offer_expires_only_once_its_pickup_window_has_ended(status: OfferStatus) -> None:
    # Given a live offer whose pickup window is still open, expiring it is refused
    with pytest.raises(TransitionRefused) as refused:
        transition(status, OfferAction.EXPIRE, now=DURING_WINDOW, pickup_end=PICKUP_END)
    assert refused.value.code == "offer_transition_refused"
    assert refused.value.params["reason"] == "window_not_over"

    # When the window ends, then it expires
    for now in (PICKUP_END, AFTER_WINDOW):
        assert transition(status, OfferAction.EXPIRE, now=now, pickup_end=PICKUP_END) is OfferStatus.EXPIRED


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_cancelled_and_expired_offers_are_final(status: OfferStatus) -> None:
    assert allowed_actions(status) == frozenset()
    assert not any(source == status for source, _ in TRANSITIONS)


def test_the_owner_sees_the_right_buttons_for_each_status() -> None:
    assert allowed_actions(OfferStatus.DRAFT) == {
        OfferAction.PUBLISH,
        OfferAction.EDIT,
        OfferAction.CANCEL,
        OfferAction.EXPIRE,
    }
    assert allowed_actions(OfferStatus.PUBLISHED) == {
        OfferAction.PAUSE,
        OfferAction.MARK_SOLD_OUT,
        OfferAction.EDIT,
        OfferAction.CANCEL,
        OfferAction.EXPIRE,
    }
    assert allowed_actions(OfferStatus.PAUSED) == {
        OfferAction.RESUME,
        OfferAction.EDIT,
        OfferAction.CANCEL,
        OfferAction.EXPIRE,
    }
    assert allowed_actions(OfferStatus.SOLD_OUT) == {
        OfferAction.RESTOCK,
        OfferAction.CANCEL,
        OfferAction.EXPIRE,
    }


def test_owner_can_pause_edit_and_resume_without_the_offer_changing_hands() -> None:
    # Given a published offer
    status = OfferStatus.PUBLISHED

    # When the owner pauses, edits and resumes it during the pickup window
    for action in (OfferAction.PAUSE, OfferAction.EDIT, OfferAction.RESUME):
        status = transition(status, action, now=DURING_WINDOW, pickup_end=PICKUP_END)

    # Then it is back on sale
    assert status is OfferStatus.PUBLISHED


def test_statuses_and_actions_read_from_the_database_as_plain_strings_work() -> None:
    status, action = "published", "pause"  # as a row or callback payload would hold them
    paused = transition(status, action, now=DURING_WINDOW, pickup_end=PICKUP_END)  # type: ignore[arg-type]
    assert paused is OfferStatus.PAUSED


@pytest.mark.parametrize("status", list(OfferStatus))
def test_only_published_offers_are_visible_to_customers(status: OfferStatus) -> None:
    assert is_visible_to_customers(status) is (status is OfferStatus.PUBLISHED)


def test_naive_times_are_a_caller_bug() -> None:
    naive = datetime(2026, 11, 23, 18, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        transition(OfferStatus.DRAFT, OfferAction.PUBLISH, now=naive, pickup_end=PICKUP_END)
    with pytest.raises(ValueError, match="timezone-aware"):
        transition(OfferStatus.DRAFT, OfferAction.PUBLISH, now=DURING_WINDOW, pickup_end=naive)
