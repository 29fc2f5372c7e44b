"""The audit log: every admin write records one entry, in its own transaction; owners read it.

- Each admin action, through each door that offers it (REST for API keys, the
  ``gateway`` command for everything), records exactly one entry: the caller as
  actor, the action, the target, the request id the response carried in
  ``X-Request-ID`` (none from the command line). Installation-wide actions (signing
  keys) belong to no organization.
- The entry and its write commit together: an entry that cannot be recorded undoes
  the write, a write that fails after its entry leaves no entry.
- Owners list the entries through REST and GraphQL with the same filter, order and
  keyset pages (no row skipped or repeated while entries are added); every other role
  gets 403 ``PERMISSION_DENIED``, no API key may hold ``audit:read``, and another
  organization's owner sees none of them.
- No entry holds a secret: no API key, client secret, password or hash.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from db import accounts, api_keys, audit
from db.models import ApiKey, AuditEvent, Revocation, User
from db.revocations import api_key_credential
from gateway.settings import Settings
from tests.conftest import RunningServer, Tenant
from tests.factories import TOKENS, assert_problem, unique
from tests.processes import clean_env, gateway

KEYS = "/api/v1/api-keys"
AUDIT = "/api/v1/audit-events"
PASSWORD = "a long enough password"
CONNECTION = """
query($first: Int, $after: String, $filter: String, $orderBy: String) {
  auditEvents(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    edges {
      cursor
      node { databaseId actor action targetType targetId requestId details occurredAt }
    }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""


class Collected:
    """``db.revocations.Notices`` for a test: what a revoking function announced."""

    def __init__(self) -> None:
        self.announced: list[tuple[str, float]] = []

    def announce(self, credential_id: str, expires_at: float) -> None:
        self.announced.append((credential_id, expires_at))


def bearer(tenant: Tenant, role: str, scopes: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.mint(tenant.id, role, scopes)}"}


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


async def entries(organization_id: int | None, **where: Any) -> list[dict[str, Any]]:
    """The organization's entries (installation-wide ones for None), oldest first."""
    rows = (
        AuditEvent.filter(organization_id=organization_id)
        if organization_id is not None
        else AuditEvent.filter(organization_id__isnull=True)
    )
    return list(await rows.filter(**where).order_by("id").values())


def entry_of(rows: list[dict[str, Any]], action: str, target_id: object) -> dict[str, Any]:
    """The one entry of ``action`` on ``target_id`` (fails on none or several)."""
    found = [r for r in rows if r["action"] == action and r["target_id"] == str(target_id)]
    assert len(found) == 1, (action, target_id, rows)
    return found[0]


async def gql(client: httpx.AsyncClient, variables: dict[str, Any], **headers: str) -> Any:
    r = await client.post(
        "/graphql", json={"query": CONNECTION, "variables": variables}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()


def cli(settings: Settings, tmp_path: Any, *args: str, **env: str) -> str:
    """Run ``gateway *args`` on the test database (and Redis) as an operator does."""
    site = {"DATABASE_URL": settings.database_url, "SEED_DEMO": "false", **env}
    if settings.redis_url:
        site["REDIS_URL"] = settings.redis_url
    result = gateway(*args, env=clean_env(**site), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- one entry per action, from every door ------------------------------------------------


async def test_rest_key_writes_record_one_entry_each_with_the_request_id_they_answered(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = bearer(tenant, "admin")
    r = await http.post(KEYS, json={"name": "sync", "scopes": ["products:read"]}, headers=admin)
    assert r.status_code == 201, r.text
    key = r.json()["data"]
    created_by = r.headers["x-request-id"]
    chosen = unique("revoke-")  # a request id the client chose is kept
    r = await http.delete(f"{KEYS}/{key['id']}", headers={**admin, "X-Request-ID": chosen})
    assert r.status_code == 204, r.text
    assert r.headers["x-request-id"] == chosen
    r = await http.delete(f"{KEYS}/{key['id']}", headers=admin)  # changes nothing
    assert r.status_code == 204, r.text

    rows = await entries(tenant.id)
    assert len(rows) == 2, rows
    made, revoked = entry_of(rows, "api_key.created", key["id"]), rows[1]
    assert made["actor"] == revoked["actor"] == "user:test-admin"
    assert made["target_type"] == revoked["target_type"] == "api_key"
    assert made["request_id"] == created_by
    assert made["details"] == {
        "key_id": key["key_id"],
        "name": "sync",
        "scopes": ["products:read"],
        "expires_at": None,
    }
    assert revoked["action"] == "api_key.revoked"
    assert revoked["target_id"] == str(key["id"])
    assert revoked["request_id"] == chosen
    assert key["key"] not in json.dumps(rows, default=str)
    secret_hash = (await ApiKey.get(id=key["id"])).secret_hash
    assert secret_hash not in json.dumps(rows, default=str)


async def test_every_command_records_one_entry_as_cli_without_a_request_id(
    settings: Settings, tenant: Tenant, tmp_path: Any
) -> None:
    email = f"{unique('ana')}@audit.test"
    cli(
        settings,
        tmp_path,
        "create-user",
        tenant.slug,
        email,
        "--role",
        "staff",
        GATEWAY_PASSWORD=PASSWORD,
    )
    made = dict(
        line.split("=", 1)
        for line in cli(settings, tmp_path, "create-client", tenant.slug, "ERP").splitlines()
    )
    key = cli(settings, tmp_path, "create-api-key", tenant.slug, "k", "--scope", "orders:read")
    key = key.strip()
    key_id = key.split("_")[1]
    row_id = (await ApiKey.get(key_id=key_id)).id
    user = await User.get(email=email)
    password_hash = user.password_hash
    cli(settings, tmp_path, "delete-api-key", tenant.slug, key_id)
    cli(settings, tmp_path, "delete-client", tenant.slug, made["client_id"])
    cli(settings, tmp_path, "delete-user", tenant.slug, email)
    before = {row["id"] for row in await entries(None)}
    kid = cli(settings, tmp_path, "rotate-signing-key").strip()

    rows = await entries(tenant.id)
    assert [(r["action"], r["target_type"]) for r in rows] == [
        ("user.created", "user"),
        ("oauth_client.created", "oauth_client"),
        ("api_key.created", "api_key"),
        ("api_key.revoked", "api_key"),
        ("oauth_client.deleted", "oauth_client"),
        ("user.deleted", "user"),
    ]
    assert {r["actor"] for r in rows} == {"cli"}
    assert {r["request_id"] for r in rows} == {None}
    assert entry_of(rows, "user.created", user.id)["details"] == {"email": email, "role": "staff"}
    assert entry_of(rows, "user.deleted", user.id)["details"]["email"] == email
    client_entry = entry_of(rows, "oauth_client.created", made["client_id"])
    assert client_entry["details"]["type"] == "confidential"
    entry_of(rows, "oauth_client.deleted", made["client_id"])
    assert entry_of(rows, "api_key.revoked", row_id)["details"]["key_id"] == key_id

    rotated = [r for r in await entries(None) if r["id"] not in before]
    assert [(r["action"], r["target_id"], r["actor"]) for r in rotated] == [
        ("signing_key.rotated", kid, "cli")
    ]
    listed = cli(settings, tmp_path, "list-audit-events", "--json", "--limit", "10000")
    assert rotated[0]["id"] in {r["id"] for r in json.loads(listed)}

    written = json.dumps(rows, default=str)
    for secret in (key, key.split("_", 2)[2], made["client_secret"], PASSWORD, password_hash):
        assert secret not in written


async def test_the_first_signing_key_is_recorded_as_made_by_the_system() -> None:
    from gateway.auth.keys import create_key

    key = await create_key("ES256")
    (row,) = await entries(None, target_id=key.kid)
    assert (row["action"], row["actor"], row["target_type"]) == (
        "signing_key.created",
        "system",
        "signing_key",
    )
    assert row["details"] == {"algorithm": "ES256", "retired": []}
    await key.delete()


# --- the same transaction as the write ------------------------------------------------------


async def test_an_entry_that_cannot_be_recorded_undoes_its_write(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = await api_keys.create_api_key(
        tenant.owner, api_keys.ApiKeyInput(name="kept", scopes=["orders:read"])
    )

    async def refuse(**_: Any) -> None:
        raise RuntimeError("the audit log is full")

    monkeypatch.setattr(AuditEvent, "create", refuse)
    name = unique("never ")
    with pytest.raises(RuntimeError):
        await api_keys.create_api_key(
            tenant.owner, api_keys.ApiKeyInput(name=name, scopes=["orders:read"])
        )
    assert not await ApiKey.filter(name=name).exists()
    with pytest.raises(RuntimeError):
        await api_keys.revoke_api_key(tenant.owner, key["id"], notices=Collected())
    assert (await ApiKey.get(id=key["id"])).revoked_at is None
    assert not await Revocation.filter(credential_id=api_key_credential(key["key_id"])).exists()
    email = f"{unique('nobody')}@audit.test"
    with pytest.raises(RuntimeError):
        await accounts.create_user(tenant.id, email, PASSWORD, "staff")
    assert not await User.filter(email=email).exists()


async def test_a_write_that_fails_after_its_entry_leaves_no_entry(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = await api_keys.create_api_key(
        tenant.owner, api_keys.ApiKeyInput(name="kept", scopes=["orders:read"])
    )

    async def refuse(*_: Any) -> None:
        raise RuntimeError("the denylist is away")

    monkeypatch.setattr(api_keys, "record_revocation", refuse)
    notices = Collected()
    with pytest.raises(RuntimeError):
        await api_keys.revoke_api_key(tenant.owner, key["id"], notices=notices)
    assert (await ApiKey.get(id=key["id"])).revoked_at is None
    assert notices.announced == []
    assert [r["action"] for r in await entries(tenant.id)] == ["api_key.created"]

    email = f"{unique('twice')}@audit.test"
    await accounts.create_user(tenant.id, email, PASSWORD, "staff")
    with pytest.raises(Exception, match="already exists"):
        await accounts.create_user(tenant.id, email.upper(), PASSWORD, "viewer")
    assert [r["action"] for r in await entries(tenant.id, target_type="user")] == ["user.created"]


# --- reading: owners only, REST and GraphQL alike ------------------------------------------


async def _log(tenant: Tenant, count: int) -> list[str]:
    """``count`` keys made and revoked, each write with its own request id; the ids."""
    ids = []
    for n in range(count):
        ids.append(unique(f"req-{n}-"))
        key, _ = await api_keys.create_api_key(
            tenant.owner,
            api_keys.ApiKeyInput(name=f"key {n}", scopes=["orders:read"]),
            request_id=ids[-1],
        )
        ids.append(unique(f"req-{n}-"))
        await api_keys.revoke_api_key(
            tenant.owner, key["id"], notices=Collected(), request_id=ids[-1]
        )
    return ids


async def test_owners_page_through_the_log_alike_on_both_doors_while_it_grows(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    await _log(tenant, 4)
    owner = bearer(tenant, "owner")
    wanted = 'action = "api_key.created" OR action = "api_key.revoked"'
    newest_first = [r["id"] for r in reversed(await entries(tenant.id))]
    assert len(newest_first) == 8

    rest_ids: list[int] = []
    gql_ids: list[int] = []
    token: str | None = None
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"filter": wanted, "page_size": 3}
        if token:
            params["page_token"] = token
        r = await http.get(AUDIT, params=params, headers=owner)
        assert r.status_code == 200, r.text
        body = await gql(http, {"first": 3, "after": after, "filter": wanted}, **owner)
        assert "errors" not in body, body
        conn = body["data"]["auditEvents"]
        page = r.json()["data"]
        rest_ids += [row["id"] for row in page]
        gql_ids += [edge["node"]["databaseId"] for edge in conn["edges"]]
        for row, edge in zip(page, conn["edges"], strict=True):
            node = edge["node"]
            assert node["details"] == row["details"]
            assert (node["actor"], node["action"], node["targetId"], node["requestId"]) == (
                row["actor"],
                row["action"],
                row["target_id"],
                row["request_id"],
            )
            assert node["occurredAt"] == row["occurred_at"]
        assert conn["totalCount"] >= 8
        token = r.json()["metadata"]["pagination"]["next_page_token"]
        after = conn["pageInfo"]["endCursor"]
        assert conn["pageInfo"]["hasNextPage"] == (token is not None)
        if token is None:
            break
        assert after == token  # an edge's cursor is REST's page token
        await _log(tenant, 1)  # newer entries arrive while the owner pages back in time

    assert rest_ids == gql_ids == newest_first  # none skipped, none repeated

    one = (await entries(tenant.id))[0]
    by_request = f'request_id = "{one["request_id"]}"'
    r = await http.get(AUDIT, params={"filter": by_request, "fields": "id,action"}, headers=owner)
    assert r.json()["data"] == [{"id": one["id"], "action": one["action"]}]
    body = await gql(http, {"filter": by_request, "orderBy": "occurred_at asc"}, **owner)
    assert [e["node"]["databaseId"] for e in body["data"]["auditEvents"]["edges"]] == [one["id"]]
    got = await http.get(f"{AUDIT}/{one['id']}", headers=owner)
    assert got.status_code == 200, got.text
    assert got.json()["data"]["request_id"] == one["request_id"]
    bad = await http.get(AUDIT, params={"filter": "secret = 1"}, headers=owner)
    assert_problem(bad, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("role", ["admin", "staff", "viewer"])
async def test_no_other_role_reads_the_log(
    http: httpx.AsyncClient, tenant: Tenant, role: str
) -> None:
    ident = (await _log(tenant, 1)) and (await entries(tenant.id))[0]["id"]
    headers = bearer(tenant, role, [audit.READ_SCOPE, "orders:read"])  # asks; the role lacks it
    for path in (AUDIT, f"{AUDIT}/{ident}"):
        problem = assert_problem(await http.get(path, headers=headers), 403, "PERMISSION_DENIED")
        assert audit.READ_SCOPE in problem["detail"]
    body = await gql(http, {}, **headers)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


async def test_no_api_key_may_hold_the_audit_scope(http: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await http.post(
        KEYS, json={"name": "siem", "scopes": [audit.READ_SCOPE]}, headers=bearer(tenant, "owner")
    )
    assert_problem(r, 422, "VALIDATION_ERROR")
    assert await entries(tenant.id) == []


async def test_another_organization_s_owner_sees_none_of_it(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await _log(tenant, 2)
    mine = await entries(tenant.id)
    theirs = bearer(other_tenant, "owner")
    r = await http.get(AUDIT, headers=theirs)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []
    assert_problem(await http.get(f"{AUDIT}/{mine[0]['id']}", headers=theirs), 404, "NOT_FOUND")
    body = await gql(http, {}, **theirs)
    assert body["data"]["auditEvents"]["edges"] == []
    # nor does any owner see installation-wide entries (signing keys)
    owner = bearer(tenant, "owner")
    everything = (await http.get(AUDIT, params={"page_size": 100}, headers=owner)).json()["data"]
    assert {row["id"] for row in everything} == {row["id"] for row in mine}
    assert not [row for row in everything if row["target_type"] == "signing_key"]


async def test_an_organization_s_entries_go_with_it(server: RunningServer) -> None:
    from db.organizations import create_organization, delete_organization
    from db.principal import Principal

    org = await create_organization(slug=unique("gone-"), name="Gone")
    owner = Principal(
        subject="test-owner",
        organization_id=org["id"],
        scopes=frozenset({"*"}),
        roles=frozenset({"owner"}),
    )
    await api_keys.create_api_key(owner, api_keys.ApiKeyInput(name="k", scopes=["orders:read"]))
    assert len(await entries(org["id"])) == 1
    await delete_organization(org["slug"], force=True, access_token_ttl=900)
    assert await entries(org["id"]) == []
