"""Sentry: what an unhandled error sends, captured in process, and what it must never carry.

A real ``gateway serve``-like process (``SENTRY_APP`` below: the gateway's own
``create_app`` with ``setup_sentry`` given a transport that writes each envelope to a
file, plus one route that fails) answers a request carrying every kind of secret; the
test reads the serialized envelopes and looks for each secret's value anywhere in them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sentry_sdk.envelope import Envelope

from db.errors import NotFound
from gateway.errors import DatabaseUnavailable
from gateway.observability import (
    Scrubber,
    before_breadcrumb,
    before_send,
    release_name,
    scrub_text,
    sensitive_key,
)
from gateway.settings import Settings
from tests.processes import clean_env, free_port
from tests.served import GUARD, own_database

# The secrets a request sends (long, unlike anything else in an event).
SECRETS = {
    "bearer": "BEARERsecretVALUE0001",
    "cookie": "COOKIEsecretVALUE0002",
    "access_token": "QUERYsecretVALUE0003",
    "password": "BODYpasswordVALUE0004",
    "client_secret": "BODYclientSECRET0005",
    "api_key": "gwk_k1_HEADERapiKEY0006",
    "refresh_token": "BODYrefreshTOKEN0007",
}

SENTRY_APP = """
import functools, itertools, logging, sys
from pathlib import Path

from sanic.response import text
from sentry_sdk.transport import Transport

import gateway.app
from gateway.observability import setup_sentry
from gateway.settings import load_settings

out = Path(sys.argv[2])
numbers = itertools.count()


class Capture(Transport):
    def capture_envelope(self, envelope):
        path = out / f"{next(numbers):04d}.envelope"
        path.with_suffix(".part").write_bytes(envelope.serialize())
        path.with_suffix(".part").rename(path)


gateway.app.setup_sentry = functools.partial(setup_sentry, transport=Capture())
app = gateway.app.create_app(load_settings())


async def fail(request):
    authorization = request.headers.get("authorization")  # a local holding a secret
    body = request.json
    logging.getLogger("gateway").warning("retrying %s for %s", request.url, authorization)
    raise RuntimeError(f"the upstream refused {authorization} with {body['password']}")


async def log_error(request):
    key = request.headers.get("x-api-key")
    logging.getLogger("gateway").error("the partner refused key=%s", key)
    return text("logged")


app.add_route(fail, "/test/fail", methods=["POST"], name="test_fail")
app.add_route(log_error, "/test/log", methods=["GET"], name="test_log")
app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, access_log=False)
"""


@contextlib.contextmanager
def sentry_app(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    out = tmp_path / "envelopes"
    out.mkdir()
    port = free_port()
    log = tmp_path / "sentry-app.log"
    with own_database(tmp_path) as database, log.open("wb") as sink:
        env = clean_env(
            **database,
            ENVIRONMENT="test",
            SENTRY_RELEASE="gateway-test@1.2.3",
            RATE_LIMITS_ENABLED="false",
            LOG_LEVEL="WARNING",
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", SENTRY_APP, str(port), str(out)],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + GUARD
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/livez", timeout=2).status_code == 200:
                        break
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            yield base, out
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=GUARD)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _events(out: Path) -> list[tuple[bytes, dict[str, Any]]]:
    """(serialized envelope, its event) for every envelope holding an event."""
    found = []
    for path in sorted(out.glob("*.envelope")):
        raw = path.read_bytes()
        for item in Envelope.deserialize(raw).items:
            if item.type == "event":
                found.append((raw, orjson.loads(item.payload.get_bytes())))
    return found


def test_an_unhandled_error_is_reported_tagged_and_without_any_secret(tmp_path):
    with sentry_app(tmp_path) as (base, out):
        # Errors the gateway answers as designed are not reported: 404, 401.
        assert httpx.get(f"{base}/nope", timeout=10).status_code == 404
        refused = httpx.get(
            f"{base}/api/v1/customers",
            headers={"Authorization": f"Bearer {SECRETS['bearer']}"},
            timeout=10,
        )
        assert refused.status_code == 401
        failed = httpx.post(
            f"{base}/test/fail",
            params={"access_token": SECRETS["access_token"], "page": "2"},
            headers={
                "Authorization": f"Bearer {SECRETS['bearer']}",
                "Cookie": f"session={SECRETS['cookie']}; theme=dark",
                "X-Api-Key": SECRETS["api_key"],
                "X-Request-Note": "visible",
            },
            json={
                "name": "visible-name",
                "password": SECRETS["password"],
                "client_secret": SECRETS["client_secret"],
                "nested": {"refresh_token": SECRETS["refresh_token"]},
            },
            timeout=10,
        )
        assert failed.status_code == 500
        assert failed.json()["code"] == "INTERNAL"
        deadline = time.monotonic() + GUARD
        while not (events := _events(out)):  # written before the answer; a guard only
            assert time.monotonic() < deadline, "no envelope"
            time.sleep(0.05)

        # An error-level log record in a request is an event too, with its request.
        logged = httpx.get(
            f"{base}/test/log", headers={"X-Api-Key": SECRETS["api_key"]}, timeout=10
        )
        assert logged.status_code == 200
        while len(events := _events(out)) < 2:
            assert time.monotonic() < deadline, "no envelope for the log record"
            time.sleep(0.05)

    # One event per failure: the handler's "unhandled error" log line is the same error.
    assert len(events) == 2, [event.get("exception") for _, event in events]
    (_, event), (_, log_event) = events
    text = b"".join(path.read_bytes() for path in sorted(out.glob("*.envelope")))
    for name, secret in SECRETS.items():
        assert secret.encode() not in text, f"the {name} left the process"
    # ... and the report is still useful: what failed, where, for which release.
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == "the upstream refused [Filtered] with [Filtered]"
    assert exception["mechanism"]["type"] == "sanic"
    assert event["release"] == "gateway-test@1.2.3"
    assert event["environment"] == "test"
    assert event["transaction"] == "test_fail"
    request = event["request"]
    assert request["method"] == "POST"
    assert "page=2" in request["query_string"]
    assert request["headers"]["x-request-note"] == "visible"
    assert request["headers"]["authorization"] == "[Filtered]"
    assert request["data"]["name"] == "visible-name"
    frames = exception["stacktrace"]["frames"]
    assert frames[-1]["function"] == "fail"
    assert frames[-1]["vars"]["authorization"] == "[Filtered]"
    assert event["tags"]["request_id"] == failed.headers["x-request-id"]
    assert log_event["logentry"]["message"].startswith("the partner refused key=")
    assert log_event["logentry"]["params"] == ["[Filtered]"]
    assert log_event["request"]["headers"]["x-api-key"] == "[Filtered]"
    assert log_event["transaction"] == "test_log"
    # No breadcrumbs from log records: without a scope per request they would mix requests.
    assert not event.get("breadcrumbs", {}).get("values")
    assert "ip_address" not in event.get("user", {})


# -- the scrubber's parts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "Cookie",
        "Set-Cookie",
        "X-Api-Key",
        "api_key",
        "access_token",
        "refresh_token",
        "id_token",
        "client_assertion",
        "code",
        "code_verifier",
        "client_secret",
        "password",
        "new_password",
        "DATABASE_PASSWORD",
        "sentry_dsn",
        "key",
    ],
)
def test_sensitive_keys(key):
    assert sensitive_key(key)


@pytest.mark.parametrize("key", ["name", "email", "author", "status", "position", "request_id"])
def test_ordinary_keys(key):
    assert not sensitive_key(key)


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [Filtered]"),
        ("basic dXNlcjpwYXNz", "basic [Filtered]"),
        ("GET /x?access_token=s3cret&page=2", "GET /x?access_token=[Filtered]&page=2"),
        ('{"password": "hunter22", "name": "x"}', '{"password": "[Filtered]", "name": "x"}'),
        ("client_secret=abc&code=xyz&state=s", "client_secret=[Filtered]&code=[Filtered]&state=s"),
        ("with key gwk_k1_abcdefgh", "with key [Filtered]"),
        ("jwt eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln ok", "jwt [Filtered] ok"),
        ("nothing to see", "nothing to see"),
    ],
)
def test_scrub_text(text, scrubbed):
    assert scrub_text(text) == scrubbed


def test_values_under_sensitive_keys_are_cut_everywhere_else_in_the_event():
    event: dict[str, Any] = {
        "request": {
            "query_string": "code=AUTHCODE123&state=fine",
            "data": '{"code_verifier": "VERIFIER456", "grant_type": "authorization_code"}',
            "headers": {"X-Api-Key": "KEYVALUE789", "Accept": "*/*"},
        },
        "extra": {"note": "exchanged AUTHCODE123 with VERIFIER456 using KEYVALUE789"},
        "message": "state=fine",
    }
    Scrubber().scrub_event(event)
    dumped = orjson.dumps(event, default=repr)
    for secret in (b"AUTHCODE123", b"VERIFIER456", b"KEYVALUE789"):
        assert secret not in dumped
    assert b"state=fine" in dumped
    assert b"authorization_code" in dumped


def test_expected_errors_are_dropped_and_internal_ones_kept():
    def hint(error: BaseException) -> dict[str, Any]:
        return {"exc_info": (type(error), error, None)}

    assert before_send({}, hint(NotFound("no such order"))) is None
    assert before_send({}, hint(DatabaseUnavailable("away"))) is None
    kept = before_send({"message": "token=abc123456"}, hint(RuntimeError("bug")))
    assert kept == {"message": "token=[Filtered]"}


def test_breadcrumbs_lose_their_secrets():
    crumb = {
        "message": "GET https://idp.test/jwks?api_key=k3y456789",
        "data": {"url": "https://idp.test/x?token=abcdefgh", "Authorization": "Bearer x"},
    }
    out = before_breadcrumb(crumb, {})
    assert "k3y456789" not in orjson.dumps(out).decode()
    assert "abcdefgh" not in orjson.dumps(out).decode()
    assert out["data"]["Authorization"] == "[Filtered]"


def test_the_release_is_the_setting_else_the_package_version_and_commit():
    assert release_name(Settings(sentry_release="r-42"), {}) == "r-42"
    name = release_name(Settings(), {})
    assert name.startswith("commerce-gateway@")
    assert release_name(Settings(), {"GIT_SHA": "0123456789abcdef"}) == f"{name}+0123456789ab"
