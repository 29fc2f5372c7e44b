"""Credentials in a socket's message: one grammar, read the same on every socket door."""

from __future__ import annotations

import pytest
import websockets

from db.errors import InvalidArgument, Unauthenticated
from gateway.auth.credentials import message_credentials
from tests import realtime_clients as rt
from tests.factories import TOKENS


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"token": "t"}, ("Bearer t", None)),
        ({"Authorization": "Bearer t"}, ("Bearer t", None)),
        ({"AUTHORIZATION": "Bearer t", "token": "other"}, ("Bearer t", None)),
        ({"X-API-Key": "k"}, (None, "k")),
        ({"api_key": "k"}, (None, "k")),
        ({"apiKey": "k"}, (None, "k")),
        ({"type": "auth", "token": "t", "api_key": "k"}, ("Bearer t", "k")),
    ],
)
def test_the_grammar(message, expected):
    assert message_credentials(message) == expected


@pytest.mark.parametrize("message", [{}, {"type": "auth"}, {"token": ""}, {"token": None}])
def test_no_credential_is_unauthenticated(message):
    with pytest.raises(Unauthenticated):
        message_credentials(message)


@pytest.mark.parametrize("message", [{"token": 12}, {"X-API-Key": ["k"]}, {"Authorization": {}}])
def test_a_credential_that_is_not_a_string_is_invalid(message):
    with pytest.raises(InvalidArgument):
        message_credentials(message)


def test_a_huge_message_is_read_in_part_only():
    message = {f"k{n}": n for n in range(10_000)} | {"token": "t"}
    with pytest.raises(Unauthenticated):  # the token came after the first 64 keys
        message_credentials(message)


async def api_key(tenant) -> str:
    admin = {"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'admin')}"}
    created = await tenant.client.post(
        "/api/v1/api-keys", json={"name": "board", "scopes": ["orders:read"]}, headers=admin
    )
    assert created.status_code == 201, created.text
    key: str = created.json()["data"]["key"]
    return key


FORMS = ["token", "Authorization", "X-API-Key", "api_key"]


def credential(form: str, token: str, key: str) -> dict[str, str]:
    return {
        "token": {"token": token},
        "Authorization": {"Authorization": f"Bearer {token}"},
        "X-API-Key": {"X-API-Key": key},
        "api_key": {"api_key": key},
    }[form]


@pytest.mark.parametrize("form", FORMS)
async def test_every_form_works_on_both_socket_doors(server, tenant, form):
    sent = credential(form, TOKENS.mint(tenant.id, "owner"), await api_key(tenant))
    async with websockets.connect(rt.ws_url(server.base_url)) as ws:
        await rt.send(ws, type="auth", **sent)
        assert (await rt.frame(ws))["type"] == "authenticated"
    graphql = rt.ws_url(server.base_url, "/graphql")
    async with websockets.connect(graphql, subprotocols=["graphql-transport-ws"]) as ws:
        await rt.send(ws, type="connection_init", payload=sent)
        assert (await rt.frame(ws))["type"] == "connection_ack"
