"""Tortoise configuration for the gateway's one app, ``models``."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.config_generator import expand_db_url

MODELS_MODULE = "db.models"
MIGRATIONS_MODULE = "db.migrations"


def tortoise_config(db_url: str) -> dict[str, Any]:
    """The Tortoise config dict for ``db_url`` (already in Tortoise's URL form)."""
    connection = expand_db_url(db_url)
    if db_url.startswith("asyncpg://"):
        connection["engine"] = "db.pg"
    elif db_url.startswith("sqlite://"):
        connection["engine"] = "db.sqlite"
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Used only by the `tortoise` CLI when a developer runs `makemigrations`
# (see docs/decisions.md); the running gateway builds its config from Settings.
TORTOISE_ORM = tortoise_config("sqlite://:memory:")
