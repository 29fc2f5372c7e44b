"""Limits on what one GraphQL document may ask for, measured in time linear in its size.

A document is measured once, before graphql-core validates it, so no rule ever
sees a document whose worst case is large:

- ``max_bytes`` and ``max_tokens`` bound parsing (the parser stops early);
- the fragments are put in dependency order without recursion, and each
  fragment's totals are computed once from its own selections and its
  dependencies' totals: depth, aliases, cost, fields and spreads with fragments
  inlined, without ever inlining them. A fragment that spreads the next one twice,
  thirty times over, costs thirty small steps, not 2^30;
- ``max_spreads`` refuses fan-out (spreads with fragments inlined), and
  ``max_fields`` refuses documents that are large once inlined. Fields selected
  several times at the same response path count the square of their number,
  since that is what checking that they can be merged costs graphql-core's
  ``OverlappingFieldsCanBeMergedRule``: it compares them pairwise. That count is
  only taken (by inlining) once the plain count is known to be under the limit,
  so its work is bounded by the limit too;
- depth follows Strawberry's ``QueryDepthLimiter`` (a field with a selection is
  one level, introspection fields do not count; the parser caps nesting at 200);
  aliases are counted with fragments inlined, as Strawberry's ``MaxAliasesLimiter``
  does; cost estimates how many objects a document can make the server build:
  every field costs 1, and a list multiplies its selection by its page size
  (``first``, or the maximum page size when ``first`` is a variable or missing).
  Computed lists (an order's items) count as their declared weight.

Every refusal carries ``extensions.code``: ``QUERY_TOO_LARGE`` (bytes, tokens),
``QUERY_TOO_COMPLEX`` (depth, aliases, fields, spreads, fragment nesting) or
``QUERY_TOO_COSTLY`` (cost), with the measured value and the limit.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.utils.str_converters import to_camel_case

from db.catalog import CATALOG
from gateway.settings import PAGE_SIZE_MAX

if TYPE_CHECKING:
    from gateway.settings import Settings

# Fields that return a page, with the declared weight of one object: their ``first`` (else
# the maximum page size) times the weight multiplies their selection. Every declared
# resource's connection and to-many relations, the audit log's connection, and a
# webhook endpoint's lists (resolvers/webhooks.py).
LIST_FIELDS: dict[str, int] = {
    **{
        to_camel_case(rel.name): CATALOG.by_name[rel.target].cost
        for r in CATALOG.resources
        for rel in r.relations
        if rel.many
    },
    **{to_camel_case(r.plural): r.cost for r in CATALOG.resources},
    "auditEvents": 1,
    "deliveries": 1,  # a webhook endpoint's delivery log and dead letters
    "deadLetters": 1,
}
# Lists without ``first`` whose size the declaration bounds (an order's items).
COMPUTED_LISTS = {to_camel_case(n): w for r in CATALOG.resources for n, w in r.computed.items()}
CEILING = 10**9  # totals saturate here: a fan-out's true count exceeds any integer type
# Fragments spreading fragments spreading fragments...: graphql-core's cycle and
# variable rules follow such chains by recursion, so a chain is refused long before
# the interpreter's recursion limit (and long after any real document's nesting).
MAX_FRAGMENT_NESTING = 50


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """The limits a document is measured against (from the ``GRAPHQL_*`` settings)."""

    max_bytes: int = 65_536
    max_tokens: int = 2_000
    max_depth: int = 10
    max_aliases: int = 30
    max_fields: int = 2_000
    max_spreads: int = 500
    max_cost: int = 20_000
    max_page_size: int = PAGE_SIZE_MAX

    @classmethod
    def from_settings(cls, settings: Settings) -> DocumentLimits:
        return cls(
            max_bytes=settings.graphql_max_document_bytes,
            max_tokens=settings.graphql_max_tokens,
            max_depth=settings.graphql_max_depth,
            max_aliases=settings.graphql_max_aliases,
            max_fields=settings.graphql_max_fields,
            max_spreads=settings.graphql_max_fragment_spreads,
            max_cost=settings.graphql_max_cost,
            max_page_size=settings.page_size_max,
        )


@dataclass(frozen=True, slots=True)
class Totals:
    """One selection set measured with its fragments inlined (each figure saturates)."""

    depth: int = 0
    aliases: int = 0
    fields: int = 0
    spreads: int = 0
    cost: int = 0


EMPTY = Totals()


def _cap(value: int) -> int:
    return value if value < CEILING else CEILING


def too_complex(message: str, node: Any, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": "QUERY_TOO_COMPLEX", **extensions})


@dataclass
class Measured:
    """What measuring a document found: errors (empty when within the limits) and
    the cost of each operation by name (``None`` for an anonymous one)."""

    errors: list[GraphQLError]
    costs: dict[str | None, int]
    visits: int


class DocumentMeasure:
    """Measures one document; ``visits`` counts the selections it looked at, so tests
    can check the work is linear without timing anything."""

    def __init__(self, document: DocumentNode, limits: DocumentLimits) -> None:
        self.limits = limits
        self.visits = 0
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self.operations: list[OperationDefinitionNode] = []
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                # A duplicate name is UniqueFragmentNamesRule's error; measure the first.
                self.fragments.setdefault(definition.name.value, definition)
            elif isinstance(definition, OperationDefinitionNode):
                self.operations.append(definition)
        self.totals: dict[str, Totals] = {}

    # -- fragments, in dependency order, without recursion --------------------------

    def _spreads_in(self, selection_set: SelectionSetNode) -> list[str]:
        names: list[str] = []
        stack = [selection_set]
        while stack:
            current = stack.pop()
            for selection in current.selections:
                self.visits += 1
                if isinstance(selection, FragmentSpreadNode):
                    names.append(selection.name.value)
                elif (
                    isinstance(selection, FieldNode | InlineFragmentNode)
                    and selection.selection_set is not None
                ):
                    stack.append(selection.selection_set)
        return names

    def _order_fragments(self) -> GraphQLError | None:
        """Measure every fragment after the fragments it spreads; refuse a cycle here
        (graphql-core's rules would follow it) and count unknown names as empty
        (``KnownFragmentNamesRule`` reports them)."""
        edges = {name: self._spreads_in(f.selection_set) for name, f in self.fragments.items()}
        nesting: dict[str, int] = {}
        for root in self.fragments:
            if root in nesting:
                continue
            on_path: set[str] = {root}
            stack: list[tuple[str, int]] = [(root, 0)]
            while stack:
                name, index = stack[-1]
                children = edges[name]
                if index < len(children):
                    stack[-1] = (name, index + 1)
                    child = children[index]
                    if child in on_path:
                        return GraphQLError(
                            f"Cannot spread fragment '{child}' within itself.",
                            self.fragments[child],
                        )
                    if child in self.fragments and child not in nesting:
                        on_path.add(child)
                        stack.append((child, 0))
                    continue
                stack.pop()
                on_path.discard(name)
                nesting[name] = 1 + max((nesting.get(child, 0) for child in children), default=0)
                if nesting[name] > MAX_FRAGMENT_NESTING:
                    return too_complex(
                        f"fragments nest {nesting[name]} deep, more than the limit of "
                        f"{MAX_FRAGMENT_NESTING}: inline some of them",
                        self.fragments[name],
                        nesting=nesting[name],
                        limit=MAX_FRAGMENT_NESTING,
                    )
                self.totals[name] = self.measure(self.fragments[name].selection_set)
        return None

    # -- one selection set, its fragments already measured --------------------------

    def measure(self, selection_set: SelectionSetNode) -> Totals:
        depth = aliases = fields = spreads = cost = 0
        for selection in selection_set.selections:
            self.visits += 1
            if isinstance(selection, FieldNode):
                inner = (
                    self.measure(selection.selection_set)
                    if selection.selection_set is not None
                    else EMPTY
                )
                fields += 1 + inner.fields
                aliases += (selection.alias is not None) + inner.aliases
                spreads += inner.spreads
                cost += 1 + _cap(inner.cost * self.multiplier(selection))
                if selection.selection_set is not None and not selection.name.value.startswith(
                    "__"
                ):
                    depth = max(depth, 1 + inner.depth)
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.measure(selection.selection_set)
            else:
                assert isinstance(selection, FragmentSpreadNode)
                inner = self.totals.get(selection.name.value, EMPTY)
                spreads += 1
            depth = max(depth, inner.depth)
            aliases += inner.aliases
            fields += inner.fields
            spreads += inner.spreads
            cost += inner.cost
        return Totals(depth, _cap(aliases), _cap(fields), _cap(spreads), _cap(cost))

    def multiplier(self, field: FieldNode) -> int:
        name = field.name.value
        weight = COMPUTED_LISTS.get(name)
        if weight is not None:
            return weight
        weight = LIST_FIELDS.get(name)
        if weight is None:
            return 1
        size = self.limits.max_page_size
        for arg in field.arguments or ():
            if arg.name.value == "first" and isinstance(arg.value, IntValueNode):
                # not an integer: ValuesOfCorrectTypeRule says so; count the maximum
                with contextlib.suppress(ValueError):
                    size = max(1, min(int(arg.value.value), self.limits.max_page_size))
        return size * weight

    # -- fields merged at one response path ------------------------------------------

    def merge_weight(self, operation: OperationDefinitionNode) -> int:
        """Fields with fragments inlined, those sharing a response path counted as the
        square of their number. Only called once the plain count is within the limit,
        so the inlining here does at most ``max_fields`` steps."""
        counts: dict[tuple[str, ...], int] = {}
        stack: list[tuple[tuple[str, ...], SelectionSetNode]] = [((), operation.selection_set)]
        while stack:
            path, selection_set = stack.pop()
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    key = (*path, (selection.alias or selection.name).value)
                    counts[key] = counts.get(key, 0) + 1
                    if selection.selection_set is not None:
                        stack.append((key, selection.selection_set))
                elif isinstance(selection, InlineFragmentNode):
                    stack.append((path, selection.selection_set))
                else:
                    assert isinstance(selection, FragmentSpreadNode)
                    fragment = self.fragments.get(selection.name.value)
                    if fragment is not None:  # no cycles: refused before this is called
                        stack.append((path, fragment.selection_set))
        return sum(count * count for count in counts.values())

    # -- the whole document -----------------------------------------------------------

    def check(self) -> Measured:
        """Every limit the document breaks, fan-out first (it explains the others)."""
        limits = self.limits
        refused = self._order_fragments()
        if refused is not None:
            return Measured([refused], {}, self.visits)
        errors: list[GraphQLError] = []
        per_operation: list[GraphQLError] = []
        costs: dict[str | None, int] = {}
        aliases = fields = spreads = 0
        for operation in self.operations:
            totals = self.measure(operation.selection_set)
            name = operation.name.value if operation.name else None
            costs[name] = totals.cost
            aliases, fields = aliases + totals.aliases, fields + totals.fields
            spreads += totals.spreads
            label = f"'{name}'" if name else "the operation"
            if totals.depth > limits.max_depth:
                per_operation.append(
                    too_complex(
                        f"{label} exceeds maximum operation depth of {limits.max_depth}",
                        operation,
                        depth=totals.depth,
                        limit=limits.max_depth,
                    )
                )
            if totals.cost > limits.max_cost:
                per_operation.append(
                    GraphQLError(
                        f"{label} may cost {totals.cost} objects, more than the limit of "
                        f"{limits.max_cost}: ask for smaller pages (first) or fewer nested lists",
                        operation,
                        extensions={
                            "code": "QUERY_TOO_COSTLY",
                            "cost": totals.cost,
                            "limit": limits.max_cost,
                        },
                    )
                )
        if spreads > limits.max_spreads:
            errors.append(
                too_complex(
                    f"the document spreads fragments {spreads} times once they are inlined, "
                    f"more than the limit of {limits.max_spreads}",
                    None,
                    spreads=spreads,
                    limit=limits.max_spreads,
                )
            )
        if aliases > limits.max_aliases:
            errors.append(
                too_complex(
                    f"{aliases} aliases found. Allowed: {limits.max_aliases}",
                    None,
                    aliases=aliases,
                    limit=limits.max_aliases,
                )
            )
        errors.extend(per_operation)
        if not errors:
            # Only now, with spreads and plain fields known to be within the limits,
            # is inlining the fragments bounded work.
            if fields <= limits.max_fields:
                fields = sum(self.merge_weight(op) for op in self.operations)
            if fields > limits.max_fields:
                errors.append(
                    too_complex(
                        f"the document selects {fields} fields once its fragments are inlined "
                        f"(a field selected n times at one place counts n*n), more than the "
                        f"limit of {limits.max_fields}",
                        None,
                        fields=fields,
                        limit=limits.max_fields,
                    )
                )
        return Measured(errors, costs, self.visits)


def measure(document: DocumentNode, limits: DocumentLimits) -> Measured:
    """Measure ``document`` against ``limits`` (see the module docstring)."""
    return DocumentMeasure(document, limits).check()


def limits_rule(limits: DocumentLimits) -> type[ValidationRule]:
    """The same measure as a validation rule, for ``strawberry.Schema.execute`` (the
    HTTP and WebSocket handlers measure before validating instead). Built once per
    schema: validation caches key on the rule classes."""

    class DocumentLimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            for error in measure(context.document, limits).errors:
                context.report_error(error)

    return DocumentLimitsRule
