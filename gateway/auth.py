"""Turning a request's credentials into a ``Principal``.

For now the only credential is the development token (``DEV_AUTH=true``):
``Authorization: Bearer dev.<organization-slug>.<role>``, which acts as the
subject ``dev-<role>`` with every scope of that role. It is off unless
explicitly enabled and refused in production. The OAuth2 issue replaces it
with real tokens and API keys behind the same ``authenticate`` call.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from db.errors import Unauthenticated
from db.organizations import find_organization_id
from db.principal import ROLE_SCOPES, Principal

if TYPE_CHECKING:
    from sanic import Request

    from gateway.settings import Settings

log = logging.getLogger("gateway.auth")


class Authenticator:
    """Resolves credentials to principals; one per worker, held in the app context."""

    def __init__(self, settings: Settings) -> None:
        self._dev = settings.dev_auth
        self._org_ids: dict[str, int] = {}

    async def authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        if not header:
            raise Unauthenticated("send Authorization: Bearer <token>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        if self._dev and token.startswith("dev."):
            return await self._dev_principal(token)
        log.info("rejected credential", extra={"reason": "unknown token"})
        raise Unauthenticated("the token is not valid")

    async def _dev_principal(self, token: str) -> Principal:
        parts = token.split(".")
        if len(parts) != 3 or parts[2] not in ROLE_SCOPES:
            raise Unauthenticated("development tokens look like dev.<organization-slug>.<role>")
        slug, role = parts[1], parts[2]
        org_id = self._org_ids.get(slug)
        if org_id is None:
            found = await find_organization_id(slug)
            if found is None:
                raise Unauthenticated(f"no organization {slug!r}")
            org_id = self._org_ids[slug] = found
        return Principal(
            subject=f"dev-{role}",
            organization_id=org_id,
            scopes=frozenset({"*"}),
            roles=frozenset({role}),
        )
