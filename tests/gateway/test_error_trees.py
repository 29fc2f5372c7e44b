"""The class trees in the docstrings of ``db.errors`` and ``gateway.errors`` are true.

Each line of a tree names a class, its code and its HTTP status, indented under its
base; every error class a module defines is in its module's tree. So a class added,
moved or given another code fails here until the tree says so.
"""

from __future__ import annotations

import inspect
import re
from types import ModuleType

import pytest

from db import errors as db_errors
from db.errors import DomainError
from gateway import errors as gateway_errors

LINE = re.compile(
    r"^(?P<indent>[ │├└─]*?)(?P<name>[\w.]+)\s*(?P<code>[A-Z_]+)?\s*(?P<status>\d{3})?"
)


def tree(module: ModuleType) -> list[tuple[int, type, str | None, int | None]]:
    """(depth, class, code, status) for each line of the module docstring's tree."""
    rows = []
    for line in (module.__doc__ or "").splitlines():
        if not line.startswith("    ") or "(code, status)" in line:
            if "DomainError" in line and "(code, status)" in line:
                rows.append((0, DomainError, None, None))
            continue
        match = LINE.match(line[4:])
        if match is None or not (match["name"][0].isupper() or "." in match["name"]):
            continue
        name = match["name"]
        owner = module
        if "." in name:
            owner = {"db.errors": db_errors}[name.rsplit(".", 1)[0]]
            name = name.rsplit(".", 1)[1]
        cls = getattr(owner, name)
        depth = len(match["indent"]) // 4
        status = int(match["status"]) if match["status"] else None
        rows.append((depth, cls, match["code"], status))
    return rows


@pytest.mark.parametrize("module", [db_errors, gateway_errors], ids=lambda m: m.__name__)
def test_the_tree_is_true(module):
    rows = tree(module)
    assert rows[0][1] is DomainError
    parents: list[type] = []
    for depth, cls, code, status in rows:
        del parents[depth:]
        if parents:
            assert cls.__bases__ == (parents[-1],), (cls, parents[-1])
        if code is not None:
            assert (cls.code, cls.status) == (code, status), cls
        parents.append(cls)
    listed = {cls for _, cls, _, _ in rows}
    defined = {
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, DomainError) and cls.__module__ == module.__name__
    }
    assert defined <= listed, defined - listed


def test_each_code_has_one_meaning():
    """(The base's INTERNAL stands for no error of its own.)"""
    classes = {cls for m in (db_errors, gateway_errors) for _, cls, _, _ in tree(m)}
    classes.discard(DomainError)
    by_code: dict[str, set[tuple[int, str]]] = {}
    for cls in classes:
        by_code.setdefault(cls.code, set()).add((cls.status, cls.title))
    assert all(len(meanings) == 1 for meanings in by_code.values()), by_code
