"""Token signing keys: generated, stored and rotated in the database.

Every worker and host reads the same keys, so a token signed by one verifies on
all. The newest unretired key signs. ``rotate`` adds a key and retires the rest;
a retired key stays in the JWKS (and keeps verifying) until every token it
signed has expired.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from db.audit import CLI, SYSTEM, record_audit
from db.models import SigningKey

RELOAD_SECONDS = 60.0


def generate_private_pem(algorithm: str) -> str:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if algorithm == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass(frozen=True, slots=True)
class Key:
    kid: str
    algorithm: str
    private: PrivateKeyTypes
    retired_at: datetime | None

    @property
    def public(self) -> Any:
        return self.private.public_key()

    def jwk(self) -> dict[str, Any]:
        if self.algorithm == "ES256":
            data = jwt.algorithms.ECAlgorithm.to_jwk(self.public, as_dict=True)
        else:
            data = jwt.algorithms.RSAAlgorithm.to_jwk(self.public, as_dict=True)
        return {**data, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def _load(row: SigningKey) -> Key:
    private = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    return Key(kid=row.kid, algorithm=row.algorithm, private=private, retired_at=row.retired_at)


async def create_key(algorithm: str, *, actor: str = SYSTEM, rotate: bool = False) -> SigningKey:
    """Add a signing key; with ``rotate``, retire the others in the same transaction.

    Installation-wide, so audited without an organization (``signing_key.created``,
    ``signing_key.rotated``): operators read those entries, no organization's owner does.
    """
    pem = await asyncio.to_thread(generate_private_pem, algorithm)
    kid = f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
    async with in_transaction():
        key = await SigningKey.create(kid=kid, algorithm=algorithm, private_pem=pem)
        retired: list[str] = []
        if rotate:
            older = SigningKey.filter(retired_at=None).exclude(id=key.id)
            retired = [str(k) for k in await older.values_list("kid", flat=True)]
            await older.update(retired_at=datetime.now(UTC))
        await record_audit(
            "signing_key.rotated" if rotate else "signing_key.created",
            actor=actor,
            organization_id=None,
            target_type="signing_key",
            target_id=kid,
            details={"algorithm": algorithm, "retired": retired},
        )
    return key


async def rotate(algorithm: str, *, actor: str = CLI) -> SigningKey:
    """Add a signing key and retire the others (they stay published until expiry)."""
    return await create_key(algorithm, actor=actor, rotate=True)


class KeyRing:
    """This worker's view of the signing keys, reloaded every minute (by the
    authenticator) or on an unknown kid."""

    def __init__(self, algorithm: str, access_ttl: int) -> None:
        self.algorithm = algorithm
        self._publish_for = timedelta(seconds=access_ttl + 300)
        self._keys: dict[str, Key] = {}
        self._jwks: dict[str, Any] = {"keys": []}
        self._signing: Key | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def _published(self) -> list[SigningKey]:
        """Active keys (newest first), then retired ones whose tokens may still live."""
        cutoff = datetime.now(UTC) - self._publish_for
        return await SigningKey.filter(Q(retired_at=None) | Q(retired_at__gt=cutoff)).order_by(
            "-id"
        )

    async def load(self, *, create: bool = True) -> None:
        async with self._lock:
            rows = await self._published()
            if create and all(row.retired_at is not None for row in rows):
                await create_key(self.algorithm)
                rows = await self._published()
            keys = [_load(row) for row in rows]
            self._keys = {key.kid: key for key in keys}
            self._jwks = {"keys": [key.jwk() for key in keys]}
            self._signing = next((key for key in keys if key.retired_at is None), None)
            self._loaded_at = time.monotonic()

    @property
    def signing_key(self) -> Key:
        if self._signing is None:
            raise RuntimeError("no signing key loaded")
        return self._signing

    async def find(self, kid: str) -> Key | None:
        """The key ``kid``, reloading once (at most every few seconds) when unknown."""
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._loaded_at > 5.0:
            await self.load(create=False)
            key = self._keys.get(kid)
        return key

    def jwks(self) -> dict[str, Any]:
        return self._jwks
