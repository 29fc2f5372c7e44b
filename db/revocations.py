"""Revoked credentials: the denylist's source of truth.

Every revocation, whichever door it came through (``/oauth/revoke``, a reused
authorization code or refresh token, ``DELETE /api/v1/api-keys/{id}``), is a row
here, committed before the revocation is answered. Each worker keeps the
unexpired rows in memory (``gateway.auth.denylist``): it loads them when it
starts and reads what is new whenever it may have missed a notice. A row is kept
until the credential could no longer be accepted anyway, then pruned.

``credential_id`` is what a ``Principal`` carries: an access token's ``jti``, or
``key:<key_id>`` for an API key (``api_key_credential``). ``client:<client_id>``
(``client_credential``) denies every access token issued to a deleted client.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from db.models import Revocation

# A revoked API key is refused by the database itself (``api_keys.revoked_at``); the
# row only has to reach every worker's memory, to close the key's open sockets and
# end the short cache of verified keys. A worker that could not read the database
# for longer than this misses it (and still refuses the key on its next lookup).
API_KEY_KEPT_SECONDS = 86_400.0
CREDENTIAL_MAX_LENGTH = 255
# Verification accepts an access token up to 30 s (``gateway.auth.tokens.LEEWAY``, clock
# skew) past its ``exp``: a revocation is kept longer than that, or the token would be
# accepted again.
KEPT_PAST_EXPIRY = 60.0


class Notices(Protocol):
    """Where news of a committed revocation goes: a worker's denylist (it applies the
    revocation there and tells every other worker through Redis), or the ``gateway``
    command's publisher. Every ``db/`` function that revokes takes one and calls it once
    its transaction has committed, so no door can revoke without telling the running
    workers (they would otherwise learn it from the database only, up to 30 s later)."""

    def announce(self, credential_id: str, expires_at: float) -> None: ...


def api_key_credential(key_id: str) -> str:
    """The ``credential_id`` of the API key ``key_id``."""
    return f"key:{key_id}"


def client_credential(client_id: str) -> str:
    """What denies every access token issued to the OAuth client ``client_id`` (their
    ``client_id`` claim), whichever grant issued it."""
    return f"client:{client_id}"


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def record_revocation(credential_id: str, expires_at: float) -> None:
    """Deny ``credential_id`` until ``expires_at`` (epoch seconds) on every worker.

    Joins the caller's transaction, if any. Recording a revocation that is already
    recorded for as long (or longer) adds nothing.
    """
    if not credential_id or len(credential_id) > CREDENTIAL_MAX_LENGTH:
        raise ValueError(f"a credential id is 1 to {CREDENTIAL_MAX_LENGTH} characters")
    until = _at(expires_at)
    if await Revocation.filter(credential_id=credential_id, expires_at__gte=until).exists():
        return
    await Revocation.create(credential_id=credential_id, expires_at=until)


async def revocations_since(since: float | None, *, now: float) -> list[tuple[str, float]]:
    """``(credential_id, expires_at)`` of every revocation recorded at or after ``since``
    (all of them when None) that has not expired at ``now``, oldest first."""
    query = Revocation.filter(expires_at__gt=_at(now))
    if since is not None:
        query = query.filter(revoked_at__gte=_at(since))
    rows = await query.order_by("id").values_list("credential_id", "expires_at")
    return [(str(credential), expires.timestamp()) for credential, expires in rows]


async def prune_revocations(*, now: float) -> int:
    """Forget revocations that expired before ``now``; how many were removed."""
    removed: int = await Revocation.filter(expires_at__lte=_at(now)).delete()
    return removed
