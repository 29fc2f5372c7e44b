"""A 200 whose body is HTML or wrong-shaped JSON raises UnexpectedResponse, not a raw error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gateway_client import Client, UnexpectedResponse

pytestmark = pytest.mark.backend_independent

BODIES = {"html": (b"<html>proxy</html>", "text/html"), "shape": (b"[1, 2]", "application/json")}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, kind = BODIES[self.server.mode]  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["html", "shape"])
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.mode = request.param  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_bad_200_body_is_a_typed_error(server: str) -> None:
    with Client(server, api_key="k") as client, pytest.raises(UnexpectedResponse) as caught:
        client.customers.list().first_page()
    assert caught.value.status == 200
