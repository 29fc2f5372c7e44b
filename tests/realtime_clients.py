"""Clients for the real-time channels, as a dashboard would use them.

``websockets`` (the JSON WebSocket channel) and ``httpx`` streaming (SSE, parsed
by the rules of the HTML EventSource specification).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection


def ws_url(base_url: str, path: str = "/api/v1/realtime") -> str:
    return base_url.replace("http://", "ws://") + path


@contextlib.asynccontextmanager
async def realtime(base_url: str, token: str | None) -> AsyncIterator[ClientConnection]:
    """A JSON channel connection, authenticated in band with ``token``."""
    async with websockets.connect(ws_url(base_url), open_timeout=10) as ws:
        if token is not None:
            await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
            ready = await frame(ws)
            assert ready["type"] == "authenticated", ready
        yield ws


async def frame(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    decoded: dict[str, Any] = orjson.loads(raw)
    return decoded


async def send(ws: ClientConnection, **message: Any) -> None:
    await ws.send(orjson.dumps(message).decode())


async def subscribe(
    ws: ClientConnection, ident: str, topics: list[str], **options: Any
) -> dict[str, Any]:
    await send(ws, type="subscribe", id=ident, topics=topics, **options)
    reply = await frame(ws)
    assert reply["type"] == "subscribed", reply
    return reply


async def events(ws: ClientConnection, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The next ``count`` change events (other frames are skipped)."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        message = await frame(ws, timeout)
        if message["type"] == "event":
            got.append(message["event"])
    return got


async def quiet(ws: ClientConnection, seconds: float = 0.5) -> list[dict[str, Any]]:
    """Frames that arrive within ``seconds`` (to show that nothing does)."""
    seen: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        while True:
            seen.append(await frame(ws, seconds))
    return seen


@dataclass
class SSE:
    response: httpx.Response
    lines: AsyncIterator[str]
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        """The next dispatched event: ``{"id", "event", "data"}`` (data JSON-decoded)."""
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> dict[str, Any]:
        event: dict[str, Any] = {"event": "message", "data": []}
        async for line in self.lines:
            if line == "":
                if event["data"]:
                    event["data"] = orjson.loads("\n".join(event["data"]))
                    return event
                event = {"event": "message", "data": []}
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                event["data"].append(value)
            elif name in ("id", "event"):
                event[name] = value
            elif name == "retry" and value.isdigit():
                self.retry = int(value)
        raise EOFError("the stream ended")

    async def events(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        got = []
        while len(got) < count:
            event = await self.next(timeout)
            if event["event"] != "close":
                got.append(event)
        return got


@contextlib.asynccontextmanager
async def sse(
    client: httpx.AsyncClient, params: dict[str, Any], headers: dict[str, str] | None = None
) -> AsyncIterator[SSE]:
    async with client.stream(
        "GET", "/api/v1/events", params=params, headers=headers, timeout=30
    ) as response:
        yield SSE(response, response.aiter_lines())
