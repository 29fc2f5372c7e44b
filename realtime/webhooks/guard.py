"""Outgoing webhook calls, guarded: where they may go, how long, how much.

A receiver's URL is chosen by a tenant, so a call to it must not reach what only
the gateway's network can (a metadata service, a database, the gateway itself).
The check runs where the connection is made: httpcore's network backend
(``GuardedBackend``) resolves the host, refuses the connection when any of its
addresses is loopback, private, link-local, multicast, reserved or unspecified
(unless private targets are allowed), and connects to the very address it checked,
so a DNS answer that changes between the check and the connection (rebinding)
changes nothing. TLS still verifies the certificate for the URL's host name.

Redirects are not followed (a 3xx is a failed attempt: a redirect to another host
would skip the check's intent); proxies from the environment are ignored; each
attempt has a connect timeout and an overall one; at most ``max_bytes`` of the
answer are read (the delivery log keeps an excerpt).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import anyio
import httpcore
import httpx


def _user_agent() -> str:
    try:
        return f"commerce-gateway-webhooks/{version('commerce-gateway')}"
    except PackageNotFoundError:
        return "commerce-gateway-webhooks"


USER_AGENT = _user_agent()
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(httpcore.ConnectError):
    """The target's address is one webhooks may not reach."""


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits


def address_allowed(address: IPAddress, *, allow_private: bool) -> bool:
    """Whether a webhook may connect to ``address``."""
    if allow_private:
        return not address.is_unspecified and not address.is_multicast
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that one: it must pass too.
        embedded = [address.ipv4_mapped, address.sixtofour]
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
        if any(
            inner is not None and not address_allowed(inner, allow_private=False)
            for inner in embedded
        ):
            return False
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_link_local
    )


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` (an IP literal is its own address)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


async def checked_addresses(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """``host``'s addresses if every one may be reached, else ``TargetRefused``."""
    try:
        addresses = await resolve(host, port)
    except OSError as error:
        raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
    if not addresses:
        raise httpcore.ConnectError(f"{host} has no address")
    refused = [a for a in addresses if not address_allowed(a, allow_private=allow_private)]
    if refused:
        raise TargetRefused(
            f"{host} resolves to {refused[0]}, a loopback, private or reserved address;"
            " webhooks may not be sent there (WEBHOOK_ALLOW_PRIVATE_TARGETS)"
        )
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to checked addresses."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await checked_addresses(host, port, allow_private=self.allow_private)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from error
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("webhooks are not sent to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a ``GuardedBackend`` (httpx does not pass a backend on)."""

    def __init__(self, *, allow_private: bool) -> None:
        super().__init__(trust_env=False, limits=httpx.Limits(max_connections=2))
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=2,
            max_keepalive_connections=1,
            keepalive_expiry=30.0,
            network_backend=GuardedBackend(allow_private=allow_private),
        )


def guarded_client(
    *, allow_private: bool, connect_timeout: float, timeout: float
) -> httpx.AsyncClient:
    """A client for one receiver: no redirects, no proxies, bounded in time."""
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private=allow_private),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        headers={"user-agent": USER_AGENT},
    )


@dataclass(frozen=True, slots=True)
class Reply:
    """What one attempt came to."""

    outcome: str  # "delivered" | "failed" | "timeout" | "refused" | "error"
    status: int | None
    latency_ms: int
    excerpt: str
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    within: float,
    max_bytes: int,
    excerpt_bytes: int = 1024,
) -> Reply:
    """POST ``body`` and classify the answer; never raises for the receiver's behaviour."""
    started = time.monotonic()

    def reply(outcome: str, status: int | None, excerpt: bytes, error: str | None) -> Reply:
        latency = int((time.monotonic() - started) * 1000)
        text = excerpt[:excerpt_bytes].decode("utf-8", errors="replace")
        return Reply(outcome, status, latency, text, error[:500] if error else None)

    status: int | None = None
    received = bytearray()
    try:
        async with asyncio.timeout(within):
            request = client.build_request(
                "POST", url, content=body, headers={"content-type": "application/json", **headers}
            )
            response = await client.send(request, stream=True)
            try:
                status = response.status_code
                async for chunk in response.aiter_raw():
                    received += chunk[: max_bytes - len(received)]
                    if len(received) >= max_bytes:
                        break
            finally:
                await response.aclose()
    except TimeoutError:
        return reply("timeout", status, bytes(received), f"no complete answer within {within} s")
    except httpx.TimeoutException as error:
        return reply("timeout", status, bytes(received), f"{type(error).__name__}: {error}")
    except httpx.HTTPError as error:
        if isinstance(error.__cause__, TargetRefused):
            return reply("refused", None, b"", str(error.__cause__))
        return reply("error", status, bytes(received), f"{type(error).__name__}: {error}")
    except Exception as error:
        # Whatever the URL or the receiver does, it is this attempt's outcome: an
        # exception here would end the endpoint's worker before the attempt is logged,
        # at every try, so the endpoint would neither move on nor ever be disabled.
        return reply("error", status, bytes(received), f"{type(error).__name__}: {error}")
    assert status is not None
    if 200 <= status < 300:
        return reply("delivered", status, bytes(received), None)
    why = "redirects are not followed" if 300 <= status < 400 else f"HTTP {status}"
    return reply("failed", status, bytes(received), why)
