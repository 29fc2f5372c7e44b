"""Settings read from the environment, validated once at startup.

Every field maps to the environment variable of the same name in upper case
(``DATABASE_URL``, ``REDIS_URL``, ...). ``load_settings`` turns a bad value into
``SettingsError`` carrying one readable line that names the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_origin
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from db.listing import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from gateway.ratelimit import Rate

DEFAULT_DATABASE_URL = "sqlite://var/gateway.sqlite3"
# Limits a role, client or API key may be given its own rate for (RATE_LIMIT_OVERRIDES).
RATE_POLICIES = ("read", "write", "graphql", "token", "ws-connect", "ws-messages")
OVERRIDE_KINDS = ("role", "client", "api-key")
# List page sizes when PAGE_SIZE_DEFAULT / PAGE_SIZE_MAX are not set (``db.listing``).
PAGE_SIZE_DEFAULT = DEFAULT_PAGE_SIZE
PAGE_SIZE_MAX = MAX_PAGE_SIZE


class SettingsError(Exception):
    """A configuration value is invalid; the message names the variable."""


class ExternalIssuer(BaseModel):
    """Another OAuth2/OIDC provider whose access tokens the gateway accepts.

    Its claims map to a Principal: the organization comes from ``organization``
    (a fixed slug) or from the claim ``organization_claim`` (a slug); scopes from
    ``scope_claim`` (space-separated or a list); the role from ``role_claim``,
    else ``default_role``.
    """

    model_config = ConfigDict(extra="forbid")

    issuer: str
    jwks_uri: str
    audience: str
    algorithms: list[Literal["RS256", "ES256", "PS256", "EdDSA"]] = ["RS256", "ES256"]
    organization: str | None = None
    organization_claim: str = "org"
    scope_claim: str = "scope"
    role_claim: str = "role"
    default_role: Literal["admin", "staff", "viewer"] = "viewer"


class Settings(BaseSettings):
    """The gateway's whole configuration (see the README's configuration table)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # PostgreSQL: how long opening a connection, and one statement, may take before the
    # request is answered 503 DATABASE_UNAVAILABLE (db/pg.py). Connecting takes a few ms
    # on a LAN; the short bound keeps a database behind a dead network from holding
    # requests (asyncpg's default is 60 s).
    database_connect_timeout_seconds: float = Field(default=0.5, gt=0, le=60)
    database_statement_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)
    redis_url: str | None = None
    bus_url: str | None = None
    auto_migrate: bool | None = None
    seed_demo: bool | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    keep_alive_timeout_seconds: int = Field(default=5, ge=1, le=600)
    # Sanic's manager gives a stopping worker 10 s; the closes after it take up to 2.
    shutdown_timeout_seconds: float = Field(default=5.0, ge=0.5, le=7.0)

    auth_issuer: str | None = None
    auth_audience: str = "commerce-gateway"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=2_592_000, ge=300)
    jwt_algorithm: Literal["ES256", "RS256"] = "ES256"
    external_issuers: list[ExternalIssuer] = Field(default_factory=list)
    login_attempts_per_minute: int = Field(default=5, ge=1, le=1000)

    rate_limits_enabled: bool = True
    rate_limit_read: str = "1200/minute"
    rate_limit_write: str = "300/minute"
    rate_limit_graphql: str = "200000/minute"
    rate_limit_token: str = "60/minute"  # noqa: S105 (a rate, not a password)
    rate_limit_auth_failures: str = "30/minute"
    rate_limit_ws_connect: str = "60/minute"
    rate_limit_ws_messages: str = "50/second"
    rate_limit_overrides: dict[str, dict[str, str]] = Field(default_factory=dict)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    access_log: bool = True
    sentry_dsn: str | None = None
    # Sentry's release tag; else the package version (gateway/observability.py).
    sentry_release: str | None = Field(default=None, max_length=200)
    # Non-loopback clients read /metrics with "Authorization: Bearer <this>" (gateway/metrics).
    metrics_token: str | None = Field(default=None, min_length=16)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    page_size_default: int = Field(default=PAGE_SIZE_DEFAULT, ge=1)
    page_size_max: int = Field(default=PAGE_SIZE_MAX, ge=1)
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60)
    public_url: str | None = None
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    # Browser pages on these origins may call every HTTP door and open sockets
    # (gateway/cors.py); empty: same-origin pages only.
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    cors_max_age_seconds: int = Field(default=600, ge=0, le=86_400)

    graphql_max_depth: int = Field(default=10, ge=2, le=50)
    graphql_max_aliases: int = Field(default=30, ge=1, le=1000)
    graphql_max_tokens: int = Field(default=2000, ge=100, le=100_000)
    graphql_max_cost: int = Field(default=20_000, ge=100)
    graphql_max_document_bytes: int = Field(default=65_536, ge=1024, le=1_048_576)
    graphql_max_fields: int = Field(default=2_000, ge=10, le=100_000)
    graphql_max_fragment_spreads: int = Field(default=500, ge=1, le=100_000)
    graphql_cache_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    graphql_persisted_query_bytes: int = Field(default=2 * 1024 * 1024, ge=0)
    graphql_persisted_query_ttl_seconds: int = Field(default=7 * 86_400, ge=60)
    graphql_introspection: bool | None = None
    # What executes GraphQL documents (resolvers/engine): "fast", or "standard"
    # (Strawberry's own execution: the fallback when an upgrade breaks the fast one).
    graphql_engine: Literal["fast", "standard"] = "fast"

    change_log_retention_seconds: int = Field(default=86_400, ge=60)
    relay_enabled: bool = True
    # /readyz fails while the oldest committed event the relay has not published is older.
    ready_max_relay_lag_seconds: float = Field(default=30.0, gt=0, le=86_400)
    realtime_queue_limit: int = Field(default=1_000, ge=10, le=1_000_000)
    realtime_auth_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    realtime_unauthenticated_per_address: int = Field(default=20, ge=1, le=100_000)
    realtime_subscriptions_per_connection: int = Field(default=20, ge=1, le=1000)
    # Every quiet event stream (SSE, graphql-sse, multipart) sends a heartbeat this often:
    # below Sanic's 60 s RESPONSE_TIMEOUT and the usual proxies' idle timeouts.
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0, le=50)

    # Webhooks (realtime/webhooks): one dispatcher per installation delivers them.
    webhook_dispatcher_enabled: bool = True
    # Deliver to loopback/private/link-local targets; unset: only when ENVIRONMENT=development.
    webhook_allow_private_targets: bool | None = None
    webhook_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # One attempt, from connecting to the last byte read.
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    webhook_max_response_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    webhook_retry_initial_seconds: float = Field(default=5.0, gt=0, le=3600)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    webhook_breaker_failures: int = Field(default=5, ge=1, le=1000)
    webhook_breaker_cooldown_seconds: float = Field(default=60.0, gt=0, le=86_400)
    webhook_disable_after_seconds: int = Field(default=259_200, ge=60)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in {"sqlite", "postgres", "postgresql", "asyncpg"}:
            raise ValueError(
                f"unsupported scheme {scheme!r}; use sqlite://PATH or postgres://USER@HOST/DB"
            )
        return value

    @field_validator(
        "rate_limit_read",
        "rate_limit_write",
        "rate_limit_graphql",
        "rate_limit_token",
        "rate_limit_auth_failures",
        "rate_limit_ws_connect",
        "rate_limit_ws_messages",
    )
    @classmethod
    def _check_rate(cls, value: str) -> str:
        Rate.parse(value)
        return value

    @field_validator("rate_limit_overrides")
    @classmethod
    def _check_overrides(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for who, rates in value.items():
            kind, _, name = who.partition(":")
            if kind not in OVERRIDE_KINDS or not name:
                raise ValueError(
                    f"key {who[:80]!r} must be role:<role>, client:<client id> or api-key:<key id>"
                )
            for policy, rate in rates.items():
                if policy not in RATE_POLICIES:
                    raise ValueError(
                        f"{who}: unknown limit {policy[:40]!r}; use {', '.join(RATE_POLICIES)}"
                    )
                Rate.parse(rate)
        return value

    @field_validator("trusted_proxies", "cors_allow_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """A comma-separated list in the environment (``a, b``); blanks are dropped."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        if "*" in value and len(value) > 1:
            raise ValueError("use either * or a list of origins, not both")
        for origin in value:
            if origin != "*" and not _is_origin(origin):
                raise ValueError(
                    f"{origin[:80]!r} is not an origin; write scheme://host[:port], "
                    "with no path, e.g. https://app.example.com"
                )
        return [origin.lower() for origin in value]

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_allow_origins:
            raise ValueError(
                "CORS_ALLOW_ORIGINS=* cannot be combined with CORS_ALLOW_CREDENTIALS=true; "
                "list the origins"
            )
        return self

    @model_validator(mode="after")
    def _default_page_within_the_cap(self) -> Settings:
        if self.page_size_default > self.page_size_max:
            raise ValueError(
                f"PAGE_SIZE_DEFAULT={self.page_size_default} is above "
                f"PAGE_SIZE_MAX={self.page_size_max}"
            )
        return self

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("use redis://HOST:PORT/DB (or rediss:// for TLS)")
        return value

    @model_validator(mode="after")
    def _https_issuer_in_production(self) -> Settings:
        if self.environment == "production" and not self.issuer.startswith("https://"):
            raise ValueError(
                "AUTH_ISSUER (or PUBLIC_URL) must be an https:// URL when ENVIRONMENT=production"
            )
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
    def issuer(self) -> str:
        """``AUTH_ISSUER``, else ``PUBLIC_URL``, else the listening address."""
        return (self.auth_issuer or self.public_url or f"http://{self.host}:{self.port}").rstrip(
            "/"
        )

    @property
    def event_bus_url(self) -> str:
        """``BUS_URL``, else Redis when ``REDIS_URL`` is set, else in-process."""
        return self.bus_url or self.redis_url or "memory://"

    @property
    def introspection_enabled(self) -> bool:
        """``GRAPHQL_INTROSPECTION``, else on everywhere but production."""
        if self.graphql_introspection is None:
            return self.environment != "production"
        return self.graphql_introspection

    @property
    def webhook_private_targets_allowed(self) -> bool:
        """``WEBHOOK_ALLOW_PRIVATE_TARGETS``, else on only in development (a local receiver)."""
        if self.webhook_allow_private_targets is None:
            return self.environment == "development"
        return self.webhook_allow_private_targets

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
        if "connect_timeout=" not in url:
            url += f"&connect_timeout={self.database_connect_timeout_seconds}"
        if "command_timeout=" not in url:
            url += f"&command_timeout={self.database_statement_timeout_seconds}"
        return url


def _is_origin(text: str) -> bool:
    """``scheme://host[:port]`` and nothing more (the form of a browser's ``Origin``)."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme in {"http", "https"}
        and bool(parts.hostname)
        and not (parts.path or parts.query or parts.fragment or parts.username)
        and text.lower() == f"{parts.scheme}://{parts.netloc}".lower()
        and (port is None or 0 < port < 65536)
    )


def _shown(name: str, value: object) -> str:
    """``NAME=value`` for settings that cannot hold a secret, else just ``NAME``.

    Only numbers, booleans and fixed choices are echoed: any text setting may be a
    URL with a password, a DSN or a key, and configuration errors end up in logs.
    """
    field = Settings.model_fields.get(name.lower())
    annotation = field.annotation if field is not None else None
    if annotation in (int, float, bool, bool | None) or get_origin(annotation) is Literal:
        return f"{name}={value!r}"
    return name


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (plus explicit overrides) or raise SettingsError.

    The message names the variable and the rule; it never repeats a value that
    could be a secret (see ``_shown``).
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        more = f" ({len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        if not first["loc"]:  # a rule across several settings: its message names them
            raise SettingsError(f"configuration error: {message}{more}") from None
        name = str(first["loc"][0]).upper()
        raise SettingsError(
            f"configuration error: {_shown(name, first.get('input'))}: {message}{more}"
        ) from None
