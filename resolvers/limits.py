"""Limits on what one GraphQL document may ask for, checked once per document.

Depth, aliases and tokens use Strawberry's rules; the cost rule here estimates
how many objects a document can make the server build: every selected field
costs 1, and a list multiplies its selection by its page size (``first``, or the
maximum page size when ``first`` is a variable or missing, since a variable's
value is not known when the document is validated and cached). Order items count
as ``ITEMS_PER_ORDER`` each. All rule classes are built once, so the validation
cache keeps working (see ../shared/TRAPS.md).
"""

from __future__ import annotations

from typing import Any

from graphql import (
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

LIST_FIELDS = {"customers", "products", "orders"}
ITEMS_PER_ORDER = 10
MAX_COST_DEPTH = 20
COST_CEILING = 10**9  # costs saturate here (a nested document can exceed any integer type)


def cost_rule(max_cost: int, max_page_size: int) -> type[ValidationRule]:
    class QueryCost(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments = {
                d.name.value: d
                for d in context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            cost = self.selection_cost(node.selection_set, 0)
            if cost > max_cost:
                name = node.name.value if node.name else "the operation"
                self.report_error(
                    GraphQLError(
                        f"{name} may cost {cost} objects, more than the limit of {max_cost}: "
                        "ask for smaller pages (first) or fewer nested lists",
                        node,
                        extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "limit": max_cost},
                    )
                )

        def selection_cost(self, selection_set: SelectionSetNode | None, depth: int) -> int:
            if selection_set is None or depth > MAX_COST_DEPTH:
                return 0
            total = 0
            for sel in selection_set.selections:
                if isinstance(sel, FieldNode):
                    inner = self.selection_cost(sel.selection_set, depth + 1)
                    total += 1 + min(inner * self.multiplier(sel), COST_CEILING)
                elif isinstance(sel, InlineFragmentNode):
                    total += self.selection_cost(sel.selection_set, depth + 1)
                elif isinstance(sel, FragmentSpreadNode):
                    fragment = self.fragments.get(sel.name.value)
                    if fragment is not None:
                        total += self.selection_cost(fragment.selection_set, depth + 1)
            return min(total, COST_CEILING)

        def multiplier(self, field: FieldNode) -> int:
            name = field.name.value
            if name == "items":
                return ITEMS_PER_ORDER
            if name not in LIST_FIELDS:
                return 1
            for arg in field.arguments or ():
                if arg.name.value == "first" and isinstance(arg.value, IntValueNode):
                    return max(1, min(int(arg.value.value), max_page_size))
            return max_page_size

    return QueryCost
