"""Tokens from other OAuth2/OIDC providers, verified against their published JWKS.

Each issuer's key set is fetched with an async HTTP client (never blocking the
loop), cached, and fetched again when a token names a ``kid`` it does not hold
(at most every ``REFETCH_SECONDS``, so a flood of bad kids cannot hammer the
provider).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt

from gateway.settings import ExternalIssuer
from gateway.spans import outgoing_transport

log = logging.getLogger("gateway.auth")

REFETCH_SECONDS = 30.0


class ExternalKeys:
    def __init__(self, config: ExternalIssuer) -> None:
        self.config = config
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _fetch(self) -> None:
        async with httpx.AsyncClient(timeout=5.0, transport=outgoing_transport()) as client:
            response = await client.get(self.config.jwks_uri)
            response.raise_for_status()
            document: Any = response.json()
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("the response is not a JWK set")
        keys: dict[str, jwt.PyJWK] = {}
        for data in entries:
            kid = data.get("kid")
            if not kid or not isinstance(kid, str) or data.get("use", "sig") != "sig":
                continue
            try:
                keys[kid] = jwt.PyJWK(data)
            except jwt.PyJWTError:  # PyJWKError, and InvalidKeyError for malformed members
                log.warning("skipped an unusable JWKS key", extra={"kid": kid})
        self._keys = keys

    async def key(self, kid: str) -> jwt.PyJWK | None:
        found = self._keys.get(kid)
        if found is not None:
            return found
        async with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at > REFETCH_SECONDS:
                self._fetched_at = time.monotonic()
                try:
                    await self._fetch()
                except (httpx.HTTPError, ValueError):
                    log.warning(
                        "could not fetch an issuer's JWKS",
                        extra={"issuer": self.config.issuer},
                        exc_info=True,
                    )
            return self._keys.get(kid)
