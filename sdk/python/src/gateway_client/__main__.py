"""Try the SDK: ``python -m gateway_client`` lists the newest orders, then follows changes.

With ``gateway serve`` running on the embedded default, from the repository root:

    .venv/bin/python -m gateway_client --credentials var/demo-credentials.json

Credentials: ``--credentials`` (a JSON file with ``client_id`` and ``client_secret``,
as the demo writes it), or ``--client-id``/``--client-secret``, or the environment
(``GATEWAY_CLIENT_ID``, ``GATEWAY_CLIENT_SECRET``; ``GATEWAY_URL`` for ``--url``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gateway_client.client import Client
from gateway_client.errors import GatewayError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway_client", description=__doc__)
    parser.add_argument("--url", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--credentials", type=Path, help="JSON with client_id, client_secret")
    parser.add_argument("--client-id", default=os.environ.get("GATEWAY_CLIENT_ID"))
    parser.add_argument("--client-secret", default=os.environ.get("GATEWAY_CLIENT_SECRET"))
    parser.add_argument("--topic", default="orders", help="what to follow (default: orders)")
    parser.add_argument("--events", type=int, default=0, help="stop after N events (0: never)")
    args = parser.parse_args(argv)
    client_id, secret = args.client_id, args.client_secret
    if args.credentials is not None:
        stored = json.loads(args.credentials.read_text())
        client_id, secret = stored["client_id"], stored["client_secret"]
    if not client_id or not secret:
        parser.error("give --credentials, or --client-id and --client-secret")
    try:
        with Client(args.url, client_id=client_id, client_secret=secret) as gw:
            if args.topic == "orders":
                page = gw.orders.list(order_by="created_at desc", page_size=5).first_page()
                for order in page.items:
                    print(f"order {order.id}: {order.status.value}, {order.total_cents} cents")
                print(f"(request {page.meta.request_id})")
            stream = gw.stream_events([args.topic])
            print(f"following {args.topic} (Ctrl-C to stop)", flush=True)
            for seen, event in enumerate(stream, 1):
                print(f"{event.position} {event.type} {event.resource_id}", flush=True)
                if seen == args.events:
                    break
            stream.close()
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
