"""Root query fields called straight from graphql-core, without Strawberry's per-call wrapper.

For every field, Strawberry's resolver wrapper converts the arguments through
its type system, renames them, builds the resolver's ``Info`` and awaits the
result through more layers. For the root fields of ``Query`` whose arguments are
all scalars (whose values graphql-core has already coerced, and Strawberry
passes on unchanged) that work reduces to a rename, and it was a visible part
of a single-object query (ops/bench/RESULTS.md).

``DirectRootFields`` swaps in a resolver doing just that, for such fields
only: async resolvers with no field extensions, permission classes, exception
handlers, ``root``/``parent`` parameters, enum, list, input or ``GlobalID``
arguments. Everything else keeps Strawberry's wrapper. The same resolver
function runs with the same arguments and the same ``Info`` either way;
``tests/graphql/test_fastexec.py`` compares results with and without.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import strawberry
from graphql import GraphQLNonNull, GraphQLResolveInfo, GraphQLScalarType
from strawberry.relay import GlobalID
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.field import StrawberryField

STRAWBERRY_DEFINITION = "strawberry-definition"


def _plain_argument(graphql_type: Any, strawberry_type: Any) -> bool:
    if isinstance(graphql_type, GraphQLNonNull):
        graphql_type = graphql_type.of_type
    if isinstance(strawberry_type, StrawberryMaybe):
        return False
    if isinstance(strawberry_type, StrawberryOptional):
        strawberry_type = strawberry_type.of_type
    return isinstance(graphql_type, GraphQLScalarType) and strawberry_type is not GlobalID


def _eligible(
    schema: strawberry.Schema, field: StrawberryField, graphql_args: dict[str, Any]
) -> bool:
    resolver = field.base_resolver
    if resolver is None or not resolver.is_async or field.extensions or field.permission_classes:
        return False
    if resolver.root_parameter or resolver.parent_parameter:
        return False
    if schema.schema_converter._get_field_exception_handlers(field):
        return False
    by_name = {schema.config.name_converter.get_graphql_name(a): a for a in field.arguments}
    if set(by_name) != set(graphql_args):
        return False
    return all(_plain_argument(graphql_args[n].type, a.type) for n, a in by_name.items())


def _direct(
    schema: strawberry.Schema, field: StrawberryField
) -> Callable[..., Coroutine[Any, Any, Any]]:
    resolver = field.base_resolver
    assert resolver is not None
    function: Any = resolver.wrapped_func
    names = {
        schema.config.name_converter.get_graphql_name(a): a.python_name for a in field.arguments
    }
    info_class = schema.config.info_class
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    with_self = resolver.self_parameter is not None

    async def resolve(source: Any, info: GraphQLResolveInfo[Any], **arguments: Any) -> Any:
        kwargs = {names[name]: value for name, value in arguments.items()}
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=field)
        if with_self:
            return await function(source, **kwargs)
        return await function(**kwargs)

    return resolve


class DirectRootFields:
    """The eligible ``Query`` fields, switched between direct and Strawberry's resolvers."""

    def __init__(self, schema: strawberry.Schema) -> None:
        query_type = schema._schema.query_type
        self._fields: list[tuple[Any, Any, Any]] = []  # (graphql field, Strawberry's, direct)
        self.names: list[str] = []
        for name, graphql_field in query_type.fields.items() if query_type else ():
            field = graphql_field.extensions.get(STRAWBERRY_DEFINITION)
            if isinstance(field, StrawberryField) and _eligible(schema, field, graphql_field.args):
                self._fields.append((graphql_field, graphql_field.resolve, _direct(schema, field)))
                self.names.append(name)
        self.use(direct=True)

    def use(self, *, direct: bool) -> None:
        for graphql_field, wrapped, plain in self._fields:
            graphql_field.resolve = plain if direct else wrapped
