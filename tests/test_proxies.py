"""The tests' TCP proxies close every socket they open, on every path.

A socket left open is finalized by some later garbage collection, in whatever test
runs then, as a ResourceWarning the warning filters turn into an error there. On
Python 3.11 a collection inside ``ast.parse`` (Sanic parses each handler's source
when an app is built) even turns it into ``SystemError: AST constructor recursion
depth mismatch``: the unraisable-exception hook formats a traceback, which parses
again (CPython gh-106905). So each proxy is closed here on the paths a fault test
takes, and a full collection afterwards must find nothing to warn about.
"""

from __future__ import annotations

import gc
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.test_dashboard import CuttableProxy
from tests.private_redis import Proxy
from tests.processes import free_port
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.backend_independent


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a full collection reports as unraisable (unclosed sockets and transports)."""
    gc.collect()
    seen: list[str] = []

    def hook(report: Any) -> None:
        seen.append(f"{report.exc_type.__name__}: {report.exc_value} in {report.object!r}")

    monkeypatch.setattr(sys, "unraisablehook", hook)
    return seen


@pytest.fixture
def upstream() -> Iterator[tuple[str, int]]:
    """A server that accepts connections and holds them open."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield ("127.0.0.1", listener.getsockname()[1])
    listener.close()
    for conn in held:
        conn.close()


def clients(port: int, count: int, accepted: Callable[[], int]) -> list[socket.socket]:
    opened = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
    deadline = time.monotonic() + 10  # a failure guard only: accept is immediate
    while accepted() < count:
        assert time.monotonic() < deadline, "the proxy did not accept every connection"
        time.sleep(0.005)
    return opened


def closed_and_collected(proxy: Any, opened: list[socket.socket], seen: list[str]) -> None:
    proxy.close()
    for sock in opened:
        sock.close()
    del proxy
    gc.collect()
    assert seen == []


@pytest.mark.parametrize("mode", ["forwarding", "hung", "stopped then hung"])
def test_a_proxy_closed_with_connections_open_leaves_no_socket(unraisable, upstream, mode):
    proxy = TcpProxy(free_port(), upstream)
    opened: list[socket.socket] = []
    if mode == "forwarding":
        proxy.start()
    elif mode == "hung":
        proxy.hang()
    else:
        proxy.start()
        opened += clients(proxy.port, 2, lambda: proxy.connections)
        proxy.stop()
        proxy.hang()
    before = proxy.connections
    opened += clients(proxy.port, 3, lambda: proxy.connections - before)
    closed_and_collected(proxy, opened, unraisable)


def test_a_proxy_closed_while_clients_connect_leaves_no_socket(unraisable, upstream):
    proxy = TcpProxy(free_port(), upstream)
    proxy.start()
    opened = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(20)]
    closed_and_collected(proxy, opened, unraisable)  # some not even accepted yet


def test_a_proxy_whose_upstream_refuses_closes_the_client_s_socket(unraisable):
    proxy = TcpProxy(free_port(), ("127.0.0.1", free_port()))  # nothing listens there
    proxy.start()
    opened = clients(proxy.port, 3, lambda: proxy.connections)
    for sock in opened:
        assert sock.recv(1) == b""  # the proxy ended it
    closed_and_collected(proxy, opened, unraisable)


def test_connections_held_by_a_cut_network_are_closed_with_the_proxy(unraisable, upstream):
    proxy = CuttableProxy(free_port(), upstream)
    proxy.start()
    proxy.cut()
    opened = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(3)]
    deadline = time.monotonic() + 10  # a failure guard only
    while len(proxy.open) < 3:
        assert time.monotonic() < deadline, "the proxy did not hold every connection"
        time.sleep(0.005)
    closed_and_collected(proxy, opened, unraisable)


def test_the_redis_proxy_closes_its_sockets_when_redis_is_away(unraisable):
    proxy = Proxy(free_port())  # nothing listens there
    proxy.mend()
    opened = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(3)]
    for sock in opened:
        assert sock.recv(1) == b""
    closed_and_collected(proxy, opened, unraisable)


def test_the_redis_proxy_closes_forwarded_connections(unraisable, upstream):
    proxy = Proxy(upstream[1])
    proxy.mend()
    opened = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(20)]
    for sock in opened:
        sock.sendall(b"PING\r\n")
    closed_and_collected(proxy, opened, unraisable)
