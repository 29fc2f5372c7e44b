"""What type definitions tell the fast engine, importable without the engine.

A resolver field whose result is a pure, cheap read of its source declares that
read with ``metadata=fast_field(getter)``; the fast engine then reads it without
calling the resolver (``resolvers/engine/fastexec.py``). A getter returns
``NOT_LOADED`` whenever the resolver would have to do more (load something,
check something), and the resolver runs instead. The standard engine ignores
both: the resolver always runs, and gives the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The ``metadata`` key of a resolver field's equivalent pure getter.
FAST_GETTER = "gateway.fast_getter"
NOT_LOADED: Any = type("NotLoaded", (), {"__repr__": lambda self: "NOT_LOADED"})()


def fast_field(getter: Callable[[Any], Any]) -> dict[str, Any]:
    """``metadata`` for a resolver field whose result is ``getter(source)``.

    The getter must be pure and cheap, and return ``NOT_LOADED`` whenever the
    resolver would have to do more (load something, check something).
    """
    return {FAST_GETTER: getter}
