"""Credentials sent in a message rather than in headers: one grammar for every socket.

Browsers cannot set headers on a WebSocket, so a socket authenticates in a message:
the ``connection_init`` payload on ``/graphql`` and the ``auth`` message on
``/api/v1/realtime``. Both are read here, the same way. Keys are case-insensitive:

- ``"Authorization": "Bearer <token>"``, as the header would be;
- ``"token": "<token>"``, the access token alone;
- ``"X-API-Key"`` (also ``"api_key"``, ``"apikey"``): an API key.

An API key wins over a token (as with headers). A credential that is not a string is
``InvalidArgument``; no credential at all is ``Unauthenticated``. Other keys (the
message's ``type``, a client's own extras) are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

from db.errors import InvalidArgument, Unauthenticated

_AUTHORIZATION = ("authorization",)
_TOKEN = ("token",)
_API_KEY = ("x-api-key", "api_key", "apikey")
# Reading stops here: a message with more keys than this is read in part only.
_MAX_KEYS = 64


def message_credentials(message: Mapping[str, object]) -> tuple[str | None, str | None]:
    """``(authorization, api_key)`` from ``message``, for ``Authenticator.from_credentials``."""
    found: dict[str, object] = {}
    for number, (key, value) in enumerate(message.items()):
        if number >= _MAX_KEYS:
            break
        found.setdefault(key.lower(), value)
    authorization = _one(found, _AUTHORIZATION)
    token = _one(found, _TOKEN)
    api_key = _one(found, _API_KEY)
    if authorization is None and token:
        authorization = f"Bearer {token}"
    if not authorization and not api_key:
        raise Unauthenticated(
            'send "token": "<access token>", "Authorization": "Bearer <access token>" '
            'or "X-API-Key": "<key>"'
        )
    return authorization or None, api_key or None


def _one(found: Mapping[str, object], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = found.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidArgument(f"{name} must be a string")
        return value
    return None
