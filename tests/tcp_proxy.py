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
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any


class TcpProxy:
    """Forwards 127.0.0.1:port to the upstream until stopped; can be started again."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port, self.upstream = port, upstream
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()  # what ``stop()`` ends
        self.open: set[asyncio.StreamWriter] = set()  # every socket not yet closed
        self.connections = 0  # accepted so far (forwarded or held)

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        # Every socket is the proxy's to close, on every path (the upstream refusing,
        # a cancel while connecting, ``close()``): a transport left open is finalized by
        # some later garbage collection, in whatever test runs then (ResourceWarning).
        self.open.add(writer)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                return  # the upstream is away: the client sees its connection end
            self.open.add(up_writer)
            self.writers |= {writer, up_writer}
            try:
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            finally:
                up_writer.close()
                self.open.discard(up_writer)
        finally:
            writer.close()
            self.open.discard(writer)

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept and say nothing, until the client gives up (or ``stop``)."""
        self.connections += 1
        self.open.add(writer)
        self.writers.add(writer)
        try:
            with contextlib.suppress(ConnectionError, OSError):
                while await reader.read(65536):
                    pass
        finally:
            writer.close()
            self.open.discard(writer)

    def start(self) -> None:
        async def run() -> None:
            self.server = await asyncio.start_server(ending(self._handle), "127.0.0.1", self.port)

        self._run(run())

    def hang(self) -> None:
        async def run() -> None:
            self.server = await asyncio.start_server(ending(self._hold), "127.0.0.1", self.port)

        self._run(run())

    def stop(self) -> None:
        async def run() -> None:
            if self.server is not None:
                await close_server(self.server)
                self.server = None
            for writer in self.writers:
                writer.close()
            self.writers.clear()

        self._run(run())

    def close(self) -> None:
        async def cancel_pipes() -> None:
            await end_every_task()
            for writer in self.open:  # none should be left; abort() is immediate
                writer.transport.abort()
            self.open.clear()
            await end_every_task()

        with contextlib.suppress(Exception):
            self.stop()
        self._run(cancel_pipes())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def ending(handler: Handler) -> Handler:
    """A connection handler that ends quietly when ``end_every_task`` cancels it.

    Python 3.11's ``start_server`` asks a cancelled handler's task for its exception,
    which raises in a loop callback, logged as an error (and the transport is left to
    the handler, which closes it in its ``finally``).
    """

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await handler(reader, writer)

    return run


async def close_server(server: asyncio.Server) -> None:
    """``server.close()``, once the connections it has accepted are set up.

    On Python 3.11 a connection accepted in the loop turn before ``close()`` is set up
    in a later one, finds the server closed (an assertion in ``Server._attach``) and is
    dropped with its socket unclosed, silently. So the accepts under way are let finish
    first; the check and the close run in one step, so no new accept starts between.
    """
    while accepting := [t for t in asyncio.all_tasks() if _coroutine_name(t) == _ACCEPT]:
        await asyncio.wait(accepting)
    server.close()


_ACCEPT = "_accept_connection2"  # asyncio's setup of an accepted connection (a task)


async def end_every_task() -> None:
    """End every other task of this loop, until none is left; run last on a proxy's own
    loop, after its server closed, before the loop stops for good.

    A connection the server accepted just before it closed is still being set up, as a
    task of the loop's own: cancelled before its first step, that task would drop the
    accepted socket unclosed, so it is let finish (it waits on no peer), and the
    connection's handler it starts is cancelled in the next pass. A transport closes
    its socket in a callback of a later loop turn, so the loop turns until those have
    run. Whatever is left open is finalized by some later garbage collection, in
    whatever test runs then (tests/test_proxies.py says why that is worse than a
    ResourceWarning).
    """
    for _ in range(100):  # a bound, never reached: each pass ends what the last began
        for _ in range(3):
            await asyncio.sleep(0)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if not tasks:
            return
        accepting = [t for t in tasks if _coroutine_name(t) == _ACCEPT]
        if accepting:
            await asyncio.wait(accepting)
            continue
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    raise RuntimeError("the proxy's tasks kept starting new ones")


def _coroutine_name(task: asyncio.Task[Any]) -> str:
    return getattr(task.get_coro(), "__name__", "")
