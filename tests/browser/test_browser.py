"""The gateway in a real browser: a page on another origin calls every HTTP door with
CORS, streams events over EventSource and a WebSocket, and signs a person in with
code + PKCE; Swagger UI and GraphiQL work on the first click. Every scenario ends
with zero console errors or warnings, page errors or failed requests.
"""

from __future__ import annotations

from tests.browser.conftest import UNAUTHORIZED, Browser, Served, assert_clean, expect_console


def test_a_page_on_another_origin_calls_rest_graphql_and_the_token_endpoint(
    served: Served, browser: Browser
) -> None:
    report = browser.run(
        "cors",
        page=served.page,
        api=served.api,
        token=served.token(),
        clientId=served.demo["client_id"],
        clientSecret=served.demo["client_secret"],
    )
    result = report["result"]
    assert result["list"]["status"] == 200
    assert result["list"]["etag"]  # exposed to the page by CORS
    assert result["list"]["requestId"]
    assert result["made"]["status"] == 201
    assert result["made"]["location"].startswith("/api/v1/customers/")
    assert result["made"]["etag"]
    assert result["made"]["requestId"]
    assert result["graphql"]["status"] == 200
    assert "errors" not in result["graphql"]["body"], result["graphql"]
    assert result["token"] == {"status": 200, "hasToken": True}
    assert result["refused"] == {"status": 401, "code": "UNAUTHENTICATED"}
    expect_console(report, UNAUTHORIZED)  # the refused call
    assert_clean(report)


def test_a_page_on_an_origin_not_named_can_neither_read_nor_open_a_socket(
    served: Served, browser: Browser
) -> None:
    # The same page server under its other name: another origin, not in CORS_ALLOW_ORIGINS.
    stranger = served.page.replace("//localhost:", "//127.0.0.1:")
    report = browser.run("stranger", stranger=stranger, api=served.api, token=served.token())
    assert report["result"] == {"read": "TypeError", "socket": "closed 1006"}
    # What the browser says is exactly that, and nothing else.
    texts = sorted(m["text"] for m in report["console"])
    assert len(texts) == 3, texts
    assert "blocked by CORS policy" in texts[0], texts
    assert texts[1] == "Failed to load resource: net::ERR_FAILED", texts
    assert texts[2].endswith("Unexpected response code: 403"), texts
    assert report["failedRequests"] == [f"GET {served.api}/api/v1/products: net::ERR_FAILED"]
    assert not report["pageErrors"], report["pageErrors"]


def test_an_event_source_with_a_ticket_receives_a_write(served: Served, browser: Browser) -> None:
    report = browser.run("eventsource", page=served.page, api=served.api, token=served.token())
    # Closing the stream at the end aborts its request: that one is expected.
    report["failedRequests"] = [
        r for r in report["failedRequests"] if not ("/api/v1/events?" in r and "ERR_ABORTED" in r)
    ]
    event = report["result"]["event"]
    assert event["data"]["type"] == "customer.created"
    assert event["data"]["data"]["email"] == report["result"]["email"]
    assert int(event["id"]) == event["data"]["position"]
    assert_clean(report)


def test_a_websocket_subscription_from_a_page_receives_a_write(
    served: Served, browser: Browser
) -> None:
    report = browser.run("websocket", page=served.page, api=served.api, token=served.token())
    result = report["result"]
    assert result["payload"]["data"]["customerEvents"] == {
        "type": "customer.created",
        "resource": "customer",
        "customer": {"email": result["email"]},
    }
    assert result["frames"][0] == "connection_ack", result["frames"]
    assert_clean(report)


def test_graphiql_takes_a_token_runs_its_first_query_and_shows_the_schema(
    served: Served, browser: Browser
) -> None:
    token = served.token()
    report = browser.run("graphiql", api=served.api, token=token)
    result = report["result"]
    assert result["schemaStatus"] == 200
    assert result["schemaAuthorization"] == f"Bearer {token}"  # the pasted header, at once
    assert result["keptStatus"] == 200  # the next visit kept the headers
    assert result["status"] == 200
    assert "errors" not in result["body"], result
    assert "orders" in result["body"]["data"]
    assert {"query", "mutation", "subscription"} <= set(result["rootTypes"]), result
    assert {"orders", "customers", "products"} <= set(result["queryFields"]), result
    assert_clean(report)


def test_swagger_authorize_then_try_it_out_returns_200(served: Served, browser: Browser) -> None:
    token = served.token()
    report = browser.run("swagger", api=served.api, token=token)
    assert report["result"]["status"] == 200
    assert report["result"]["authorization"] == f"Bearer {token}"
    assert_clean(report)


def test_swagger_authorizes_with_client_credentials_then_tries_it_out(
    served: Served, browser: Browser
) -> None:
    report = browser.run(
        "swaggerClient",
        api=served.api,
        clientId=served.demo["client_id"],
        clientSecret=served.demo["client_secret"],
    )
    assert report["result"]["tokenStatus"] == 200
    assert report["result"]["status"] == 200
    assert report["result"]["authorization"] == f"Bearer {report['result']['accessToken']}"
    assert_clean(report)


def test_swagger_signs_in_as_the_demo_docs_client_with_code_and_pkce(
    served: Served, browser: Browser
) -> None:
    report = browser.run(
        "swaggerPkce",
        api=served.api,
        clientId="demo-docs",
        email=served.demo["user"],
        password=served.demo["password"],
    )
    assert report["result"]["tokenStatus"] == 200
    assert report["result"]["status"] == 200
    assert report["result"]["authorization"].startswith("Bearer ")
    assert_clean(report)


def test_a_single_page_app_signs_a_person_in_with_code_and_pkce(
    served: Served, browser: Browser
) -> None:
    report = browser.run(
        "signin",
        page=served.page,
        api=served.api,
        clientId=served.spa_client_id,
        email=served.demo["user"],
        password=served.demo["password"],
    )
    result = report["result"]
    assert result["address"] == f"{served.page}/spa.html"  # the app took the code out of it
    assert result["orderCount"] > 0, result  # the demo's orders, read with the token
    assert {k: v for k, v in result.items() if k not in ("address", "orderCount")} == {
        "stateMatches": True,
        "tokenStatus": 200,
        "tokenType": "Bearer",
        "ordersStatus": 200,
        "emailKept": served.demo["user"],
    }
    expect_console(report, UNAUTHORIZED)  # the failed attempt's page answers 401
    assert_clean(report)
