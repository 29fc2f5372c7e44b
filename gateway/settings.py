"""Settings read from the environment, validated once at startup.

Every field maps to the environment variable of the same name in upper case
(``DATABASE_URL``, ``REDIS_URL``, ...). ``load_settings`` turns a bad value into
``SettingsError`` carrying one readable line that names the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite://var/gateway.sqlite3"


class SettingsError(Exception):
    """A configuration value is invalid; the message names the variable."""


class Settings(BaseSettings):
    """The gateway's whole configuration (see the README's configuration table)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=10, ge=1, le=200)
    redis_url: str | None = None
    bus_url: str | None = None
    auto_migrate: bool | None = None
    seed_demo: bool | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    dev_auth: bool = False

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    access_log: bool = True
    sentry_dsn: str | None = None

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    page_size_default: int = Field(default=50, ge=1)
    page_size_max: int = Field(default=200, ge=1)
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60)
    public_url: str | None = None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in {"sqlite", "postgres", "postgresql", "asyncpg"}:
            raise ValueError(
                f"unsupported scheme {scheme!r}; use sqlite://PATH or postgres://USER@HOST/DB"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("use redis://HOST:PORT/DB (or rediss:// for TLS)")
        return value

    @model_validator(mode="after")
    def _refuse_dev_auth_in_production(self) -> Settings:
        if self.environment == "production" and self.dev_auth:
            raise ValueError("DEV_AUTH must be false when ENVIRONMENT=production")
        return self

    @field_validator("bus_url")
    @classmethod
    def _check_bus_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if urlsplit(value).scheme not in {"memory", "redis", "rediss", "unix"}:
            raise ValueError("use memory:// or redis://HOST:PORT/DB")
        return value

    @property
    def event_bus_url(self) -> str:
        """``BUS_URL``, else Redis when ``REDIS_URL`` is set, else in-process."""
        return self.bus_url or self.redis_url or "memory://"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_migrate(self) -> bool:
        """Migrate at startup: on by default for the embedded SQLite file only."""
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def should_seed_demo(self) -> bool:
        return self.is_sqlite if self.seed_demo is None else self.seed_demo

    @property
    def tortoise_url(self) -> str:
        """The database URL in the form Tortoise expects, with the pool size applied."""
        url = self.database_url
        if self.is_sqlite:
            path = Path(url.split("://", 1)[1])
            path.parent.mkdir(parents=True, exist_ok=True)
            return f"sqlite://{path}"
        scheme, rest = url.split("://", 1)
        if scheme in {"postgres", "postgresql"}:
            url = f"asyncpg://{rest}"
        if "maxsize=" not in url:
            url += ("&" if "?" in url else "?") + f"maxsize={self.database_pool_size}"
        return url


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (plus explicit overrides) or raise SettingsError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        value = first.get("input")
        raise SettingsError(
            f"configuration error: {name}={value!r}: {first['msg']}"
            + (f" ({len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else "")
        ) from None
