"""Signing and the guarded HTTP call, against the real receiver (no database needed)."""

from __future__ import annotations

import base64
import os
import time

import pytest
from standardwebhooks import Webhook

from realtime.webhooks import guard, signing
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.backend_independent


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def test_signatures_verify_with_the_reference_library_for_every_valid_secret():
    old, new = secret(), secret()
    body = b'{"position":7,"type":"order.created","data":{"note":"caf\xc3\xa9"}}'
    headers = signing.headers([new, old], "7", int(time.time()), body)
    assert headers["webhook-id"] == "7"
    assert len(headers["webhook-signature"].split(" ")) == 2
    for key in (old, new):
        assert Webhook(key).verify(body, headers)["position"] == 7
    with pytest.raises(Exception, match="signature"):
        Webhook(secret()).verify(body, headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(new).verify(body + b" ", headers)


def test_our_signature_is_the_reference_signature():
    key = secret()
    from datetime import UTC, datetime

    at = 1_700_000_000
    ours = signing.signature(key, "42", at, b"{}")
    assert ours == Webhook(key).sign("42", datetime.fromtimestamp(at, UTC), b"{}")


@pytest.mark.parametrize(
    ("address", "private_ok", "public_ok"),
    [
        ("127.0.0.1", True, False),
        ("::1", True, False),
        ("10.1.2.3", True, False),
        ("192.168.0.1", True, False),
        ("172.16.0.1", True, False),
        ("169.254.169.254", True, False),
        ("100.64.0.1", True, False),
        ("fe80::1", True, False),
        ("fd00::1", True, False),
        ("::ffff:127.0.0.1", True, False),
        ("2002:7f00:1::", True, False),  # 6to4 around 127.0.0.1
        ("2002:a00:1::", True, False),  # 6to4 around 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", True, False),  # Teredo, client 127.0.0.1
        ("64:ff9b::7f00:1", True, False),  # NAT64 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", True, False),  # NAT64 around 169.254.169.254
        ("2002:808:808::", True, True),  # 6to4 around 8.8.8.8
        ("0.0.0.0", False, False),  # noqa: S104 (an address checked, not bound)
        ("224.0.0.1", False, False),
        ("240.0.0.1", True, False),
        ("8.8.8.8", True, True),
        ("2606:4700::1111", True, True),
    ],
)
def test_which_addresses_a_webhook_may_reach(address, private_ok, public_ok):
    import ipaddress

    ip = ipaddress.ip_address(address)
    assert guard.address_allowed(ip, allow_private=True) is private_ok
    assert guard.address_allowed(ip, allow_private=False) is public_ok


async def _post(receiver: Receiver, *, allow_private: bool = True, url: str | None = None, **kw):
    key = receiver.secrets[0]
    body = b'{"position":1}'
    async with guard.guarded_client(
        allow_private=allow_private, connect_timeout=2, timeout=kw.get("within", 5)
    ) as client:
        return await guard.post(
            client,
            url or receiver.url(),
            body,
            signing.headers([key], "1", int(time.time()), body),
            within=kw.get("within", 5),
            max_bytes=kw.get("max_bytes", 4096),
        )


async def test_a_verified_delivery_and_each_way_a_receiver_fails():
    async with Receiver([secret()]) as receiver:
        reply = await _post(receiver)
        assert (reply.outcome, reply.status, reply.excerpt) == ("delivered", 200, '{"ok":true}')
        assert receiver.delivered[0].headers["content-type"] == "application/json"
        assert receiver.delivered[0].headers["user-agent"].startswith("commerce-gateway")
        receiver.mode = "fail"
        reply = await _post(receiver)
        assert (reply.outcome, reply.status, reply.excerpt) == ("failed", 500, "receiver says no")
        receiver.mode = "redirect"
        reply = await _post(receiver)
        assert (reply.outcome, reply.status) == ("failed", 302)
        assert "redirects are not followed" in (reply.error or "")
        assert len(receiver.requests) == 3  # the redirect was not followed
        receiver.mode = "hold"
        reply = await _post(receiver, within=0.3)
        assert reply.outcome == "timeout"
        assert receiver.rejected == []


async def test_a_huge_answer_is_read_only_up_to_the_cap():
    async with Receiver([secret()]) as receiver:
        receiver.mode = "huge"
        reply = await _post(receiver, max_bytes=2048)
        assert (reply.outcome, reply.status) == ("delivered", 200)
        assert reply.excerpt == "x" * 1024
        await receiver.wait_for(lambda: receiver.huge_bytes_sent > 0)
        assert receiver.huge_bytes_sent < 32 * 1024 * 1024  # it stopped reading


async def test_loopback_and_private_targets_are_refused_unless_allowed():
    async with Receiver([secret()]) as receiver:
        for url in (receiver.url(), f"http://localhost:{receiver.port}/hook"):
            reply = await _post(receiver, allow_private=False, url=url)
            assert reply.outcome == "refused", reply
            assert "WEBHOOK_ALLOW_PRIVATE_TARGETS" in (reply.error or "")
        assert receiver.requests == []
        reply = await _post(receiver, allow_private=True, url=f"http://localhost:{receiver.port}/")
        assert reply.outcome == "delivered"


async def test_a_refused_connection_is_an_error_not_a_crash():
    async with Receiver([secret()]) as receiver:
        port = receiver.port
    reply = await _post(receiver, url=f"http://127.0.0.1:{port}/hook")
    assert reply.outcome == "error"


async def test_a_url_httpx_will_not_send_is_an_attempt_that_failed_not_a_crash():
    """Registration refuses such URLs; one stored before that rule (or any other
    surprise from the client) is still one logged attempt, never a dead worker."""
    async with Receiver([secret()]) as receiver:
        reply = await _post(receiver, url="https://0177.0.0.1/hook")
    assert reply.outcome == "error"
    assert "InvalidURL" in (reply.error or "")
    assert receiver.requests == []
