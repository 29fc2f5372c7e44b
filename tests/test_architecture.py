"""The import rules of docs/architecture.md, checked on every module's imports.

Every ``.py`` file of the five packages is read with ``ast`` (nothing is imported):
top-level imports, imports inside functions, ``importlib.import_module("...")`` with a
literal name, and imports under ``if TYPE_CHECKING:``, each marked with its kind. The
layer rules apply to every kind (naming a type couples code too); the cycle check
counts what runs (``TYPE_CHECKING`` excluded, function-level included: moving an import
into a function hides a cycle from Python, not from the design).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "db", "rest", "resolvers", "realtime")
DOORS = frozenset({"rest", "resolvers", "realtime"})
# Door -> doors it may import: GraphQL subscriptions ride realtime's hub and admission.
DOOR_MAY_IMPORT = {
    "rest": frozenset(),
    "resolvers": frozenset({"realtime"}),
    "realtime": frozenset(),
}
COMPOSITION_ROOT = "gateway.app"
ENTRY_POINTS = frozenset({"gateway.app", "gateway.cli", "gateway.__main__"})
# The one gateway module besides the root that may name door types (TYPE_CHECKING only):
# the typed app context.
TYPES_DOORS = frozenset({"gateway.context"})

# Known runtime cycles, as the edge (importer, imported) whose removal breaks each one,
# with the reason. Shrink only: test_known_cycles_are_still_cycles fails when an entry
# no longer closes a cycle. Empty since issue 15 removed resolvers.ws -> resolvers.http
# (the WebSocket adapter imported the HTTP view's helpers inside a function, the view
# imported the adapter); keep it empty.
KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {}

Kind = Literal["top", "function", "type_checking"]


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # importing module, e.g. "resolvers.ws"
    target: str  # imported module, resolved to one of ours where it is ours
    line: int
    kind: Kind

    def __str__(self) -> str:
        where = "" if self.kind == "top" else f", {self.kind.replace('_', ' ')}"
        return f"{self.source} -> {self.target} (line {self.line}{where})"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    return {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(name: str, modules: Mapping[str, object]) -> str:
    """``name`` if it is one of ours, else its longest prefix that is, else ``name``."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return name


def imports_of(
    source: str, text: str, modules: Mapping[str, object], *, is_package: bool = False
) -> list[Import]:
    """Every import in ``text`` (module ``source``), with its kind."""
    found: list[Import] = []

    def add(name: str, line: int, kind: Kind) -> None:
        found.append(Import(source, _resolve(name, modules), line, kind))

    def visit(node: ast.AST, kind: Kind) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for inner in child.body:
                    visit_node(inner, "type_checking")
                for inner in child.orelse:
                    visit_node(inner, kind)
            else:
                visit_node(child, kind)

    def visit_node(node: ast.AST, kind: Kind) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, kind)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = source.split(".") if is_package else source.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                add(submodule if submodule in modules else base, node.lineno, kind)
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "import_module")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            add(node.args[0].value, node.lineno, kind)
            visit(node, kind)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            visit(node, "type_checking" if kind == "type_checking" else "function")
        else:
            visit(node, kind)

    visit(ast.parse(text), "top")
    return found


@cache
def project_imports() -> tuple[Import, ...]:
    modules = find_modules(ROOT)
    return tuple(
        found
        for name, path in modules.items()
        for found in imports_of(
            name, path.read_text(encoding="utf-8"), modules, is_package=path.stem == "__init__"
        )
        if found.target != name
    )


def _package(module: str) -> str:
    return module.split(".", 1)[0]


def layer_violations(imports: Iterable[Import]) -> Iterator[str]:
    """Each import that breaks a rule of docs/architecture.md, with the rule."""
    for imp in imports:
        source, target = _package(imp.source), _package(imp.target)
        if target not in PACKAGES or (source == target and imp.target != COMPOSITION_ROOT):
            continue
        if source == "db":
            yield f"{imp}: db/ imports no other package of ours (rule 1)"
        elif source == "gateway" and target in DOORS:
            if imp.source == COMPOSITION_ROOT:
                continue
            if imp.kind == "type_checking" and imp.source in TYPES_DOORS:
                continue
            yield f"{imp}: only gateway/app.py imports the doors (rule 2)"
        elif source in DOORS and target in DOORS and target not in DOOR_MAY_IMPORT[source]:
            yield f"{imp}: {source}/ may not import {target}/ (rule 3)"
        elif imp.target in ENTRY_POINTS and source in DOORS:
            yield f"{imp}: a door never imports the app or the CLI (rule 4)"
        elif imp.target == COMPOSITION_ROOT and imp.source != "gateway.cli":
            yield f"{imp}: only gateway/cli.py imports gateway.app (rule 4)"


def runtime_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        if imp.kind != "type_checking" and _package(imp.target) in PACKAGES:
            graph[imp.source].add(imp.target)
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        work.append((start, iter(sorted(graph.get(start, ())))))
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _describe(component: list[str], imports: Iterable[Import]) -> str:
    members = set(component)
    edges = sorted(
        {
            str(imp)
            for imp in imports
            if imp.kind != "type_checking" and imp.source in members and imp.target in members
        }
    )
    return "cycle " + " / ".join(component) + ": " + "; ".join(edges)


# -- the project ------------------------------------------------------------------------


def test_every_module_is_read() -> None:
    modules = find_modules(ROOT)
    for expected in ("db.events", "gateway.app", "rest", "resolvers.ws", "realtime.hub"):
        assert expected in modules
    sources = {imp.source for imp in project_imports()}
    assert {"db.events", "gateway.app", "realtime.relay"} <= sources


def test_imports_follow_the_layers() -> None:
    violations = sorted(set(layer_violations(project_imports())))
    assert violations == [], "see docs/architecture.md, Import rules:\n" + "\n".join(violations)


def test_no_runtime_import_cycles() -> None:
    imports = project_imports()
    graph = runtime_graph(imports)
    for source, target in KNOWN_CYCLE_EDGES:
        graph[source].discard(target)
    found = [_describe(component, imports) for component in cycles(graph)]
    assert found == [], "import cycles:\n" + "\n".join(found)


def test_known_cycles_are_still_cycles() -> None:
    """An allow-listed edge that no longer closes a cycle must leave the list."""
    component_of = {m: c for c in cycles(runtime_graph(project_imports())) for m in c}
    stale = [
        f"{source} -> {target}"
        for source, target in KNOWN_CYCLE_EDGES
        if target not in component_of.get(source, ())
    ]
    assert stale == [], f"close no cycle any more, remove from KNOWN_CYCLE_EDGES: {stale}"


# -- the checker itself -----------------------------------------------------------------

_FAKE = dict.fromkeys(
    (
        "db",
        "db.models",
        "db.events",
        "gateway",
        "gateway.app",
        "gateway.settings",
        "rest",
        "rest.wire",
        "realtime",
        "realtime.hub",
        "resolvers",
        "resolvers.http",
    )
)


def test_every_kind_of_import_is_seen() -> None:
    text = """
from __future__ import annotations
import typing
from typing import TYPE_CHECKING
import db.models
from db import events
from . import wire
if TYPE_CHECKING:
    from realtime.hub import Hub
    def f():
        import gateway.app
if typing.TYPE_CHECKING:
    import resolvers
else:
    import realtime
try:
    from gateway.settings import Settings
except ImportError:
    pass
class A:
    import sanic
async def handler():
    from resolvers.http import view
    importlib.import_module("gateway.app")
"""
    found = {(i.target, i.kind) for i in imports_of("rest.standard", text, _FAKE)}
    assert found >= {
        ("db.models", "top"),
        ("db.events", "top"),
        ("rest.wire", "top"),
        ("realtime.hub", "type_checking"),
        ("gateway.app", "type_checking"),
        ("resolvers", "type_checking"),
        ("realtime", "top"),
        ("gateway.settings", "top"),
        ("sanic", "top"),
        ("resolvers.http", "function"),
        ("gateway.app", "function"),
    }
    relative = imports_of("rest", "from .wire import x\n", _FAKE, is_package=True)
    assert [i.target for i in relative] == ["rest.wire"]


def test_each_rule_is_enforced() -> None:
    def imp(source: str, target: str, kind: Kind = "top") -> Import:
        return Import(source, target, 1, kind)

    bad = [
        imp("db.events", "gateway.settings", "type_checking"),
        imp("gateway.health", "realtime.hub"),
        imp("gateway.health", "realtime.hub", "type_checking"),
        imp("gateway.context", "realtime.hub"),
        imp("realtime.hub", "resolvers.http", "function"),
        imp("rest.wire", "realtime.hub", "type_checking"),
        imp("resolvers.http", "rest"),
        imp("rest.wire", "gateway.app", "function"),
        imp("gateway.workers", "gateway.app"),
    ]
    good = [
        imp("db.events", "db.models"),
        imp("gateway.app", "realtime.hub"),
        imp("gateway.context", "realtime.hub", "type_checking"),
        imp("resolvers.ws", "realtime.hub"),
        imp("rest.wire", "gateway.errors"),
        imp("gateway.cli", "gateway.app", "function"),
        imp("gateway.auth", "db.principal"),
    ]
    assert len(list(layer_violations(bad))) == len(bad)
    assert list(layer_violations(good)) == []


def test_a_cycle_through_a_function_level_import_is_found() -> None:
    imports = imports_of("db.events", "import db.models\n", _FAKE) + imports_of(
        "db.models", "def f():\n    from db import events\n", _FAKE
    )
    imports += imports_of("db", "if TYPE_CHECKING:\n    import db.events\n", _FAKE)
    assert cycles(runtime_graph(imports)) == [["db.events", "db.models"]]
