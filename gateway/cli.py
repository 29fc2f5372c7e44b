"""The ``gateway`` command (also ``python -m gateway``): run, migrate and administer the gateway.

    gateway serve [--host H] [--port P] [--workers N]
    gateway migrate
    gateway seed [--org SLUG] [--name NAME] [--customers N] [--products N] [--orders N]
    gateway rotate-signing-key
    gateway create-org SLUG [--name NAME]          | list-orgs | delete-org SLUG [--force]
    gateway create-user ORG EMAIL [--role ROLE]    | list-users ORG | delete-user ORG EMAIL
    gateway create-client ORG NAME [--grant G ...] [--scope S ...] [--redirect-uri URI ...]
                                   [--public] [--role ROLE]
                                                   | list-clients ORG | delete-client ORG ID
    gateway create-api-key ORG NAME --scope S [--scope S ...] [--expires-in-days N]
                                                   | list-api-keys ORG | delete-api-key ORG KEY_ID
    gateway list-audit-events [ORG] [--limit N]

Results go to stdout: plain text by default (the created identifier, a table),
one JSON document with ``--json``. Messages, warnings and errors go to stderr,
one line per error, never a traceback for a mistake. Exit codes: 0 done;
1 failed (not found, conflict, a service or the database refused); 2 usage
(bad arguments, input or configuration); 130 interrupted.

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
from datetime import datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tortoise.exceptions import BaseORMException
from tortoise.exceptions import ValidationError as FieldTooLong

from db.errors import DomainError, FieldError, ValidationFailed
from db.setup import apply_migrations, close_database, open_database
from gateway.settings import Settings, SettingsError, load_settings

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130
ROLES = ("owner", "admin", "staff", "viewer")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


class Output:
    """Where a command's result goes: stdout, as plain text or one JSON document."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def result(self, data: Any, text: str | None) -> None:
        """``data`` as JSON with ``--json``; else ``text`` (nothing when None)."""
        if self.as_json:
            print(json.dumps(data, default=_plain, ensure_ascii=False), flush=True)
        elif text is not None:
            print(text, flush=True)

    def table(self, rows: list[dict[str, Any]], columns: Sequence[str], empty: str) -> None:
        """Rows as aligned columns under a header (``--json``: the list of rows)."""
        if self.as_json:
            self.result(rows, None)
            return
        if not rows:
            _say(empty)
            return
        cells = [[_cell(row.get(column)) for column in columns] for row in rows]
        header = [column.upper() for column in columns]
        widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(columns))]
        for line in [header, *cells]:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        sys.stdout.flush()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


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
            from gateway.dashboard import dashboard_redirect_uris

            creds = await _with_database(
                settings,
                lambda: seed_demo(
                    docs_redirect_uris=docs_redirect_uris(settings),
                    dashboard_redirect_uris=dashboard_redirect_uris(settings),
                ),
            )
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
        f"  health:    {base}/livez  {base}/readyz",
        f"  dashboard: {base}/dashboard  (live orders; sign in as a user of the organization)",
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


def docs_redirect_uris(settings: Settings) -> list[str]:
    """Where Swagger UI at ``/docs`` receives the authorization code: under
    ``PUBLIC_URL``, else this port on loopback (plain http is allowed there only)."""
    page = "/docs/oauth2-redirect.html"
    if settings.public_url:  # an http one off loopback could not receive codes
        uri = settings.public_url.rstrip("/") + page
        return [uri] if uri.startswith("https://") else []
    return [f"http://{host}:{settings.port}{page}" for host in ("127.0.0.1", "localhost")]


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


def _run(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(_with_database(settings, work))


class _Notices:
    """A command's revocation notices (``db.revocations.Notices``): ``db/`` announces
    each revocation once it has committed it, and ``_revoking`` publishes them all when
    the command's work ends (this process runs no denylist of its own)."""

    def __init__(self) -> None:
        self.pending: dict[str, float] = {}

    def announce(self, credential_id: str, expires_at: float) -> None:
        self.pending[credential_id] = max(expires_at, self.pending.get(credential_id, expires_at))


def _revoking(settings: Settings, work: Callable[[_Notices], Awaitable[Any]]) -> Any:
    """``_run`` for work that may revoke: what it revoked is announced to the running
    workers, even when the work fails after a revocation committed."""
    notices = _Notices()

    async def run() -> Any:
        try:
            return await work(notices)
        finally:
            await _announce(settings, notices.pending)

    return _run(settings, run)


async def _announce(settings: Settings, revoked: dict[str, float]) -> None:
    """Tell running workers of revocations the database now holds. They read them from
    the database anyway, within 30 s; through Redis (when configured) at once."""
    if not revoked or not settings.redis_url:
        return
    from gateway.auth.denylist import publish_notices
    from gateway.redis_client import redis_client

    redis = redis_client(settings.redis_url)
    try:
        async with asyncio.timeout(5):
            await publish_notices(redis, revoked)
    except (OSError, TimeoutError, ConnectionError) as exc:
        _say(
            f"warning: could not tell running workers through Redis ({type(exc).__name__}); "
            "they read the revocation from the database within 30 s"
        )
    except Exception as exc:  # redis-py's own errors: the revocation stands anyway
        _say(f"warning: could not publish the revocation notice ({type(exc).__name__})")
    finally:
        await redis.aclose()


async def _org_id(slug: str) -> int:
    from db.errors import NotFound
    from db.organizations import find_organization_id

    found = await find_organization_id(slug)
    if found is None:
        raise NotFound(f"no organization {slug!r} (see `gateway list-orgs`)")
    return found


def migrate_cmd(settings: Settings, out: Output) -> None:
    applied: list[str] = []

    def progress(line: str) -> None:
        applied.append(line)
        _say(line)

    asyncio.run(apply_migrations(settings.tortoise_url, progress=progress))
    _say("database schema is up to date")
    out.result({"applied": applied}, None)


def seed_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from tqdm import tqdm

    from db.seed import check_counts, seed_dataset

    check_counts(customers=args.customers, products=args.products, orders=args.orders)
    total = args.customers + args.products + args.orders
    with tqdm(total=total, unit="row", desc="seeding", disable=None) as bar:

        def progress(label: str, count: int) -> None:
            bar.set_postfix_str(label)
            if label != "items":
                bar.update(count)

        async def work() -> Any:
            return await seed_dataset(
                slug=args.org,
                name=args.org if args.name is None else args.name,
                customers=args.customers,
                products=args.products,
                orders=args.orders,
                progress=progress,
            )

        if settings.should_migrate:
            asyncio.run(apply_migrations(settings.tortoise_url))
        result = _run(settings, work)
    out.result(result, "\n".join(f"{key}={value}" for key, value in result.items()))
    _say(f"seeded organization {args.org!r} (one transaction)")


def rotate_key_cmd(settings: Settings, out: Output) -> None:
    from gateway.auth.keys import rotate

    row = _run(settings, lambda: rotate(settings.jwt_algorithm))
    out.result({"kid": row.kid, "algorithm": row.algorithm}, row.kid)
    _say(
        f"new signing key {row.kid}; workers switch to it within a minute, and earlier keys "
        "stay in the JWKS until their tokens expire"
    )


# --- organizations ------------------------------------------------------------------------


def create_org_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.organizations import create_organization

    org = _run(
        settings,
        lambda: create_organization(
            slug=args.slug, name=args.slug if args.name is None else args.name
        ),
    )
    out.result(org, org["slug"])
    _say(f"created organization {org['slug']} (id {org['id']})")


def list_orgs_cmd(settings: Settings, out: Output) -> None:
    from db.organizations import list_organizations

    rows = _run(settings, list_organizations)
    out.table(rows, ("id", "slug", "name", "created_at"), "no organizations")


def delete_org_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.organizations import delete_organization

    async def work(notices: _Notices) -> Any:
        deleted, revoked = await delete_organization(
            args.slug, force=args.force, access_token_ttl=settings.access_token_ttl_seconds
        )
        for credential_id, expires_at in revoked.items():
            notices.announce(credential_id, expires_at)
        return deleted

    deleted = _revoking(settings, work)
    out.result(deleted, deleted["slug"])
    held = ", ".join(
        f"{n} {label.replace('_', ' ')}" for label, n in deleted["deleted"].items() if n
    )
    _say(f"deleted organization {deleted['slug']}" + (f" with {held}" if held else ""))


# --- users --------------------------------------------------------------------------------


def create_user_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.accounts import create_user
    from db.audit import CLI

    password = os.environ.get("GATEWAY_PASSWORD") or getpass.getpass("password: ")

    async def work() -> Any:
        org_id = await _org_id(args.org)
        return await create_user(org_id, args.email, password, args.role, actor=CLI)

    user = _run(settings, work)
    row = {"id": user.id, "email": user.email, "role": user.role, "organization": args.org}
    out.result(row, user.email)
    _say(f"created user {user.email} (id {user.id}, role {user.role}) in {args.org}")


def list_users_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.accounts import list_users

    async def work() -> Any:
        return await list_users(await _org_id(args.org))

    rows = _run(settings, work)
    out.table(rows, ("id", "email", "role", "disabled", "created_at"), f"no users in {args.org}")


def delete_user_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.accounts import delete_user
    from db.audit import CLI

    async def work(notices: _Notices) -> Any:
        org_id = await _org_id(args.org)
        return await delete_user(org_id, args.email, notices=notices, actor=CLI)

    deleted = _revoking(settings, work)
    out.result(deleted, deleted["email"])
    _say(f"deleted user {deleted['email']} from {args.org}; their sign-ins are revoked")


# --- OAuth clients ------------------------------------------------------------------------


def create_client_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.accounts import create_client
    from db.audit import CLI
    from db.catalog import role_scopes
    from db.principal import PRIVILEGED

    async def work() -> Any:
        return await create_client(
            await _org_id(args.org),
            args.name,
            grant_types=args.grant or ["client_credentials"],
            # scopes the role cannot hold are refused (exit 2, naming them and the role)
            scopes=args.scope or sorted(role_scopes(args.role) - PRIVILEGED),
            redirect_uris=args.redirect_uri,
            role=args.role,
            public=args.public,
            actor=CLI,
        )

    new = _run(settings, work)
    text = f"client_id={new.client.client_id}"
    if new.secret:
        text += f"\nclient_secret={new.secret}"
    client = new.client
    out.result(
        {
            "client_id": client.client_id,
            "client_secret": new.secret,
            "name": client.name,
            "type": "confidential" if new.secret else "public",
            "role": client.role,
            "grant_types": client.grant_types,
            "scopes": client.scopes,
            "redirect_uris": client.redirect_uris,
        },
        text,
    )
    _say("store the secret now: it is not shown again" if new.secret else "public client (PKCE)")


def list_clients_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.accounts import list_clients

    async def work() -> Any:
        return await list_clients(await _org_id(args.org))

    rows = _run(settings, work)
    out.table(
        rows,
        ("client_id", "name", "type", "role", "grant_types", "scopes", "created_at"),
        f"no clients in {args.org}",
    )


def delete_client_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.accounts import delete_client
    from db.audit import CLI

    async def work(notices: _Notices) -> Any:
        return await delete_client(
            await _org_id(args.org),
            args.client_id,
            notices=notices,
            actor=CLI,
            access_token_ttl=settings.access_token_ttl_seconds,
        )

    deleted = _revoking(settings, work)
    out.result(deleted, deleted["client_id"])
    _say(f"deleted client {deleted['client_id']} from {args.org}; every token it issued is revoked")


# --- API keys -----------------------------------------------------------------------------


def _owner(organization_id: int) -> Any:
    from db.audit import CLI
    from db.principal import Principal

    return Principal(
        subject=CLI,
        organization_id=organization_id,
        scopes=frozenset({"*"}),
        roles=frozenset({"owner"}),
    )


def create_api_key_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from datetime import UTC, timedelta

    from db.api_keys import ApiKeyInput, create_api_key

    async def work() -> Any:
        principal = _owner(await _org_id(args.org))
        expires = (
            datetime.now(UTC) + timedelta(days=args.expires_in_days)
            if args.expires_in_days is not None
            else None
        )
        return await create_api_key(
            principal, ApiKeyInput(name=args.name, scopes=args.scope, expires_at=expires)
        )

    row, key = _run(settings, work)
    out.result({**row, "key": key}, key)
    _say(
        f"created API key {row['key_id']} ({' '.join(row['scopes'])}); "
        "store it now: it is not shown again"
    )


def list_api_keys_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.api_keys import organization_api_keys

    async def work() -> Any:
        return await organization_api_keys(await _org_id(args.org))

    rows = _run(settings, work)
    out.table(
        rows,
        ("key_id", "name", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at"),
        f"no API keys in {args.org}",
    )


def delete_api_key_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.api_keys import find_api_key, revoke_api_key

    async def work(notices: _Notices) -> Any:
        org_id = await _org_id(args.org)
        ident = await find_api_key(org_id, args.key_id)
        return await revoke_api_key(_owner(org_id), ident, notices=notices)

    row = _revoking(settings, work)
    out.result(row, row["key_id"])
    _say(f"revoked API key {row['key_id']} in {args.org} (it stays listed, as revoked)")


# --- the audit log ------------------------------------------------------------------------


def list_audit_cmd(settings: Settings, args: argparse.Namespace, out: Output) -> None:
    from db.audit import MAX_OPERATOR_ROWS, operator_audit_events
    from db.errors import InvalidArgument

    if not 1 <= args.limit <= MAX_OPERATOR_ROWS:
        raise InvalidArgument(f"--limit: 1 to {MAX_OPERATOR_ROWS}, got {args.limit}")

    async def work() -> Any:
        org_id = None if args.org is None else await _org_id(args.org)
        return await operator_audit_events(org_id, args.limit)

    rows = _run(settings, work)
    out.table(
        rows,
        ("id", "occurred_at", "actor", "action", "target_type", "target_id", "request_id"),
        f"no audit entries for {args.org}" if args.org else "no installation-wide audit entries",
    )


# --- the parser ---------------------------------------------------------------------------


class _Help(argparse.RawDescriptionHelpFormatter):
    """Option help that ends with the option's default, when it has a telling one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or not action.option_strings
            or default in (None, False, argparse.SUPPRESS)
            or isinstance(action, argparse._HelpAction | argparse._VersionAction)
        ):
            return text
        return f"{text} (default: %(default)s)"


def _version() -> str:
    try:
        return version("commerce-gateway")
    except PackageNotFoundError:  # running from a tree that was never installed
        return "unknown"


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description=__doc__.split("\n\n")[0],
        formatter_class=_Help,
        epilog="Exit codes: 0 done, 1 failed, 2 usage or invalid input, 130 interrupted. "
        "Every command takes --json (one JSON document on stdout) and --help.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {_version()}",
        help="print the installed version and exit",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", help="print the result as one JSON document on stdout"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=text, description=text, parents=[common], formatter_class=_Help
        )

    p = command("serve", "run the HTTP server")
    p.add_argument("--host", help="address to listen on (default: HOST, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: PORT, else 8000)")
    p.add_argument("--workers", type=int, help="worker processes (default: WORKERS, else 1)")
    command("migrate", "bring the database schema up to date")
    p = command("seed", "insert a deterministic data set, all or nothing (demos, load tests)")
    p.add_argument("--org", default="bench", help="organization slug (created if missing)")
    p.add_argument("--name", help="name of a new organization (default: its slug)")
    p.add_argument("--customers", type=_count, default=1_000, help="customers, 1 to 1,000,000")
    p.add_argument("--products", type=_count, default=500, help="products, 1 to 1,000,000")
    p.add_argument("--orders", type=_count, default=20_000, help="orders, 1 to 1,000,000")
    command("rotate-signing-key", "add a token signing key and retire the others")

    p = command("create-org", "create an organization (a tenant); prints its slug")
    p.add_argument("slug", help="1-63 lowercase letters, digits, hyphens; no hyphen first or last")
    p.add_argument("--name", help="display name (default: the slug)")
    command("list-orgs", "list organizations")
    p = command("delete-org", "delete an organization")
    p.add_argument("slug", help="the organization's slug")
    p.add_argument(
        "--force",
        action="store_true",
        help="also delete everything it holds (data, users, clients, API keys), revoking "
        "its tokens and keys; without it an organization that holds anything is refused",
    )

    p = command("create-user", "create a user who signs in (code flow); prints the email")
    p.add_argument("org", help="organization slug")
    p.add_argument("email", help="sign-in email (stored lower-case)")
    p.add_argument("--role", default="staff", choices=ROLES, help="role in the organization")
    p.epilog = "The password comes from GATEWAY_PASSWORD, else a prompt (12 characters or more)."
    p = command("list-users", "list an organization's users")
    p.add_argument("org", help="organization slug")
    p = command("delete-user", "delete a user and revoke their sign-ins")
    p.add_argument("org", help="organization slug")
    p.add_argument("email", help="the user's email")

    p = command("create-client", "register an OAuth2 client (prints its secret once)")
    p.add_argument("org", help="organization slug")
    p.add_argument("name", help="display name, shown to users who sign in")
    p.add_argument(
        "--grant",
        action="append",
        choices=("client_credentials", "authorization_code", "refresh_token"),
        help="grant type the client may use (repeat) (default: client_credentials)",
    )
    p.add_argument(
        "--scope",
        action="append",
        help="allowed scope (repeat), one the role grants (default: the role's but the "
        "privileged api-keys:admin, webhooks:admin and audit:read)",
    )
    p.add_argument(
        "--redirect-uri",
        action="append",
        help="where codes are sent (repeat): https, http only on 127.0.0.1/[::1]/localhost, "
        "or a reverse-domain scheme; no fragment. Clients send one exactly as registered",
    )
    p.add_argument("--public", action="store_true", help="no secret: PKCE-only browser/mobile app")
    p.add_argument(
        "--role", default="staff", choices=ROLES, help="what the client holds acting for itself"
    )
    p = command("list-clients", "list an organization's OAuth2 clients (never their secrets)")
    p.add_argument("org", help="organization slug")
    p = command("delete-client", "delete an OAuth2 client and revoke every token it issued")
    p.add_argument("org", help="organization slug")
    p.add_argument("client_id", help="the client's client_id")

    p = command("create-api-key", "create an API key (prints it once)")
    p.add_argument("org", help="organization slug")
    p.add_argument("name", help="what the key is for")
    p.add_argument("--scope", action="append", required=True, help="scope the key holds (repeat)")
    p.add_argument(
        "--expires-in-days", type=int, help="days until it expires (default: never expires)"
    )
    p = command("list-api-keys", "list an organization's API keys (revoked ones too)")
    p.add_argument("org", help="organization slug")
    p = command("delete-api-key", "revoke an API key at once (it stays listed, as revoked)")
    p.add_argument("org", help="organization slug")
    p.add_argument("key_id", help="the key id (KEY_ID in list-api-keys), or the key itself")

    p = command(
        "list-audit-events",
        "list the newest audit entries (admin writes): an organization's, or without ORG "
        "the installation-wide ones (signing keys)",
    )
    p.add_argument("org", nargs="?", help="organization slug (default: installation-wide)")
    p.add_argument("--limit", type=_count, default=50, help="how many, newest first")
    return parser


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace, Output], None]] = {
    "migrate": lambda s, _a, o: migrate_cmd(s, o),
    "seed": seed_cmd,
    "rotate-signing-key": lambda s, _a, o: rotate_key_cmd(s, o),
    "create-org": create_org_cmd,
    "list-orgs": lambda s, _a, o: list_orgs_cmd(s, o),
    "delete-org": delete_org_cmd,
    "create-user": create_user_cmd,
    "list-users": list_users_cmd,
    "delete-user": delete_user_cmd,
    "create-client": create_client_cmd,
    "list-clients": list_clients_cmd,
    "delete-client": delete_client_cmd,
    "create-api-key": create_api_key_cmd,
    "list-api-keys": list_api_keys_cmd,
    "delete-api-key": delete_api_key_cmd,
    "list-audit-events": list_audit_cmd,
}


def _field_errors(errors: Sequence[FieldError]) -> str:
    return "; ".join(f"{'.'.join(map(str, e.loc[1:])) or 'input'}: {e.msg}" for e in errors)


def _database_error(exc: BaseORMException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return f"the database has no schema yet ({text}); run `gateway migrate`"
    return f"the database refused: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # usage errors: exit 2, from argparse
    overrides: dict[str, Any] = {}
    if args.command == "serve":
        for key in ("host", "port", "workers"):
            if getattr(args, key) is not None:
                overrides[key] = getattr(args, key)
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        _say(str(exc))
        return USAGE
    out = Output(args.json)
    try:
        if args.command == "serve":
            serve(settings)
        else:
            COMMANDS[args.command](settings, args, out)
    except ValidationFailed as exc:
        _say(f"error: {_field_errors(exc.errors) if exc.errors else exc.detail}")
        return USAGE
    except DomainError as exc:
        _say(f"error: {exc.detail}")
        return USAGE if exc.status in (400, 422) else FAILED
    except ValidationError as exc:
        _say(
            "error: "
            + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        )
        return USAGE
    except (FieldTooLong, OverflowError) as exc:  # longer than its column, or out of range
        _say(f"error: {exc}")
        return USAGE
    except BaseORMException as exc:
        _say(f"error: {_database_error(exc)}")
        return FAILED
    except (OSError, ConnectionError) as exc:
        _say(f"error: cannot reach a required service: {exc}")
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as exc:
        if os.environ.get("GATEWAY_TRACEBACK"):
            raise
        _say(
            f"error: unexpected {type(exc).__name__}: {exc} (set GATEWAY_TRACEBACK=1 to see where)"
        )
        return FAILED
    return OK
