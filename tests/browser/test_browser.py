"""The gateway in a real browser: a page on another origin calls every HTTP door with
CORS, streams events over EventSource and a WebSocket, and signs a person in with
code + PKCE; Swagger UI and GraphiQL work on the first click. Every scenario ends
with zero console errors or warnings, page errors or failed requests.
"""

from __future__ import annotations

import uuid

from db.accounts import create_client, create_user
from db.principal import ALL_SCOPES
from tests.browser.conftest import assert_clean, run_scenario
from tests.conftest import RunningServer, Tenant
from tests.factories import TOKENS

PASSWORD = "a long enough password"


def _token(tenant: Tenant) -> str:
    return TOKENS.mint(tenant.id, "owner")


async def test_a_page_on_another_origin_calls_rest_graphql_and_the_token_endpoint(
    server: RunningServer, tenant: Tenant, page_server: str
) -> None:
    machine = await create_client(
        tenant.id, f"Page app {uuid.uuid4().hex[:6]}", grant_types=["client_credentials"],
        scopes=["products:read"], role="staff",
    )  # fmt: skip
    report = await run_scenario(
        "cors", page=page_server, api=server.base_url, token=_token(tenant),
        clientId=machine.client.client_id, clientSecret=machine.secret,
    )  # fmt: skip
    result = report["result"]
    assert result["list"]["status"] == 200
    assert result["list"]["etag"]  # exposed to the page by CORS
    assert result["list"]["requestId"]
    assert result["made"]["status"] == 201
    assert result["made"]["location"].startswith("/api/v1/customers/")
    assert result["made"]["etag"]
    assert result["graphql"]["status"] == 200
    assert "errors" not in result["graphql"]["body"], result["graphql"]
    assert result["token"] == {"status": 200, "hasToken": True}
    assert result["refused"] == {"status": 401, "code": "UNAUTHENTICATED"}
    # The 401 is a failed resource load in the console, as a browser reports any 4xx.
    report["console"] = [m for m in report["console"] if "401" not in m["text"]]
    assert_clean(report)


async def test_an_event_source_with_a_ticket_receives_a_write(
    server: RunningServer, tenant: Tenant, page_server: str
) -> None:
    report = await run_scenario(
        "eventsource", page=page_server, api=server.base_url, token=_token(tenant)
    )
    # Closing the stream at the end aborts its request: that one is expected.
    report["failedRequests"] = [
        r for r in report["failedRequests"] if not ("/api/v1/events?" in r and "ERR_ABORTED" in r)
    ]
    event = report["result"]["event"]
    assert event["data"]["type"] == "customer.created"
    assert event["data"]["data"]["email"] == report["result"]["email"]
    assert int(event["id"]) == event["data"]["position"]
    assert_clean(report)


async def test_a_websocket_subscription_from_a_page_receives_a_write(
    server: RunningServer, tenant: Tenant, page_server: str
) -> None:
    report = await run_scenario(
        "websocket", page=page_server, api=server.base_url, token=_token(tenant)
    )
    payload = report["result"]["payload"]
    assert payload["data"]["customerEvents"] == {"type": "customer.created", "resource": "customer"}
    assert_clean(report)


async def test_graphiql_takes_a_token_and_runs_its_first_query(
    server: RunningServer, tenant: Tenant, page_server: str
) -> None:
    report = await run_scenario("graphiql", api=server.base_url, token=_token(tenant))
    assert report["result"]["schemaStatus"] == 200
    assert report["result"]["status"] == 200
    assert "errors" not in report["result"]["body"], report["result"]
    assert "orders" in report["result"]["body"]["data"]
    assert_clean(report)


async def test_swagger_authorize_then_try_it_out_returns_200(
    server: RunningServer, tenant: Tenant, page_server: str
) -> None:
    report = await run_scenario("swagger", api=server.base_url, token=_token(tenant))
    assert report["result"]["status"] == 200
    assert report["result"]["authorization"].startswith("Bearer ")
    assert_clean(report)


async def test_swagger_signs_in_with_code_and_pkce_then_tries_it_out(
    server: RunningServer, tenant: Tenant, page_server: str
) -> None:
    docs = await create_client(
        tenant.id, f"Docs {uuid.uuid4().hex[:6]}", grant_types=["authorization_code"],
        scopes=sorted(ALL_SCOPES - {"api-keys:admin"}), role="staff", public=True,
        redirect_uris=[f"{server.base_url}/docs/oauth2-redirect.html"],
    )  # fmt: skip
    email = f"docs-{uuid.uuid4().hex[:10]}@example.com"
    await create_user(tenant.id, email, PASSWORD, "staff")
    report = await run_scenario(
        "swaggerPkce", api=server.base_url, clientId=docs.client.client_id, email=email,
        password=PASSWORD,
    )  # fmt: skip
    assert report["result"]["tokenStatus"] == 200
    assert report["result"]["status"] == 200
    assert report["result"]["authorization"].startswith("Bearer ")
    assert_clean(report)


async def test_a_single_page_app_signs_a_person_in_with_code_and_pkce(
    server: RunningServer, tenant: Tenant, page_server: str
) -> None:
    app = await create_client(
        tenant.id, f"SPA {uuid.uuid4().hex[:6]}", grant_types=["authorization_code"],
        scopes=sorted(ALL_SCOPES - {"api-keys:admin"}), role="staff", public=True,
        redirect_uris=[f"{page_server}/callback.html"],
    )  # fmt: skip
    email = f"spa-{uuid.uuid4().hex[:10]}@example.com"
    await create_user(tenant.id, email, PASSWORD, "staff")
    report = await run_scenario(
        "signin", page=page_server, api=server.base_url, clientId=app.client.client_id,
        email=email, password=PASSWORD,
    )  # fmt: skip
    assert report["result"] == {
        "stateMatches": True, "tokenStatus": 200, "ordersStatus": 200, "emailKept": email,
    }  # fmt: skip
    # The failed attempt's page answers 401 (a failed resource load in the console).
    report["console"] = [m for m in report["console"] if "401" not in m["text"]]
    assert_clean(report)
