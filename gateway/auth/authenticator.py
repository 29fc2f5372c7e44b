"""Turning a request's credentials into a ``Principal``: one path for every door.

- ``Authorization: Bearer <jwt>``: an access token of ours or of a configured
  external issuer (``gateway.auth.tokens``);
- ``X-API-Key: gwk_...``: an API key (``db.api_keys``).

Anything else is a 401. GraphQL, WebSocket and SSE call the same
``authenticate`` (or ``from_message`` when the credential arrives in a socket's
message rather than a header: ``gateway.auth.credentials``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from db.api_keys import authenticate_api_key
from db.errors import InvalidToken, Unauthenticated
from db.principal import Principal
from gateway.auth.credentials import message_credentials
from gateway.auth.denylist import Denylist
from gateway.auth.keys import RELOAD_SECONDS
from gateway.auth.tokens import TokenService

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sanic import Request

    from gateway.settings import Settings

log = logging.getLogger("gateway.auth")

API_KEY_CACHE_SECONDS = 30.0


class Authenticator:
    """Resolves credentials to principals; one per worker, held in the app context."""

    def __init__(self, settings: Settings) -> None:
        self.denylist = Denylist()
        self.tokens = TokenService(settings, self.denylist)
        self._api_keys: dict[str, tuple[Principal, float]] = {}
        self._reloader: asyncio.Task[None] | None = None

    async def start(self, redis: Redis | None) -> None:
        await self.denylist.start(redis)
        await self.tokens.keys.load()
        self._reloader = asyncio.create_task(self._reload_keys(), name="signing-key-reload")

    async def stop(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
        await self.denylist.stop()

    async def _reload_keys(self) -> None:
        """Pick up keys rotated by another process (``gateway rotate-signing-key``)."""
        while True:
            await asyncio.sleep(RELOAD_SECONDS)
            try:
                await self.tokens.keys.load(create=False)
            except Exception:  # the database may be briefly away; keep the keys we have
                log.warning("could not reload the signing keys", exc_info=True)

    async def authenticate(self, request: Request) -> Principal:
        headers = request.headers
        return await self.from_credentials(headers.get("authorization"), headers.get("x-api-key"))

    async def from_message(self, message: Mapping[str, object]) -> Principal:
        """A socket's credentials sent in a message (``gateway.auth.credentials``)."""
        return await self.from_credentials(*message_credentials(message))

    async def from_credentials(self, authorization: str | None, api_key: str | None) -> Principal:
        if api_key:
            return await self.api_key_principal(api_key.strip())
        if not authorization:
            raise Unauthenticated("send Authorization: Bearer <token> or X-API-Key: <key>")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        return await self.tokens.principal(token)

    async def api_key_principal(self, key: str) -> Principal:
        cached = self._api_keys.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[1] < API_KEY_CACHE_SECONDS:
            principal = cached[0]
        else:
            try:
                principal, _ = await authenticate_api_key(key)
            except InvalidToken:
                log.warning("rejected API key", extra={"reason": "unknown, revoked or expired"})
                raise
            self._api_keys[key] = (principal, now)
            if len(self._api_keys) > 10_000:
                self._api_keys.clear()
        revoked = principal.credential_id is not None and principal.credential_id in self.denylist
        if revoked or (principal.expires_at is not None and principal.expires_at <= time.time()):
            self._api_keys.pop(key, None)
            log.warning("rejected API key", extra={"reason": "revoked or expired"})
            raise InvalidToken("the API key is revoked or expired")
        return principal
