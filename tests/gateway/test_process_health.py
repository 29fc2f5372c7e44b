"""Process health with real ``gateway serve`` processes: SIGTERM, and a worker killed.

Each test runs gateways of its own, on the pass's backend (a SQLite file, or a
PostgreSQL database of its own), and waits for what the server does (a socket it
closes, a log line, a readiness answer), never for time to pass: the deadlines
below are failure guards only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import websockets

from tests.processes import free_port
from tests.served import GUARD, Gateway, gateways, own_database, start_redis

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    with own_database(tmp_path) as database, gateways(tmp_path, database) as start:
        yield start


# -- raw HTTP/1.1 on sockets: the test decides when each byte goes ---------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    sock.settimeout(GUARD)
    return sock


def read_reply(sock: socket.socket) -> Reply | None:
    """One response, or None when the server closed the connection first."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return None
        if not chunk:
            assert not data, f"the connection closed mid-response: {data!r}"
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (f.split(":", 1) for f in fields)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed mid-body"
        body += chunk
    return Reply(int(status_line.split()[1]), headers, body)


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: gateway.test\r\n\r\n".encode()


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def idle_connection_per_worker(node: Gateway, workers: int) -> list[socket.socket]:
    """A keep-alive connection, left idle, on each worker (readiness says whose it is)."""
    held: dict[int, socket.socket] = {}
    deadline = time.monotonic() + GUARD
    while len(held) < workers:
        assert time.monotonic() < deadline, "could not reach every worker"
        sock = connect(node.port)
        sock.sendall(get("/readyz"))
        reply = read_reply(sock)
        assert reply is not None
        assert reply.headers["connection"] == "keep-alive"
        pid = orjson.loads(reply.body)["worker"]["pid"]
        if pid in held:
            sock.close()
        else:
            held[pid] = sock
    return list(held.values())


class BusyClient(threading.Thread):
    """Requests back to back on one keep-alive connection until the server ends it."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = connect(port)
        self.replies: list[tuple[float, str]] = []  # (received at, Connection header)
        self.first = threading.Event()
        self.error: BaseException | None = None  # what went wrong, for the test to raise

    def run(self) -> None:
        try:
            with self.sock:
                self._requests()
        except BaseException as error:
            self.error = error
        finally:
            self.first.set()

    def _requests(self) -> None:
        while True:
            try:
                self.sock.sendall(get("/healthz"))
            except OSError:
                return
            reply = read_reply(self.sock)
            if reply is None:
                return
            self.replies.append((time.monotonic(), reply.headers["connection"]))
            self.first.set()
            if reply.headers["connection"] == "close":
                assert closed_by_server(self.sock), "open after Connection: close"
                return


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_ends_keep_alive_at_once_finishes_requests_and_exits_cleanly(serve, workers):
    node = serve(workers=workers)
    idle = idle_connection_per_worker(node, workers)
    # A request in flight at SIGTERM: its body arrives only after the drain began.
    body = b"grant_type=client_credentials"
    in_flight = connect(node.port)
    in_flight.sendall(
        b"POST /oauth/token HTTP/1.1\r\nHost: gateway.test\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:5])
    )
    busy = BusyClient(node.port)
    busy.start()
    assert busy.first.wait(GUARD)
    assert busy.replies, busy.error

    node.proc.send_signal(signal.SIGTERM)
    # Every worker closes its idle keep-alive connections as soon as it starts to stop.
    for sock in idle:
        assert closed_by_server(sock), "an idle keep-alive connection stayed open"
    drained = time.monotonic()

    # The request in flight is finished, and its connection closed after it.
    in_flight.sendall(body[5:])
    reply = read_reply(in_flight)
    assert reply is not None, "the request in flight was cut"
    assert reply.status in (400, 401)  # a bad client: what matters is that it was answered
    assert reply.headers["connection"] == "close"
    assert closed_by_server(in_flight)

    # The busy client got at most the one response already on its way, then "close".
    busy.join(GUARD)
    assert not busy.is_alive(), "the busy keep-alive connection was still served"
    if busy.error is not None:
        raise busy.error
    after = [header for at, header in busy.replies if at > drained]
    assert after.count("keep-alive") <= 1, busy.replies[-10:]

    assert node.exit_code() == 0
    node.assert_clean_log()
    assert sum("Stopping worker" in line for line in node.lines()) == workers


def test_a_request_that_outlasts_the_bound_is_cut_and_the_worker_still_exits_cleanly(serve):
    """Sanic's manager gives a stopping worker 10 s; a worker that waited longer for a
    stuck request (its default wait is 15 s) was abandoned mid-shutdown."""
    node = serve(workers=2, SHUTDOWN_TIMEOUT_SECONDS="1")
    stuck = connect(node.port)
    stuck.sendall(
        b"POST /oauth/token HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 100\r\n\r\nx"
    )  # and the other 99 bytes never come
    node.proc.send_signal(signal.SIGTERM)
    assert closed_by_server(stuck)
    assert node.exit_code() == 0
    node.assert_clean_log()


def test_a_killed_worker_is_logged_replaced_and_missed_by_readiness(serve, tmp_path):
    """The replacement cannot finish starting while the (private) Redis is stopped:
    readiness is read while the host is one worker short, whatever the machine's speed."""
    redis_port = free_port()
    redis = start_redis(redis_port, tmp_path)
    try:
        node = serve(workers=2, REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
        victim = node.readyz().json()["worker"]["pid"]
        redis.send_signal(signal.SIGSTOP)
        try:
            os.kill(victim, signal.SIGKILL)
            line = node.wait_for_line(f"(pid {victim}) died: killed by SIGKILL")
            assert orjson.loads(line)["level"] == "error"
            short = node.readyz()  # answered by the survivor
            assert short.status_code == 503
            assert short.json()["checks"]["workers"] == "error: 1 of 2 serving"
            assert short.json()["workers"]["serving"] == 1
        finally:
            redis.send_signal(signal.SIGCONT)
        node.wait_for_line("serves again (pid ")
        deadline = time.monotonic() + GUARD
        while (ready := node.readyz()).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.05)
        assert ready.json()["workers"] == {"expected": 2, "serving": 2, "restarts": 1}
        assert ready.json()["checks"]["workers"] == "ok"
        node.proc.send_signal(signal.SIGTERM)
        assert node.exit_code() == 0
        node.assert_clean_log()
    finally:
        redis.kill()
        redis.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_closed_websockets_give_their_memory_back(serve):
    """Rounds of 1,000 WebSockets opened and closed: the worker's memory stops growing
    once warm (two rounds; it grew by about 1 MB over the next four here). Each closed
    socket used to stay in memory until Sanic's timeout check fired (30 s with this
    keep-alive): 16 MB a round, still growing at the tenth."""
    node = serve(KEEP_ALIVE_TIMEOUT_SECONDS="300", REALTIME_UNAUTHENTICATED_PER_ADDRESS="1000")
    url = f"ws://127.0.0.1:{node.port}/api/v1/realtime"
    gate = asyncio.Semaphore(50)

    async def open_and_close() -> None:
        async with gate, websockets.connect(url):
            pass

    sizes = []
    for _ in range(6):
        await asyncio.gather(*(open_and_close() for _ in range(1_000)))
        sizes.append(rss_mb(node.proc.pid))
    # The last 3,000 sockets, after two rounds of warm-up.
    assert sizes[-1] - sizes[2] < 8, sizes
