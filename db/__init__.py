"""Persistence for MarketBot: SQLAlchemy models, engine/sessions, repositories, unit of work, migrations.

Imports only SQLAlchemy, Alembic, psycopg2, the standard library and `core`; never Celery, aiogram, Redis,
Stripe or the `marketbot` process package, so any process (and any test) can use it.
"""

from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork

__all__ = ["SqlAlchemyUnitOfWork", "make_engine", "make_session_factory"]
