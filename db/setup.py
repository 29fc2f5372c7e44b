"""Opening, migrating and closing the database."""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from importlib import import_module

from tortoise import Tortoise
from tortoise.migrations.api import migrate

from db.config import MIGRATIONS_MODULE, tortoise_config
from db.sql import client, dialect, select


async def apply_migrations(db_url: str, progress: Callable[[str], None] | None = None) -> None:
    """Bring the database at ``db_url`` to the current schema (idempotent).

    Without the per-statement bound serving uses: a migration may rewrite a table.
    """

    def report(event: str, app_label: str, name: str) -> None:
        if progress is not None:
            progress(f"{event} {app_label}.{name}")

    config = tortoise_config(db_url)
    config["connections"]["default"]["credentials"].pop("command_timeout", None)
    await migrate(config=config, progress=report)
    await Tortoise.close_connections()


async def open_database(db_url: str) -> None:
    """Initialise Tortoise for this process and check the database answers.

    Tortoise 1.x connects lazily, so ``select 1`` turns a dead database into a
    startup error instead of a failure on the first request.
    """
    await Tortoise.init(config=tortoise_config(db_url), _enable_global_fallback=True)
    await client().execute_query("SELECT 1")


async def close_database() -> None:
    await Tortoise.close_connections()


async def ping_database() -> None:
    await client().execute_query("SELECT 1")


def known_migrations() -> list[str]:
    """The names of this code's migrations (``db/migrations``), as the loader finds them."""
    package = import_module(MIGRATIONS_MODULE)
    return sorted(
        name
        for _, name, is_package in pkgutil.iter_modules(package.__path__)
        if not is_package and name[0] not in "_~"
    )


async def pending_migrations() -> list[str]:
    """This code's migrations the database has not recorded as applied (all, on an
    empty database). Migrations the database has beyond these (a newer release's)
    do not count: expand-then-contract keeps them compatible.

    One or two small statements, so readiness can ask while the schema is behind.
    """
    if dialect() == "postgres":
        exists = "SELECT to_regclass('tortoise_migrations') IS NOT NULL AS found"
    else:
        exists = (
            "SELECT count(*) AS found FROM sqlite_master"
            " WHERE type = 'table' AND name = 'tortoise_migrations'"
        )
    known = known_migrations()
    if not (await select(exists))[0]["found"]:
        return known
    rows = await select("SELECT name FROM tortoise_migrations WHERE app = $1", ["models"])
    applied = {row["name"] for row in rows}
    return [name for name in known if name not in applied]
