"""Stream tickets: how a browser's ``EventSource`` authenticates.

``EventSource`` cannot send an ``Authorization`` header, and a long-lived token
in a URL ends up in logs and histories. Instead the page asks for a ticket with
its token (``POST /api/v1/events/tickets``) and opens
``/api/v1/events?ticket=...``: a ticket is random, works once, and expires after
``TTL_SECONDS``. It carries the caller's Principal, so the stream still closes
when the token behind it expires or is revoked.

Tickets live in Redis when configured (any worker or host can redeem them; ``GETDEL``
makes redemption single-use across all of them), in this process otherwise. While
Redis does not answer, issuing and redeeming are ``UNAVAILABLE`` (503): try again
shortly, or send the credential in a header.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import RedisError

from db.errors import InvalidToken, Unavailable
from db.principal import Principal
from gateway import metrics

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("gateway.realtime")

TTL_SECONDS = 60
PREFIX = "gateway:stream-ticket:"


UNAVAILABLE = (
    "stream tickets are unavailable for a moment (their store does not answer): try "
    "again shortly, or send Authorization or X-API-Key with the stream request"
)


def _dump(principal: Principal) -> bytes:
    return orjson.dumps(
        {
            "subject": principal.subject,
            "organization_id": principal.organization_id,
            "scopes": sorted(principal.scopes),
            "roles": sorted(principal.roles),
            "credential_id": principal.credential_id,
            "expires_at": principal.expires_at,
        }
    )


def _load(raw: bytes | str) -> Principal:
    data: dict[str, Any] = orjson.loads(raw)
    return Principal(
        subject=data["subject"],
        organization_id=data["organization_id"],
        scopes=frozenset(data["scopes"]),
        roles=frozenset(data["roles"]),
        credential_id=data["credential_id"],
        expires_at=data["expires_at"],
    )


class Tickets:
    def __init__(self, redis: Redis | None = None) -> None:
        self.redis = redis
        self._memory: dict[str, tuple[bytes, float]] = {}
        self._failing = False  # logged that Redis fails (one line per change, not per call)

    def _unavailable(self, exc: Exception) -> Unavailable:
        metrics.redis_error("tickets")
        if not self._failing:
            self._failing = True
            log.warning(
                "stream tickets: Redis failed (%s: %s); answering 503 until it answers",
                type(exc).__name__,
                exc,
            )
        return Unavailable(UNAVAILABLE)

    def _answered(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("stream tickets: Redis answers again")

    async def issue(self, principal: Principal) -> str:
        ticket = "gwt_" + secrets.token_urlsafe(24)
        raw = _dump(principal)
        if self.redis is not None:
            try:
                await self.redis.set(PREFIX + ticket, raw, ex=TTL_SECONDS)
            except (RedisError, OSError) as exc:
                raise self._unavailable(exc) from None
            self._answered()
        else:
            now = time.monotonic()
            for key in [k for k, (_, exp) in self._memory.items() if exp < now]:
                del self._memory[key]
            self._memory[ticket] = (raw, now + TTL_SECONDS)
        return ticket

    async def redeem(self, ticket: str) -> Principal:
        """The Principal a ticket was issued to; ``InvalidToken`` if unknown, used or expired."""
        raw: bytes | str | None
        if self.redis is not None:
            try:
                raw = await self.redis.getdel(PREFIX + ticket)
            except (RedisError, OSError) as exc:
                raise self._unavailable(exc) from None
            self._answered()
        else:
            entry = self._memory.pop(ticket, None)
            raw = entry[0] if entry is not None and entry[1] >= time.monotonic() else None
        if raw is None:
            raise InvalidToken("the stream ticket is unknown, used or expired")
        return _load(raw)
