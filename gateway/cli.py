"""The ``gateway`` command (also ``python -m gateway``).

    gateway serve [--host H] [--port P] [--workers N] [--dev]
    gateway migrate
    gateway seed [--org SLUG] [--customers N] [--products N] [--orders N]
    gateway create-org SLUG [--name NAME]

Configuration comes from the environment (see the README); a bad value stops
the command with one line naming the variable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from db.setup import apply_migrations, close_database, open_database
from gateway.settings import Settings, SettingsError, load_settings


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _with_database(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    await open_database(settings.tortoise_url)
    try:
        return await work()
    finally:
        await close_database()


def _prepare(settings: Settings) -> None:
    """Migrate and seed the embedded default before workers start (once, in this process)."""

    async def run() -> None:
        if settings.should_migrate:
            await apply_migrations(settings.tortoise_url)
        if settings.should_seed_demo:
            from db.seed import seed_demo

            if await _with_database(settings, seed_demo):
                _say("seeded the demo organization 'demo' (customers, products, orders)")

    asyncio.run(run())


def _banner(settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        f"gateway listening on {base}  (database: {settings.database_url.split('://')[0]}, "
        f"bus: {'redis' if settings.redis_url else 'in-process'}, workers: {settings.workers})",
        f"  API docs:  {base}/docs     OpenAPI: {base}/api/v1/openapi.json",
        f"  health:    {base}/healthz  {base}/readyz",
    ]
    if settings.dev_auth:
        lines += [
            "  DEV_AUTH is on: development tokens are accepted (never use this in production).",
            "  First request:",
            f"    curl -H 'Authorization: Bearer dev.demo.owner' {base}/api/v1/orders?page_size=5",
        ]
    else:
        lines.append(
            "  Authenticated requests need a token; for local tries start with --dev "
            "(development tokens dev.<org>.<role>)."
        )
    return "\n".join(lines)


def serve(settings: Settings) -> None:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from gateway.app import create_app

    _prepare(settings)
    loader = AppLoader(factory=partial(create_app, settings))
    app = loader.load()
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        single_process=settings.workers == 1,
        access_log=False,
        motd=False,
    )
    _say(_banner(settings))
    if settings.workers == 1:
        Sanic.serve_single(primary=app)
    else:
        Sanic.serve(primary=app, app_loader=loader)


def seed(settings: Settings, args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from db.seed import seed_dataset

    total = args.customers + args.products + args.orders
    with tqdm(total=total, unit="row", desc="seeding", disable=None) as bar:

        def progress(label: str, count: int) -> None:
            bar.set_postfix_str(label)
            if label != "items":
                bar.update(count)

        async def work() -> Any:
            return await seed_dataset(
                slug=args.org,
                name=args.name or args.org,
                customers=args.customers,
                products=args.products,
                orders=args.orders,
                progress=progress,
            )

        if settings.should_migrate:
            asyncio.run(apply_migrations(settings.tortoise_url))
        result = asyncio.run(_with_database(settings, work))
    _say(f"seeded {result}")


def create_org(settings: Settings, args: argparse.Namespace) -> None:
    from db.organizations import create_organization

    org = asyncio.run(
        _with_database(
            settings, lambda: create_organization(slug=args.slug, name=args.name or args.slug)
        )
    )
    _say(f"created organization {org}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP server")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--dev", action="store_true", help="accept development tokens (DEV_AUTH)")
    sub.add_parser("migrate", help="bring the database schema up to date")
    p = sub.add_parser("seed", help="insert a deterministic data set (for demos and load tests)")
    p.add_argument("--org", default="bench", help="organization slug (created if missing)")
    p.add_argument("--name")
    p.add_argument("--customers", type=int, default=1_000)
    p.add_argument("--products", type=int, default=500)
    p.add_argument("--orders", type=int, default=20_000)
    p = sub.add_parser("create-org", help="create an organization (a tenant)")
    p.add_argument("slug")
    p.add_argument("--name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.command == "serve":
        for key in ("host", "port", "workers"):
            if getattr(args, key) is not None:
                overrides[key] = getattr(args, key)
        if args.dev:
            overrides["dev_auth"] = True
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        _say(str(exc))
        return 2
    try:
        if args.command == "serve":
            serve(settings)
        elif args.command == "migrate":
            asyncio.run(apply_migrations(settings.tortoise_url, progress=_say))
            _say("database schema is up to date")
        elif args.command == "seed":
            seed(settings, args)
        elif args.command == "create-org":
            create_org(settings, args)
    except (OSError, ConnectionError) as exc:
        _say(f"error: cannot reach a required service: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
