"""The ``gateway`` command (also ``python -m gateway``).

    gateway serve [--host H] [--port P] [--workers N]
    gateway migrate
    gateway seed [--org SLUG] [--customers N] [--products N] [--orders N]
    gateway create-org SLUG [--name NAME]
    gateway create-user ORG EMAIL [--role ROLE]   (password: GATEWAY_PASSWORD or a prompt)
    gateway create-client ORG NAME [--grant G ...] [--scope S ...] [--redirect-uri URI ...]
                                   [--public] [--role ROLE]
    gateway create-api-key ORG NAME --scope S [--scope S ...] [--expires-in-days N]
    gateway rotate-signing-key

Configuration comes from the environment (see the README); a bad value stops
the command with one line naming the variable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tortoise.exceptions import ValidationError as FieldTooLong

from db.errors import DomainError, InvalidArgument, NotFound
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

            creds = await _with_database(settings, seed_demo)
            if creds is not None:
                path = demo_credentials(settings)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(mode=0o600)
                path.write_text(json.dumps(creds, indent=2) + "\n")
                _say(f"seeded the demo organization 'demo' (data, a client and a user: {path})")

    asyncio.run(run())


def _banner(settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        f"gateway listening on {base}  (database: {settings.database_url.split('://')[0]}, "
        f"bus: {'redis' if settings.redis_url else 'in-process'}, workers: {settings.workers})",
        f"  API docs:  {base}/docs     OpenAPI: {base}/api/v1/openapi.json",
        f"  health:    {base}/healthz  {base}/readyz",
    ]
    demo = demo_credentials(settings)
    if settings.should_seed_demo and demo.exists():
        creds = json.loads(demo.read_text())
        lines += [
            "  Demo client (secrets in " + str(demo) + "). Get a token, then call the API:",
            f"    TOKEN=$(curl -s -u {creds['client_id']}:{creds['client_secret']} "
            f"-d grant_type=client_credentials {base}/oauth/token "
            "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
            f"    curl -H \"Authorization: Bearer $TOKEN\" '{base}/api/v1/orders?page_size=5'",
        ]
    else:
        lines.append(
            "  Requests need a token: create a client with `gateway create-client` and ask "
            f"{base}/oauth/token."
        )
    return "\n".join(lines)


def demo_credentials(settings: Settings) -> Path:
    """Where the embedded default keeps the demo client's secret (next to its database)."""
    if settings.is_sqlite:
        return Path(settings.database_url.split("://", 1)[1]).parent / "demo-credentials.json"
    return Path("var/demo-credentials.json")


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

    if not args.slug.strip():
        raise InvalidArgument("the organization slug may not be empty")
    org = asyncio.run(
        _with_database(
            settings, lambda: create_organization(slug=args.slug, name=args.name or args.slug)
        )
    )
    _say(f"created organization {org}")


async def _org_id(slug: str) -> int:
    from db.organizations import find_organization_id

    found = await find_organization_id(slug)
    if found is None:
        raise NotFound(f"no organization {slug!r} (create it with `gateway create-org`)")
    return found


def create_user_cmd(settings: Settings, args: argparse.Namespace) -> None:
    from db.accounts import create_user

    password = os.environ.get("GATEWAY_PASSWORD") or getpass.getpass("password: ")

    async def work() -> Any:
        return await create_user(await _org_id(args.org), args.email, password, args.role)

    user = asyncio.run(_with_database(settings, work))
    _say(f"created user {user.email} (id {user.id}, role {user.role}) in {args.org}")


def create_client_cmd(settings: Settings, args: argparse.Namespace) -> None:
    from db.accounts import create_client
    from db.principal import role_scopes

    async def work() -> Any:
        return await create_client(
            await _org_id(args.org), args.name,
            grant_types=args.grant or ["client_credentials"],
            # scopes the role cannot hold are refused (exit 2, naming them and the role)
            scopes=args.scope or sorted(role_scopes(args.role) - {"api-keys:admin"}),
            redirect_uris=args.redirect_uri, role=args.role, public=args.public,
        )  # fmt: skip

    new = asyncio.run(_with_database(settings, work))
    print(f"client_id={new.client.client_id}")
    if new.secret:
        print(f"client_secret={new.secret}")
    _say("store the secret now: it is not shown again" if new.secret else "public client (PKCE)")


def create_api_key_cmd(settings: Settings, args: argparse.Namespace) -> None:
    from datetime import UTC, datetime, timedelta

    from db.api_keys import ApiKeyInput, create_api_key
    from db.principal import Principal

    async def work() -> Any:
        principal = Principal(
            subject="cli", organization_id=await _org_id(args.org), scopes=frozenset({"*"}),
            roles=frozenset({"owner"}),
        )  # fmt: skip
        expires = (
            datetime.now(UTC) + timedelta(days=args.expires_in_days)
            if args.expires_in_days is not None
            else None
        )
        return await create_api_key(
            principal, ApiKeyInput(name=args.name, scopes=args.scope, expires_at=expires)
        )

    row, key = asyncio.run(_with_database(settings, work))
    print(key)
    _say(f"created API key {row['key_id']} ({row['scope']}); store it now: it is not shown again")


def rotate_key_cmd(settings: Settings) -> None:
    from gateway.auth.keys import rotate

    row = asyncio.run(_with_database(settings, lambda: rotate(settings.jwt_algorithm)))
    _say(
        f"new signing key {row.kid}; workers switch to it within a minute, and earlier keys "
        "stay in the JWKS until their tokens expire"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP server")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int)
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
    p = sub.add_parser("create-user", help="create a user who signs in (code flow)")
    p.add_argument("org")
    p.add_argument("email")
    p.add_argument("--role", default="staff", choices=("owner", "admin", "staff", "viewer"))
    p = sub.add_parser("create-client", help="register an OAuth2 client (prints its secret once)")
    p.add_argument("org")
    p.add_argument("name")
    p.add_argument(
        "--grant",
        action="append",
        choices=("client_credentials", "authorization_code", "refresh_token"),
    )
    p.add_argument(
        "--scope",
        action="append",
        help="allowed scope (repeat), one the role grants; default: the role's but api-keys:admin",
    )
    p.add_argument(
        "--redirect-uri",
        action="append",
        help="where codes are sent (repeat); clients must send one exactly as registered",
    )
    p.add_argument("--public", action="store_true", help="no secret: PKCE-only browser/mobile app")
    p.add_argument("--role", default="staff", choices=("owner", "admin", "staff", "viewer"))
    p = sub.add_parser("create-api-key", help="create an API key (prints it once)")
    p.add_argument("org")
    p.add_argument("name")
    p.add_argument("--scope", action="append", required=True)
    p.add_argument("--expires-in-days", type=int)
    sub.add_parser("rotate-signing-key", help="add a token signing key and retire the others")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.command == "serve":
        for key in ("host", "port", "workers"):
            if getattr(args, key) is not None:
                overrides[key] = getattr(args, key)
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
        elif args.command == "create-user":
            create_user_cmd(settings, args)
        elif args.command == "create-client":
            create_client_cmd(settings, args)
        elif args.command == "create-api-key":
            create_api_key_cmd(settings, args)
        elif args.command == "rotate-signing-key":
            rotate_key_cmd(settings)
    except DomainError as exc:
        _say(f"error: {exc.detail}")
        return 2
    except ValidationError as exc:
        _say(
            "error: "
            + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        )
        return 2
    except (FieldTooLong, OverflowError) as exc:  # longer than its column, or out of range
        _say(f"error: {exc}")
        return 2
    except (OSError, ConnectionError) as exc:
        _say(f"error: cannot reach a required service: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
