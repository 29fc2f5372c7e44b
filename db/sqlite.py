"""The SQLite backend: Tortoise's client, telling its commits (``db.commits``), its
statements traced while tracing is on (``db.tracing``)."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import NestedTransactionContext, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)

from db import tracing
from db.commits import Commits


class GatewaySqliteTransactionWrapper(tracing.TracedStatements, SqliteTransactionWrapper):
    """A transaction's client, its statements traced (``db.tracing``), savepoints too."""

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(GatewaySqliteTransactionWrapper(self))


class GatewaySqliteClient(tracing.TracedStatements, SqliteClient):
    def __init__(self, file_path: str, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        self.commits = Commits()

    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(GatewaySqliteTransactionWrapper(self), self._lock)


client_class = GatewaySqliteClient
