"""Try outgoing webhooks against a running gateway: ``ops/scripts/try-webhooks``.

It starts a receiver on loopback that checks every request with the Standard Webhooks
reference library, registers it as a webhook endpoint for ``orders`` (through the
Python SDK, with the demo client), places an order, and prints the signed delivery
as the receiver saw it and as the endpoint's delivery log records it. It deletes the
endpoint when done. The gateway must allow loopback targets:
``WEBHOOK_ALLOW_PRIVATE_TARGETS`` is on by default when ``ENVIRONMENT=development``,
as ``ops/scripts/serve`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gateway_client import Client
from gateway_client.errors import GatewayError
from standardwebhooks import Webhook, WebhookVerificationError

Received = tuple[dict[str, str], dict[str, Any] | None, str]  # headers, event, verdict


def receiver(secret_box: list[str], received: queue.Queue[Received]) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 (a free port) that verifies and records each delivery."""

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = Webhook(secret_box[0]).verify(body, headers)
                verdict = "signature verified"
            except (WebhookVerificationError, IndexError) as exc:
                event, verdict = None, f"REFUSED: {exc}"
            self.send_response(204 if event is not None else 400)
            self.end_headers()
            received.put((headers, event, verdict))

        def log_message(self, *_: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ops/scripts/try-webhooks", description=__doc__)
    parser.add_argument("--url", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--credentials", type=Path, default=Path("var/demo-credentials.json"))
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for delivery")
    args = parser.parse_args(argv)
    if not args.credentials.exists():
        parser.error(f"{args.credentials} is missing: start the gateway with ops/scripts/serve")
    stored = json.loads(args.credentials.read_text())
    secret_box: list[str] = []
    received: queue.Queue[Received] = queue.Queue()
    server = receiver(secret_box, received)
    target = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        with Client(
            args.url, client_id=stored["client_id"], client_secret=stored["client_secret"]
        ) as gw:
            endpoint = gw.webhook_endpoints.create(
                {"url": target, "topics": ["orders"], "description": "ops/scripts/try-webhooks"}
            )
            assert endpoint.secret is not None
            secret_box.append(endpoint.secret)
            print(f"registered webhook endpoint {endpoint.id} -> {target}")
            print(f"its signing secret, shown once: {endpoint.secret[:12]}...")
            try:
                customer = gw.customers.list(page_size=1).first_page().items[0]
                product = gw.products.list(filter="stock >= 1", page_size=1).first_page().items[0]
                order = gw.orders.create(
                    {
                        "customer_id": customer.id,
                        "items": [{"product_id": product.id, "quantity": 1}],
                    }
                )
                print(f"placed order {order.id} (request {order.meta.request_id})")
                try:
                    headers, event, verdict = received.get(timeout=args.wait)
                except queue.Empty:
                    print(f"no delivery within {args.wait:.0f} s", file=sys.stderr)
                    return 1
                print(f"delivery received: {verdict}")
                for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
                    print(f"  {name}: {headers.get(name)}")
                if event is None:
                    return 1
                print(f"  event: {event['type']} {event['resource']} {event['resource_id']}")
                # The dispatcher logs the attempt once the receiver has answered.
                deadline = time.monotonic() + args.wait
                while True:
                    log = gw.webhook_endpoints.list_deliveries(endpoint.id, page_size=5)
                    attempts = log.first_page().items
                    if attempts or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                for attempt in attempts:
                    print(
                        f"delivery log: position {attempt.position} attempt {attempt.attempt}"
                        f" {attempt.outcome} HTTP {attempt.http_status} in {attempt.latency_ms} ms"
                    )
            finally:
                gw.webhook_endpoints.delete(endpoint.id)
                print(f"deleted webhook endpoint {endpoint.id}")
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
