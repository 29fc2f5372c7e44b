"""What lists and reads of one resource select: its table, columns, filter and sort fields.

A ``ResourceSpec`` also builds (once per field set) the select lists every read
uses, and runs them: ``rows`` decodes in Python, ``json_rows`` lets PostgreSQL
write each row's JSON.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from tortoise import fields as tfields
from tortoise.models import Model

from db.filtering import FilterField
from db.sql import Params, dialect, pg_json_time, select, select_json


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """One resource's table, the columns it returns, and what lists may filter and sort by.

    ``computed`` adds select-list expressions per dialect (``{alias}`` is the
    table alias), returned as JSON-decoded columns. ``json_columns`` are columns
    stored as JSON (a list of topics), decoded like them. ``masked`` columns are
    read as NULL whatever they hold: a secret is shown once, by the write that made
    it, and never by a read, a list or a change-log snapshot (all read through here).
    """

    name: str
    model: type[Model]
    columns: tuple[str, ...]
    filterable: Mapping[str, FilterField]
    sortable: tuple[str, ...]
    default_order: str = "created_at desc, id desc"
    computed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    json_columns: tuple[str, ...] = ()
    masked: tuple[str, ...] = ()
    datetime_columns: tuple[str, ...] = field(init=False)
    boolean_columns: tuple[str, ...] = field(init=False)
    _select_lists: dict[tuple[frozenset[str] | None, str | None], str] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        fields_map = self.model._meta.fields_map
        object.__setattr__(self, "_select_lists", {})
        object.__setattr__(
            self,
            "datetime_columns",
            tuple(c for c in self.columns if isinstance(fields_map.get(c), tfields.DatetimeField)),
        )
        object.__setattr__(
            self,
            "boolean_columns",
            tuple(c for c in self.columns if isinstance(fields_map.get(c), tfields.BooleanField)),
        )

    def _read(self, column: str) -> str:
        """How the select list reads ``column`` (over the table alias ``t``)."""
        return f"CAST(NULL AS TEXT) AS {column}" if column in self.masked else f"t.{column}"

    def column(self, public: str) -> str:
        spec = self.filterable.get(public)
        return spec.column or public if spec else public

    @property
    def table(self) -> str:
        name: str = self.model._meta.db_table
        return name

    def json_select_list(self, fields: Collection[str] | None = None) -> str:
        """PostgreSQL: the projection that ``json_rows`` turns into one JSON object per row."""
        wanted = None if fields is None else frozenset(fields)
        key = (wanted, "json")
        cached = self._select_lists.get(key)
        if cached is None:
            parts = [
                f"{pg_json_time('t.' + c)} AS {c}" if c in self.datetime_columns else self._read(c)
                for c in self.columns
                if wanted is None or c in wanted
            ]
            parts += [
                f"({expr['postgres'].format(alias='t')}) AS {n}"
                for n, expr in self.computed.items()
                if wanted is None or n in wanted
            ]
            cached = self._select_lists[key] = ", ".join(parts)
        return cached

    def select_list(self, fields: Collection[str] | None = None) -> str:
        """The select list for ``fields`` (all when None), over the table alias ``t``."""
        wanted = None if fields is None else frozenset(fields)
        computed = [n for n in self.computed if wanted is None or n in wanted]
        key = (wanted, dialect() if computed else None)
        cached = self._select_lists.get(key)
        if cached is None:
            columns = self.columns if wanted is None else [c for c in self.columns if c in wanted]
            parts = [self._read(c) for c in columns]
            parts += [
                f"({self.computed[n][str(key[1])].format(alias='t')}) AS {n}" for n in computed
            ]
            cached = self._select_lists[key] = ", ".join(parts)
        return cached

    async def rows(
        self, where: str, params: Params, tail: str = "", fields: Collection[str] | None = None
    ) -> list[dict[str, Any]]:
        """``SELECT <columns> FROM <table> t WHERE <where> <tail>`` as decoded dicts.

        ``fields`` limits the columns (computed ones are costly: skip what is not asked).
        """
        rows = await select(
            f"SELECT {self.select_list(fields)} FROM {self.table} t WHERE {where} {tail}",
            params.values,
            datetimes=self.datetime_columns,
            json=(*self.computed, *self.json_columns),
        )
        if self.boolean_columns and dialect() == "sqlite":  # SQLite answers 0 and 1
            for row in rows:
                for column in self.boolean_columns:
                    if row.get(column) is not None:
                        row[column] = bool(row[column])
        return rows

    async def json_rows(
        self, where: str, params: Params, tail: str = "", fields: Collection[str] | None = None
    ) -> list[str] | None:
        """The rows ``rows`` would return, each as JSON text built by PostgreSQL.

        ``row_to_json`` over a LATERAL projection of the row: columns keep their
        names, times are formatted as orjson writes them (``pg_json_time``) and
        computed fields, already JSON, are embedded as they are. The bytes equal
        what ``rest.wire`` would write for the decoded row, without decoding and
        re-encoding every value in Python. None on SQLite: use ``rows``.
        """
        return await select_json(
            f"SELECT row_to_json(j)::text FROM {self.table} t CROSS JOIN LATERAL "
            f"(SELECT {self.json_select_list(fields)}) j WHERE {where} {tail}",
            params.values,
        )
