"""What the OAuth2 server stores: authorization codes and refresh tokens.

Only digests are stored (``accounts.secret_digest``), never a code or token. The
authorization server (``gateway.auth.server``) decides what to issue and what to deny;
these functions read and write the rows, each claim in one conditional ``UPDATE`` so
that of two concurrent uses exactly one wins.

What a code's redemption issues is named after the code, so that a reuse can revoke it
without a record of it, even before the redemption has finished: its refresh tokens
share the family ``code_family(code_hash)``, its access token has the ``jti``
``code_access_jti(code_hash)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from db.accounts import secret_digest
from db.models import AuthorizationCode, RefreshToken, User

CODE_TTL_SECONDS = 300


def code_family(code_hash: str) -> str:
    """The refresh-token family of the tokens a code's redemption issues."""
    return code_hash[:32]


def code_access_jti(code_hash: str) -> str:
    """The ``jti`` of the access token a code's redemption issues: known before the
    token exists, so a reuse can deny it whether or not the redemption has finished.
    (One-way from the stored hash: the jti, which its holder can read, tells nothing
    about the code.)"""
    return secret_digest(f"access-token:{code_hash}")[:32]


async def active_user(user_id: int) -> User | None:
    return await User.get_or_none(id=user_id, disabled=False)


# --- authorization codes ------------------------------------------------------------


async def save_code(
    code: str,
    *,
    client_id: str,
    user_id: int,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
) -> None:
    """Keep a code (S256 PKCE) for ``CODE_TTL_SECONDS``."""
    await AuthorizationCode.create(
        code_hash=secret_digest(code),
        client_id=client_id,
        user_id=user_id,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge=code_challenge,
        code_challenge_method="S256",
        expires_at=datetime.now(UTC) + timedelta(seconds=CODE_TTL_SECONDS),
    )


@dataclass(frozen=True, slots=True)
class CodeClaim:
    """A claim of a code: ``won`` for its one redemption, or ``reused``, the code a
    second presentation by its own client found used (what it issued must be revoked).
    Both None: no such code for that client, or it expired unused."""

    won: AuthorizationCode | None = None
    reused: AuthorizationCode | None = None


async def claim_code(code: str, client_id: str) -> CodeClaim:
    """Claim ``code`` for its one redemption by ``client_id`` (of two concurrent, one wins)."""
    code_hash = secret_digest(code)
    row = await AuthorizationCode.get_or_none(code_hash=code_hash, client_id=client_id)
    if row is None:
        return CodeClaim()
    # The row is read before the claim: a concurrent reuse deletes it (``forget_code``),
    # and the winner must still hold what it claimed.
    claimed = await AuthorizationCode.filter(
        id=row.id, used=False, expires_at__gt=datetime.now(UTC)
    ).update(used=True)
    if claimed:
        row.used = True
        return CodeClaim(won=row)
    used = await AuthorizationCode.get_or_none(code_hash=code_hash, client_id=client_id, used=True)
    return CodeClaim(reused=used)


async def forget_code(code: AuthorizationCode) -> None:
    """Delete a code: the mark a redemption still saving its refresh token looks for."""
    await AuthorizationCode.filter(id=code.id).delete()


async def code_forgotten(code: AuthorizationCode) -> bool:
    return not await AuthorizationCode.filter(id=code.id).exists()


# --- refresh tokens -----------------------------------------------------------------


async def save_refresh_token(
    token: str,
    *,
    family: str,
    client_id: str,
    user_id: int,
    organization_id: int,
    scope: str,
    access_jti: str,
    access_expires_at: datetime,
    ttl_seconds: int,
) -> None:
    await RefreshToken.create(
        token_hash=secret_digest(token),
        family=family,
        client_id=client_id,
        user_id=user_id,
        organization_id=organization_id,
        scope=scope,
        access_jti=access_jti,
        access_expires_at=access_expires_at,
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
    )


async def find_refresh_token(token: str) -> RefreshToken | None:
    return await RefreshToken.get_or_none(token_hash=secret_digest(token))


class Use(Enum):
    ROTATED = "rotated"  # claimed for this one rotation
    REFUSED = "refused"  # unknown, revoked, expired or another client's: nothing changed
    WIDER_SCOPE = "wider_scope"  # asks for more than it holds: nothing changed
    REUSED = "reused"  # used before: its family must be revoked


async def use_refresh_token(
    token: str, client_id: str, scope: list[str]
) -> tuple[Use, RefreshToken | None]:
    """Claim a refresh token for one rotation.

    A request for a current token that will be refused anyway (another client's, or a
    wider scope) is refused before the claim: it must not use the token up, nor make
    the owner's next use look like a reuse.
    """
    now = datetime.now(UTC)
    row = await find_refresh_token(token)
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return Use.REFUSED, None
    if row.rotated_at is None:
        if row.client_id != client_id:
            return Use.REFUSED, None
        if not set(scope) <= set(row.scope.split()):
            return Use.WIDER_SCOPE, None
    claimed = await RefreshToken.filter(id=row.id, rotated_at=None).update(rotated_at=now)
    return (Use.ROTATED if claimed else Use.REUSED), row


async def revoke_family(family: str, *, leeway: float) -> list[tuple[str, float]]:
    """Revoke every refresh token of ``family``; the ``(jti, exp)`` of the access tokens
    they issued that may still be accepted (up to ``leeway`` seconds past expiry), for
    the caller to deny."""
    now = datetime.now(UTC)
    rows = await RefreshToken.filter(family=family)
    await RefreshToken.filter(family=family, revoked_at=None).update(revoked_at=now)
    return [
        (row.access_jti, row.access_expires_at.timestamp())
        for row in rows
        if row.access_expires_at > now - timedelta(seconds=leeway)
    ]
