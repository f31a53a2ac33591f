"""One settings object, read from the environment (and `.env`), validated once at start.

Every process calls `load_settings()` early; a bad or missing variable stops it with one line naming the
variable and what is wrong (see `ConfigError`), instead of a stack trace minutes later.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{1,}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class ConfigError(Exception):
    """A configuration problem, phrased for the operator: `VARIABLE: what is wrong`."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: str | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_base_url: str = Field(default="https://api.telegram.org", alias="TELEGRAM_API_BASE_URL")
    telegram_webhook_secret: str | None = Field(default=None, alias="TELEGRAM_WEBHOOK_SECRET")
    public_base_url: str | None = Field(default=None, alias="PUBLIC_BASE_URL")
    stripe_secret_key: str | None = Field(default=None, alias="STRIPE_SECRET_KEY")
    stripe_api_base_url: str = Field(default="https://api.stripe.com", alias="STRIPE_API_BASE_URL")
    stripe_webhook_secret: str | None = Field(default=None, alias="STRIPE_WEBHOOK_SECRET")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    celery_broker_url_raw: str | None = Field(default=None, alias="CELERY_BROKER_URL")
    admin_telegram_ids_raw: str = Field(default="", alias="ADMIN_TELEGRAM_IDS")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", alias="LOG_LEVEL")
    log_format: Literal["json", "console"] = Field(default="json", alias="LOG_FORMAT")
    http_host: str = Field(default="0.0.0.0", alias="HTTP_HOST")
    http_port: int = Field(default=8080, ge=1, le=65535, alias="HTTP_PORT")
    # Keyed hash for user ids in logs; without it the hashes still hide ids but are guessable by brute force.
    log_hash_key: str = Field(default="marketbot-dev-log-key", alias="LOG_HASH_KEY")
    data_dir: str = Field(default=".marketbot", alias="MARKETBOT_DATA_DIR")
    # Per-user gateway rate limit: at most this many updates per window before we start dropping.
    user_rate_limit: int = Field(default=20, ge=1, alias="USER_RATE_LIMIT")
    user_rate_window_s: int = Field(default=10, ge=1, alias="USER_RATE_WINDOW_SECONDS")
    hold_minutes: int = Field(default=15, ge=1, le=120, alias="HOLD_MINUTES")
    cancel_cutoff_minutes: int = Field(default=60, ge=0, le=1440, alias="ORDER_CANCEL_CUTOFF_MINUTES")
    telegram_bot_username: str | None = Field(default=None, alias="TELEGRAM_BOT_USERNAME")
    # Where Stripe's checkout page sends the buyer after paying or cancelling (default: the bot's chat).
    checkout_return_url: str | None = Field(default=None, alias="CHECKOUT_RETURN_URL")
    flower_basic_auth: str | None = Field(default=None, alias="FLOWER_BASIC_AUTH")
    flower_port: int = Field(default=5555, ge=1, le=65535, alias="FLOWER_PORT")
    # Loopback by default: Flower's /metrics and /healthcheck skip its auth. In a container, 0.0.0.0 with
    # the port published on the host's loopback only.
    flower_address: str = Field(default="127.0.0.1", alias="FLOWER_ADDRESS")

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, v: str | None) -> str | None:
        if v is not None and v != "" and not _TOKEN_RE.match(v):
            raise ValueError("must look like 123456789:AA... (the token @BotFather gave you)")
        return v or None

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _secret_shape(cls, v: str | None) -> str | None:
        if v is not None and v != "" and not _SECRET_RE.match(v):
            raise ValueError("must be 1-256 characters of A-Z a-z 0-9 _ - (Telegram's rule)")
        return v or None

    @field_validator("telegram_api_base_url", "stripe_api_base_url", "public_base_url", "checkout_return_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None if v == "" else v
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http(s) URL such as https://bot.example.com")
        return v.rstrip("/")

    @field_validator("public_base_url")
    @classmethod
    def _https_only(cls, v: str | None) -> str | None:
        if v and not v.startswith("https://") and "127.0.0.1" not in v and "localhost" not in v:
            raise ValueError("must start with https:// (Telegram only delivers webhooks over TLS)")
        return v

    @field_validator("database_url")
    @classmethod
    def _pg_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
            raise ValueError("must be a PostgreSQL URL, postgresql://user:pass@host:5432/dbname")
        return v

    @field_validator("redis_url", "celery_broker_url_raw")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.startswith(("redis://", "rediss://", "unix://", "redis+socket://", "amqp://", "pyamqp://")):
            raise ValueError("must be a redis://host:6379/0 (or unix:///path/redis.sock) URL")
        return v

    @field_validator("admin_telegram_ids_raw")
    @classmethod
    def _admin_ids(cls, v: str) -> str:
        for part in filter(None, (p.strip() for p in v.split(","))):
            if not part.isdigit():
                raise ValueError(f"must be comma-separated numeric Telegram user ids, got {part!r}")
        return v

    @cached_property
    def admin_telegram_ids(self) -> frozenset[int]:
        return frozenset(int(p) for p in self.admin_telegram_ids_raw.split(",") if p.strip())

    @property
    def sqlalchemy_url(self) -> str:
        return normalize_database_url(self.require("database_url"))

    @property
    def celery_broker_url(self) -> str:
        return self.celery_broker_url_raw or redis_url_for_celery(self.require("redis_url"))

    def require(self, field: str) -> str:
        value = getattr(self, field)
        if not value:
            env = type(self).model_fields[field].alias or field.upper()
            raise ConfigError(f"{env}: not set")
        return str(value)


def normalize_database_url(url: str) -> str:
    """SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; we ship psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def redis_url_for_celery(url: str) -> str:
    """kombu spells a unix socket `redis+socket://`; redis-py spells it `unix://`."""
    if url.startswith("unix://"):
        path, _, query = url[len("unix://") :].partition("?")
        db = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("db", "0")
        return f"redis+socket://{path}?virtual_host={db}"
    return url


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; raise ConfigError with a one-line, variable-named message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][0] if first["loc"] else "?"
        env = next(
            (f.alias for name, f in Settings.model_fields.items() if name == loc or f.alias == loc),
            str(loc),
        )
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{env}: {msg}") from None
