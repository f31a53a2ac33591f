"""Repositories for dialogs in progress and for businesses (with their venues)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from db.models import Business, Dialog, User, Venue


@dataclass(frozen=True)
class DialogRow:
    kind: str
    step: str
    data: dict[str, Any]


class DialogState(Protocol):
    """What every dialog's state offers (core.registration, core.offer_wizard)."""

    @property
    def step(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...


class DialogRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: int) -> DialogRow | None:
        row = self.session.get(Dialog, user_id, populate_existing=True)
        return DialogRow(row.kind, row.step, dict(row.data)) if row is not None else None

    def save(self, user_id: int, *, kind: str, step: str, data: dict[str, Any], now: datetime) -> None:
        stmt = pg_insert(Dialog).values(
            user_id=user_id, kind=kind, step=step, data=data, created_at=now, updated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Dialog.user_id],
            set_={"kind": kind, "step": step, "data": data, "updated_at": now},
        )
        self.session.execute(stmt)

    def store(self, user_id: int, kind: str, state: DialogState | None, *, now: datetime) -> None:
        """Keep a dialog's new state, or end the dialog when the step returned no state."""
        if state is None:
            self.end(user_id)
        else:
            self.save(user_id, kind=kind, step=state.step, data=state.data, now=now)

    def end(self, user_id: int) -> bool:
        row = self.session.get(Dialog, user_id)
        if row is None:
            return False
        self.session.delete(row)
        self.session.flush()
        return True


class BusinessRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create_with_venue(
        self,
        *,
        owner_user_id: int,
        name: str,
        category: str,
        currency: str,
        contact_phone: str,
        address: str,
        latitude: float | None,
        longitude: float | None,
        timezone: str,
        now: datetime,
    ) -> Business:
        business = Business(
            owner_user_id=owner_user_id,
            name=name,
            category=category,
            currency=currency,
            contact_phone=contact_phone,
            status="pending",
            created_at=now,
            updated_at=now,
        )
        business.venues.append(
            Venue(
                name=name,
                address=address,
                latitude=latitude,
                longitude=longitude,
                timezone=timezone,
                created_at=now,
                updated_at=now,
            )
        )
        self.session.add(business)
        self.session.flush()
        return business

    def get_for_update(self, business_id: int) -> Business | None:
        """Lock the business row: two admins (or a double tap) deciding at once apply one decision."""
        stmt = select(Business).where(Business.id == business_id).with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()

    def latest_of_owner(self, owner_user_id: int) -> Business | None:
        stmt = (
            select(Business)
            .where(Business.owner_user_id == owner_user_id)
            .order_by(Business.created_at.desc(), Business.id.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).one_or_none()

    def owner_of(self, business: Business) -> User:
        owner = self.session.get(User, business.owner_user_id)
        assert owner is not None  # FK
        return owner

    def list_by_status(self, status: str, *, limit: int = 10) -> list[Business]:
        stmt = select(Business).where(Business.status == status).order_by(Business.created_at, Business.id)
        return list(self.session.scalars(stmt.limit(limit)))

    def count_by_status(self) -> dict[str, int]:
        rows = self.session.execute(select(Business.status, func.count()).group_by(Business.status)).all()
        return {status: int(count) for status, count in rows}

    def set_status(
        self, business: Business, status: str, *, now: datetime, reason: str | None = None
    ) -> None:
        business.status = status
        business.updated_at = now
        if status == "verified":
            business.verified_at = business.verified_at or now
            business.suspended_at = None
        elif status == "suspended":
            business.suspended_at = now
        elif status == "rejected":
            business.rejection_reason = reason
        self.session.flush()
