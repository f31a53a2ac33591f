"""Admins suspend and reinstate businesses with a reason; a suspended business cannot publish."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from core.callbacks import AdminAction
from core.conversation import UserView
from db.models import AuditLogEntry
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from tasks import business_flows as flows
from tasks import offer_flows
from tests.integration import seed

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def uow(database_url: str) -> Iterator[SqlAlchemyUnitOfWork]:
    engine = make_engine(database_url)
    with SqlAlchemyUnitOfWork(make_session_factory(engine)) as unit:
        yield unit
    engine.dispose()


def _user(uow: SqlAlchemyUnitOfWork) -> Any:
    return seed.user(uow, NOW)


def _ctx(user: Any, admins: frozenset[int]) -> flows.Context:
    view = UserView(user.telegram_user_id, user.telegram_user_id, "en", "U")
    return flows.Context(command=None, user=view, row_id=user.id, admins=admins, now=NOW)  # type: ignore[arg-type]


def _texts(replies: tuple[Any, ...]) -> str:
    return "\n".join(r.text for r in replies)


def test_suspend_needs_a_reason_tells_the_owner_and_blocks_new_offers_until_reinstated(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    owner, admin = _user(uow), _user(uow)
    admins = frozenset({admin.telegram_user_id})
    business = seed.verified_business(uow, owner, NOW, "Shop")
    admin_ctx = _ctx(admin, admins)

    # A non-admin's forged suspend button does nothing
    assert "operators only" in _texts(
        flows.admin_action(_ctx(owner, admins), uow, AdminAction("suspend", business.id))
    )
    # The admin is asked why, and a too-short reason is refused
    assert "Why is #" in _texts(flows.admin_action(admin_ctx, uow, AdminAction("suspend", business.id)))
    dialog = uow.dialogs.get(admin.id)
    assert dialog is not None
    assert "3 to 500" in _texts(flows.admin_reason(admin_ctx, uow, dialog.kind, dialog.data, "x"))
    replies = flows.admin_reason(admin_ctx, uow, dialog.kind, dialog.data, "Repeated no-show complaints")

    assert business.status == "suspended" and business.suspended_at == NOW
    to_owner = [r for r in replies if r.chat_id == owner.telegram_user_id]
    assert to_owner and "Repeated no-show complaints" in to_owner[0].text
    assert "is suspended" in _texts(offer_flows.start_offer(_ctx(owner, admins), uow))

    assert "Reinstated" in _texts(flows.admin_action(admin_ctx, uow, AdminAction("reinstate", business.id)))
    assert business.status == "verified"
    assert "Send a photo of the food" in _texts(offer_flows.start_offer(_ctx(owner, admins), uow))

    audit = uow.session.scalars(
        select(AuditLogEntry).where(AuditLogEntry.subject_id == str(business.id)).order_by(AuditLogEntry.id)
    ).all()
    assert [(a.action, a.actor_telegram_user_id, a.reason) for a in audit] == [
        ("business.suspend", admin.telegram_user_id, "Repeated no-show complaints"),
        ("business.reinstate", admin.telegram_user_id, None),
    ]
