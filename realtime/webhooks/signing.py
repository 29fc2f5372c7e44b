"""Standard Webhooks signatures (https://www.standardwebhooks.com).

A delivery carries ``webhook-id`` (the event's stream position, so a receiver can
drop a repeat), ``webhook-timestamp`` (unix seconds when this attempt was signed)
and ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of ``"{id}.{timestamp}.{body}"``
keyed with the secret's bytes, one per secret that is valid now, space-separated.
While a rotated-out secret is in its overlap window both are sent, so receivers
that still hold the old one keep verifying.

Secrets have the specification's form: ``whsec_`` + base64 of the key bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


def secret_key(secret: str) -> bytes:
    """The key bytes of a ``whsec_...`` secret."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,...`` signature of ``body`` under ``secret``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    signatures = [signature(secret, msg_id, timestamp, body) for secret in secrets]
    if not signatures:
        raise ValueError("a delivery needs at least one secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
