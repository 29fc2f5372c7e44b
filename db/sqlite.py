"""The SQLite backend: Tortoise's client, telling its commits (``db.commits``)."""

from __future__ import annotations

from typing import Any

from tortoise.backends.sqlite.client import SqliteClient

from db.commits import Commits


class GatewaySqliteClient(SqliteClient):
    def __init__(self, file_path: str, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        self.commits = Commits()


client_class = GatewaySqliteClient
