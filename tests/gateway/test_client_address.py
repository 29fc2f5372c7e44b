"""Which address a request comes from, when proxies are (and are not) trusted."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.edge import resolve_client_address

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # a client talking to us directly cannot claim another address
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        # behind one trusted proxy: the address it appended
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        # a spoofed first hop is ignored: the proxy's own hop is the client
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        # two trusted proxies in a row, in one header or in several
        ("127.0.0.1", ["198.51.100.1, 10.1.2.3"], "198.51.100.1"),
        ("127.0.0.1", ["198.51.100.1", "10.1.2.3"], "198.51.100.1"),
        # a trusted proxy with no header is itself the client
        ("127.0.0.1", [], "127.0.0.1"),
        # garbage before the trusted chain stops the walk at the last trusted hop
        ("127.0.0.1", ["not-an-ip, 10.0.0.2"], "10.0.0.2"),
        ("127.0.0.1", ["1.2.3.4, not-an-ip"], "127.0.0.1"),
        # ports and brackets, as some proxies write them
        ("127.0.0.1", ["198.51.100.1:5000"], "198.51.100.1"),
        ("127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(peer, forwarded, expected):
    assert resolve_client_address(peer, forwarded, TRUSTED) == expected


def test_without_trusted_proxies_the_peer_is_the_client():
    assert resolve_client_address("127.0.0.1", ["198.51.100.1"], []) == "127.0.0.1"
