"""A Redis of a test's own, to stop and restart (never the shared one), and a TCP proxy
to cut one client's way to it while others keep theirs."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import free_port
from tests.tcp_proxy import close_server, end_every_task, ending


class PrivateRedis:
    """``redis-server`` on a spare port, without persistence: a restart empties it."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed for this test (it is on the services machines)")
        self.port = free_port()
        self._command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ]
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self._proc is None
        self._proc = subprocess.Popen(self._command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not answers(self.port):
            assert self._proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill it (SIGKILL, as a crash): what it held is gone."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


def answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(directory)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


class Proxy:
    """A TCP proxy to ``target``, on a thread and event loop of its own (so a test that
    blocks on a request cannot stall it).

    Like a container's published port, it keeps a client's connection open when Redis
    goes away, and drops it only when the client next writes: the client learns that
    Redis restarted from its first command, not before. ``cut()`` drops every
    connection and refuses new ones (the network fails); ``mend()`` accepts again.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def mend(self) -> None:
        self._run(self._listen())

    def cut(self) -> None:
        self._run(self._cut())

    def close(self) -> None:
        if self._server is not None:
            self.cut()
        self._run(self._finish())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _finish(self) -> None:
        """End every connection's task (each has dropped its sockets, or is dropping them)."""
        await end_every_task()

    async def _listen(self) -> None:
        assert self._server is None
        self._server = await asyncio.start_server(ending(self._serve), "127.0.0.1", self.port)

    async def _cut(self) -> None:
        assert self._server is not None
        await close_server(self._server)
        for writer in tuple(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:  # Redis is away
            writer.transport.abort()
            return
        except BaseException:  # ``close()`` cancelled the connect
            writer.transport.abort()
            raise
        self._writers.update((writer, up_writer))
        gone = asyncio.Event()

        async def down() -> None:  # Redis to the client
            with contextlib.suppress(OSError):
                while data := await up_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            gone.set()  # and the client's connection stays open, for now

        async def up() -> None:  # the client to Redis
            try:
                while (data := await reader.read(65536)) and not gone.is_set():
                    up_writer.write(data)
                    await up_writer.drain()
            except OSError:
                pass
            finally:
                writer.transport.abort()
                up_writer.transport.abort()

        await asyncio.gather(down(), up(), return_exceptions=True)
        self._writers.difference_update((writer, up_writer))


@contextlib.contextmanager
def proxy_to(redis: PrivateRedis) -> Iterator[Proxy]:
    proxy = Proxy(redis.port)
    proxy.mend()
    try:
        yield proxy
    finally:
        proxy.close()
