"""``Client`` (blocking) and ``AsyncClient``: the same calls, the same behaviour.

Both hold a ``_core.Config`` and an httpx client, and run every call's flow with
their driver (``_drivers``). The resources (``client.orders``, ...) are generated
(``resources.py``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Self, TypeVar

import httpx

from gateway_client._core import AuthFlow, Call, Config, RetryInfo, RetryPolicy, run
from gateway_client._drivers import adrive, drive
from gateway_client.auth import ApiKey, BearerToken, ClientCredentials
from gateway_client.filters import Filter
from gateway_client.realtime import AsyncEventStream, EventStream, StreamState
from gateway_client.resources import AsyncApi, SyncApi

T = TypeVar("T")
VERSION = "0.1.0"

# Connect fast, give a slow list half a minute, never wait long for a pooled connection.
# A stream's reads only need to outlast the gateway's heartbeat (15 s by default).
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
# The most one call may take, all its attempts and waits together (a change stream has
# no such bound); None for none.
DEFAULT_DEADLINE = 60.0
# Keep-alive connections expire before the gateway's own idle timeout (5 s by default),
# so a request is not sent on a connection the gateway is closing.
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0
)
Filters = Mapping[str, str | Filter] | str | Filter | None
TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]]


def _config(
    base_url: str,
    *,
    api_key: str | None,
    token: TokenSource | None,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
    auth: AuthFlow | None,
    retry: RetryPolicy | None,
    on_retry: Callable[[RetryInfo], None] | None,
    timeout: httpx.Timeout | float,
    deadline: float | None,
) -> Config:
    given = [x for x in (api_key, token, client_id, auth) if x is not None]
    if len(given) > 1:
        raise ValueError("give one of api_key, token, client_id/client_secret or auth")
    flow: AuthFlow
    if auth is not None:
        flow = auth
    elif api_key is not None:
        flow = ApiKey(api_key)
    elif token is not None:
        flow = BearerToken(token)
    elif client_id is not None:
        if client_secret is None:
            raise ValueError("client_id needs client_secret")
        flow = ClientCredentials(client_id, client_secret, scope=scope)
    else:
        raise ValueError("credentials needed: api_key, token, client_id/client_secret or auth")
    return Config(
        base_url=base_url,
        auth=flow,
        retry=retry or RetryPolicy(),
        user_agent=f"commerce-gateway-client/{VERSION} httpx/{httpx.__version__}",
        on_retry=on_retry,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        deadline=deadline,
    )


class Client(SyncApi):
    """A blocking client. ``base_url`` is the gateway's root (``http://host:8000``).

    Credentials: ``api_key=``, ``token=`` (a string or a callable returning one),
    ``client_id=`` + ``client_secret=`` (OAuth2 client credentials, renewed by
    itself), or ``auth=`` (any ``AuthFlow``). ``retry`` sets the backoff,
    ``on_retry`` is told about each retry. Pass ``http_client`` to bring your own
    httpx client (proxies, certificates); it is then yours to close.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | Callable[[], str] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
        auth: AuthFlow | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        deadline: float | None = DEFAULT_DEADLINE,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[RetryInfo], None] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.config = _config(
            base_url,
            api_key=api_key,
            token=token,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            auth=auth,
            retry=retry,
            on_retry=on_retry,
            timeout=timeout,
            deadline=deadline,
        )
        self._owns_http = http_client is None
        self.http = http_client or httpx.Client(timeout=timeout, limits=DEFAULT_LIMITS)
        self._credentials_lock = threading.Lock()
        self._attach(self)

    def _run(self, call: Call[T]) -> T:
        return drive(run(self.config, call), self.http, self._credentials_lock)

    def stream_events(
        self, topics: Sequence[str], *, filter: Filters = None, after: int | None = None
    ) -> EventStream:
        """Change events of ``topics`` (``orders``, ...), after position ``after``, for
        as long as you iterate; ``filter`` is one filter, or one per topic."""
        policy = self.config.retry

        def pause(drops: int) -> None:
            time.sleep(policy.backoff(drops) if drops else 0)

        state = StreamState(self.config, topics, filter, after)
        return EventStream(state, self._run, pause)

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(AsyncApi):
    """The ``asyncio`` client: ``Client``'s calls, awaited. ``token=`` may also be a
    coroutine function."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: TokenSource | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
        auth: AuthFlow | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        deadline: float | None = DEFAULT_DEADLINE,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[RetryInfo], None] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = _config(
            base_url,
            api_key=api_key,
            token=token,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            auth=auth,
            retry=retry,
            on_retry=on_retry,
            timeout=timeout,
            deadline=deadline,
        )
        self._owns_http = http_client is None
        self.http = http_client or httpx.AsyncClient(timeout=timeout, limits=DEFAULT_LIMITS)
        self._credentials_lock = asyncio.Lock()
        self._attach(self)

    async def _run(self, call: Call[T]) -> T:
        return await adrive(run(self.config, call), self.http, self._credentials_lock)

    def stream_events(
        self, topics: Sequence[str], *, filter: Filters = None, after: int | None = None
    ) -> AsyncEventStream:
        """``async for`` change events: see ``Client.stream_events``."""
        policy = self.config.retry

        async def pause(drops: int) -> None:
            await asyncio.sleep(policy.backoff(drops) if drops else 0)

        state = StreamState(self.config, topics, filter, after)
        return AsyncEventStream(state, self._run, pause)

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
