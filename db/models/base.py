"""Declarative base, naming convention and the small helpers every model module shares.

Enum-like columns are plain text guarded by CHECK constraints (not PostgreSQL ENUM types): adding a state is
then a one-line constraint swap in a migration instead of `ALTER TYPE`, which cannot run inside a
transaction on older servers. The allowed values live here as tuples so models, checks and tests agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import TIMESTAMP, BigInteger, Double, MetaData, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Explicit, deterministic constraint names: migrations can then drop/alter a constraint by a name that is
# the same on every database, instead of whatever PostgreSQL happened to generate.
NAMING_CONVENTION: dict[str, str] = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}


class Base(DeclarativeBase):
    """Every table of MarketBot. `Mapped[datetime]` is always TIMESTAMP WITH TIME ZONE, `int` is BIGINT."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        # A naive timestamp silently shifts by the server's offset; all instants are stored tz-aware (UTC).
        datetime: TIMESTAMP(timezone=True),
        # Telegram ids exceed 2**31 and money in minor units of zero-decimal currencies gets large: default
        # to BIGINT, and opt into INTEGER explicitly for small counters.
        int: BigInteger(),
        float: Double(),
        dict[str, Any]: JSONB(),
    }


class CreatedUpdatedMixin:
    """`created_at`/`updated_at`; repositories set `updated_at` from the injected clock on every change."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


def one_of(column: str, values: Iterable[str]) -> str:
    """SQL text for a CHECK that `column` holds one of `values` (fixed identifiers, quoted defensively)."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def currency_check(column: str = "currency") -> str:
    """ISO 4217 alphabetic code: three upper-case letters (Stripe wants lower case; adapters convert)."""
    return f"{column} ~ '^[A-Z]{{3}}$'"


def coordinates_check(lat: str = "latitude", lon: str = "longitude") -> str:
    """A location is both coordinates or neither, each in range: half a pin would break distance sorting."""
    return (
        f"(({lat} IS NULL) = ({lon} IS NULL)) AND ({lat} IS NULL OR {lat} BETWEEN -90 AND 90)"
        f" AND ({lon} IS NULL OR {lon} BETWEEN -180 AND 180)"
    )


def not_blank(column: str) -> str:
    """Text that must carry something visible (a name made of spaces renders as an empty button)."""
    return f"btrim({column}) <> ''"
