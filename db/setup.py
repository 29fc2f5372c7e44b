"""Opening, migrating and closing the database."""

from __future__ import annotations

from collections.abc import Callable

from tortoise import Tortoise
from tortoise.migrations.api import migrate

from db.config import tortoise_config
from db.sql import client


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
