"""A TCP proxy a test can cut and restore: a database (or any server) that goes away.

``TcpProxy(port, upstream)`` forwards ``127.0.0.1:port`` to ``upstream`` on a thread
and event loop of its own, so a test that blocks on a request cannot stall it.

- ``stop()``: the server is stopped. Every connection through the proxy is closed
  (the client reads end-of-file, as when PostgreSQL shuts down) and new ones are
  refused.
- ``start()``: the server is back; connections are accepted again.
- ``hang()`` (after ``stop()``): the network loses packets instead. New connections
  are accepted and never answered, as with a firewall that drops them, so only the
  client's own timeouts end its wait.

tests/private_redis.py has a proxy of its own for Redis, which keeps a client's
connection open after Redis went away until the client next writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any


class TcpProxy:
    """Forwards 127.0.0.1:port to the upstream until stopped; can be started again."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port, self.upstream = port, upstream
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.connections = 0  # accepted so far (forwarded or held)

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept and say nothing, until the client gives up (or ``stop``)."""
        self.connections += 1
        self.writers.add(writer)
        with contextlib.suppress(ConnectionError, OSError):
            while await reader.read(65536):
                pass
        writer.close()

    def start(self) -> None:
        async def run() -> None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        self._run(run())

    def hang(self) -> None:
        async def run() -> None:
            self.server = await asyncio.start_server(self._hold, "127.0.0.1", self.port)

        self._run(run())

    def stop(self) -> None:
        async def run() -> None:
            if self.server is not None:
                self.server.close()
                self.server = None
            for writer in self.writers:
                writer.close()
            self.writers.clear()

        self._run(run())

    def close(self) -> None:
        async def cancel_pipes() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.stop()
        self._run(cancel_pipes())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
