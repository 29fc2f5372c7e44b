"""Credentials: an API key, a token callable, or OAuth2 client credentials.

Each is an ``AuthFlow`` (``_core``): it yields the requests or calls getting its
headers takes, so the sync and async clients share it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable

import httpx

from gateway_client._core import (
    AuthFlow,
    Config,
    Flow,
    Invoke,
    raise_for_problem,
    send_with_retries,
)
from gateway_client.errors import Unauthenticated


class ApiKey(AuthFlow):
    """A service's API key (``gwk_...``), sent as ``X-API-Key``."""

    def __init__(self, key: str) -> None:
        self._key = key

    def headers(self, config: Config) -> Flow[dict[str, str]]:
        return {"X-API-Key": self._key}
        yield  # pragma: no cover


class BearerToken(AuthFlow):
    """A token you manage: a string, or a callable returning one (for an async client it
    may be a coroutine function). After a 401 the callable is asked once more."""

    def __init__(self, token: str | Callable[[], str] | Callable[[], Awaitable[str]]) -> None:
        self._source = token
        self._token: str | None = token if isinstance(token, str) else None

    def headers(self, config: Config) -> Flow[dict[str, str]]:
        if self._token is None and not isinstance(self._source, str):
            token = yield Invoke(self._source)
            if not isinstance(token, str) or not token:
                raise TypeError("the token callable must return a non-empty str")
            self._token = token
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> bool:
        if isinstance(self._source, str):
            return False
        self._token = None
        return True


class ClientCredentials(AuthFlow):
    """OAuth2 client credentials: a token from ``/oauth/token``, renewed before it
    expires (when less than a fifth of its life, at most ``refresh_margin`` seconds,
    is left) and once after a 401 (revoked, or the gateway's signing key rotated).

    ``clock`` (monotonic seconds) is there for tests.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        token_path: str = "/oauth/token",  # noqa: S107 (a path, not a password)
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id, self._secret, self.scope = client_id, client_secret, scope
        self.token_path = token_path
        self.refresh_margin = refresh_margin
        self.clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self.issued = 0  # tokens obtained so far

    def headers(self, config: Config) -> Flow[dict[str, str]]:
        if self._token is None or self.clock() >= self._renew_at:
            yield from self._fetch(config)
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> bool:
        self._token = None
        return True

    def _fetch(self, config: Config) -> Flow[None]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope

        basic = base64.b64encode(f"{self.client_id}:{self._secret}".encode()).decode()

        def build() -> httpx.Request:
            return httpx.Request(
                "POST",
                config.base_url.rstrip("/") + self.token_path,
                data=form,
                headers={
                    "User-Agent": config.user_agent,
                    "Accept": "application/json",
                    "Authorization": f"Basic {basic}",
                },
            )

        started = self.clock()
        response, _ = yield from send_with_retries(config, build, retry_safe=True)
        raise_for_problem(response)
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body["expires_in"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Unauthenticated(
                response.status_code, "BAD_TOKEN_RESPONSE", f"unreadable token response: {exc}"
            ) from exc
        self._token = token
        self._renew_at = started + lifetime - min(self.refresh_margin, lifetime / 5)
        self.issued += 1
