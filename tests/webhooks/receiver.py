"""A real webhook receiver on loopback, for the delivery tests.

A small HTTP/1.1 server (asyncio streams and h11, the protocol library under
httpcore), in the test process. Every request is verified with the Standard
Webhooks reference library from PyPI (``standardwebhooks.Webhook(secret).verify``)
against each secret the test names: during a rotation both must verify. A
request that fails verification is answered 400 and kept in ``rejected``; tests
assert there are none.

The test tells it how to answer (``mode``): ``ok`` (200), ``fail`` (500),
``hold`` (keep the request open until ``release()``: a slow receiver, or one a
timeout gives up on), ``redirect`` (302 to elsewhere), ``huge`` (200 with a body
far past any cap, streamed until the client stops reading). ``mode = "ok"`` is
recovery. Tests wait on what it received (``wait_for``), never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import h11
from standardwebhooks import Webhook

GUARD = 60.0  # seconds: only reached when something is broken
Mode = Literal["ok", "fail", "hold", "redirect", "huge"]
HUGE_BYTES = 64 * 1024 * 1024


@dataclass
class Received:
    """One request as it arrived (verified or not)."""

    path: str
    headers: dict[str, str]
    body: bytes
    event: Any = None  # the verified JSON

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    secrets: list[str] = field(default_factory=list)
    mode: Mode = "ok"
    requests: list[Received] = field(default_factory=list)  # every request, any answer
    delivered: list[Received] = field(default_factory=list)  # answered 2xx, verified
    rejected: list[tuple[Received, str]] = field(default_factory=list)
    huge_bytes_sent: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._release = asyncio.Event()
        self._changed = asyncio.Event()
        self._held = 0

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._server.wait_closed()

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def held(self) -> int:
        """Requests being held open now (``mode = "hold"``)."""
        return self._held

    def release(self) -> None:
        """Answer every held request (200) and answer later ones at once."""
        self.mode = "ok"
        self._release.set()

    def ids(self) -> list[int]:
        return [int(r.webhook_id) for r in self.delivered]

    async def wait_for(self, check: Callable[[], bool], what: str = "the receiver") -> None:
        deadline = time.monotonic() + GUARD
        while not check():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for {what}: {self.summary()}"
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.5)):
                    await self._changed.wait()

    def summary(self) -> str:
        return (
            f"{len(self.requests)} requests, delivered ids {self.ids()},"
            f" {len(self.rejected)} rejected, {self._held} held"
        )

    # -- serving -----------------------------------------------------------------

    def _verify(self, received: Received) -> str | None:
        """None when every secret verifies the request, else why not."""
        if not self.secrets:
            return "the test named no secret"
        try:
            for secret in self.secrets:
                received.event = Webhook(secret).verify(received.body, received.headers)
        except Exception as error:
            return f"{type(error).__name__}: {error}"
        return None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read(conn, reader)
                if request is None:
                    return
                await self._answer(conn, writer, request)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:  # the receiver stops: nothing to report
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Received | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data and conn.their_state is h11.IDLE:
                    return None
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                headers = {k.decode(): v.decode() for k, v in head.headers}
                return Received(head.target.decode(), headers, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _answer(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, received: Received
    ) -> None:
        self.requests.append(received)
        self._changed.set()
        problem = self._verify(received)
        status, extra, body = 200, [], b'{"ok":true}'
        if problem is not None:
            self.rejected.append((received, problem))
            status, body = 400, problem.encode()
        elif self.mode == "fail":
            status, body = 500, b"receiver says no"
        elif self.mode == "binary":  # NUL and bytes that are not UTF-8
            body = b"ok\x00\xff\xfe then \x00 more"
        elif self.mode == "redirect":
            status, body = 302, b""
            extra = [("location", "http://127.0.0.1:9/elsewhere")]
        elif self.mode == "hold":
            self._release.clear()
            self._held += 1
            self._changed.set()
            try:
                await self._release.wait()
            finally:
                self._held -= 1
        if self.mode == "huge" and problem is None:
            self.delivered.append(received)
            self._changed.set()
            await self._huge(conn, writer)
            return
        if 200 <= status < 300:
            self.delivered.append(received)
        self._changed.set()
        headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers + extra)))
        writer.write(conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()

    async def _huge(self, conn: h11.Connection, writer: asyncio.StreamWriter) -> None:
        headers = [("content-type", "text/plain"), ("content-length", str(HUGE_BYTES))]
        writer.write(conn.send(h11.Response(status_code=200, headers=headers)))
        chunk = b"x" * 65536
        try:
            while self.huge_bytes_sent < HUGE_BYTES:
                writer.write(conn.send(h11.Data(data=chunk)))
                await writer.drain()
                self.huge_bytes_sent += len(chunk)
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        finally:
            self._changed.set()
