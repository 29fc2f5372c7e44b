"""The change stream over Server-Sent Events, resumed after every drop.

``for event in client.stream_events(["orders"])`` yields each committed change once,
in position order. The iterator keeps the position of the last event (and, before
the first, the position the gateway said the stream starts after) and reconnects
with ``after=<position>`` whenever the connection drops, the gateway restarts or
ends the stream for a reason a reconnect fixes (shutdown, slow consumer, expired
token: it gets a new one). A position the gateway no longer keeps raises
``ResyncRequired``: reload what you mirror, then stream again without ``after``.

The parsing and the decisions live in ``StreamState``; ``EventStream`` and
``AsyncEventStream`` only read lines.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from gateway_client._base import ApiModel
from gateway_client._core import Call, Config, Plan
from gateway_client.errors import ResyncRequired, StreamEnded, Unauthenticated
from gateway_client.filters import Filter

if TYPE_CHECKING:
    from collections.abc import Awaitable

# Close codes (README "Close codes"): which end the stream for good.
RESYNC_REQUIRED = 4410
TOKEN_EXPIRED = 4401
TOKEN_REVOKED = 4403


class ChangeEvent(ApiModel):
    """One committed change: ``data`` is the resource after it."""

    position: int
    type: str
    resource: str
    resource_id: str
    organization_id: int | None = None
    actor: str | None = None
    occurred_at: datetime
    data: dict[str, Any]


class _Reconnect:
    """The stream ended in a way a reconnect fixes."""


RECONNECT = _Reconnect()


class StreamState:
    """Where the stream is, and what each line of it means."""

    def __init__(
        self,
        config: Config,
        topics: Sequence[str],
        filters: Mapping[str, str | Filter] | str | Filter | None,
        after: int | None,
    ) -> None:
        if not topics:
            raise ValueError("stream_events: name at least one topic")
        self.config = config
        self.topics = list(topics)
        self.filters = filters
        self.position = after
        self._fields: dict[str, str] = {}
        self._data: list[str] = []

    def call(self) -> Call[httpx.Response]:
        params: dict[str, str | int | bool | None] = {"topics": ",".join(self.topics)}
        if isinstance(self.filters, Mapping):
            params.update({f"filter.{topic}": str(f) for topic, f in self.filters.items()})
        elif self.filters is not None:
            params["filter"] = str(self.filters)
        if self.position is not None:
            params["after"] = self.position
        headers = {"Accept": "text/event-stream"}
        plan = Plan("GET", "/events", params=params, headers=headers, retry_safe=True, stream=True)
        self._fields, self._data = {}, []
        return Call(plan, lambda response, meta: response)

    def feed(self, line: str) -> ChangeEvent | _Reconnect | None:
        """One line of the stream: an event when a frame completes, RECONNECT when the
        gateway ended the stream; raises when it ended it for good."""
        if line.startswith(":"):
            comment = line[1:].strip()
            if comment.startswith("position ") and self.position is None:
                self.position = int(comment.removeprefix("position "))
            return None
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
            else:
                self._fields[name] = value
            return None
        fields, data = self._fields, "\n".join(self._data)
        self._fields, self._data = {}, []
        if not data:
            return None
        if fields.get("event") == "close":
            return self._closed(json.loads(data))
        event = ChangeEvent.model_validate_json(data)
        if self.position is not None and event.position <= self.position:
            return None  # already delivered before a reconnect
        self.position = event.position
        return event

    def _closed(self, body: Mapping[str, Any]) -> _Reconnect:
        code, reason = int(body.get("code", 0)), str(body.get("reason", ""))
        if code == RESYNC_REQUIRED:
            raise ResyncRequired(410, "RESYNC_REQUIRED", reason)
        if code == TOKEN_REVOKED:
            raise Unauthenticated(401, "TOKEN_REVOKED", reason)
        if code == TOKEN_EXPIRED:
            if not self.config.auth.invalidate():
                raise Unauthenticated(401, "TOKEN_EXPIRED", reason)
            return RECONNECT  # with a fresh token
        if code >= 4000:
            raise StreamEnded(code, reason)
        return RECONNECT  # shutting down, slow consumer, unavailable, rate limited


class EventStream:
    """Blocking iterator over change events (``Client.stream_events``)."""

    def __init__(
        self,
        state: StreamState,
        open_stream: Callable[[Call[httpx.Response]], httpx.Response],
        pause: Callable[[int], None],
    ) -> None:
        self.state, self._open, self._pause = state, open_stream, pause
        self._response: httpx.Response | None = None

    @property
    def position(self) -> int | None:
        """The position of the last event delivered: pass it as ``after`` to resume."""
        return self.state.position

    def __iter__(self) -> Iterator[ChangeEvent]:
        drops = 0
        while True:
            self._response = response = self._open(self.state.call())
            try:
                for line in response.iter_lines():
                    out = self.state.feed(line)
                    if isinstance(out, _Reconnect):
                        break
                    if out is not None:
                        drops = 0
                        yield out
            except httpx.TransportError:
                pass  # dropped: resume below
            finally:
                response.close()
                self._response = None
            self._pause(drops)
            drops += 1

    def close(self) -> None:
        if self._response is not None:
            self._response.close()


class AsyncEventStream:
    """``async for`` over change events (``AsyncClient.stream_events``)."""

    def __init__(
        self,
        state: StreamState,
        open_stream: Callable[[Call[httpx.Response]], Awaitable[httpx.Response]],
        pause: Callable[[int], Awaitable[None]],
    ) -> None:
        self.state, self._open, self._pause = state, open_stream, pause
        self._response: httpx.Response | None = None

    @property
    def position(self) -> int | None:
        return self.state.position

    async def __aiter__(self) -> AsyncIterator[ChangeEvent]:
        drops = 0
        while True:
            self._response = response = await self._open(self.state.call())
            try:
                async for line in response.aiter_lines():
                    out = self.state.feed(line)
                    if isinstance(out, _Reconnect):
                        break
                    if out is not None:
                        drops = 0
                        yield out
            except httpx.TransportError:
                pass
            finally:
                await response.aclose()
                self._response = None
            await self._pause(drops)
            drops += 1

    async def aclose(self) -> None:
        if self._response is not None:
            await self._response.aclose()
