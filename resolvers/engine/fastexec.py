"""A faster way through subtrees of plain fields, with graphql-core's semantics.

graphql-core completes every field the same generic way: it builds a resolve
info, calls Strawberry's resolver wrapper, checks for awaitables and walks
``complete_value`` for the return type. For the data this API serves most (a
page of 50 orders with their customers, items and products, some 700 fields),
that machinery was most of a request's time (ops/bench/RESULTS.md).

``FastExecutor`` keeps graphql-core's executor and only changes
``execute_fields``: for each group of fields (one per selection set and runtime
type) it decides once which fields are *plain*, and reads those directly from
the source object:

- a field with no resolver, no arguments and no field extensions (what Strawberry
  itself calls a basic field: ``getattr`` on the source);
- a field whose resolver declares an equivalent pure getter with
  ``fast_field(getter)`` in its ``metadata`` (``resolvers.engine.hints``: the
  relations that hand back what ``resolvers/prefetch.py`` fetched, and
  ``Node.id``); a getter returns ``NOT_LOADED`` when it has nothing, and the
  real resolver runs instead;
- ``__typename``;

whose type is a scalar or enum, an object type, or a list of either (each
possibly non-null). Any other field (arguments, async resolvers, abstract types,
nested lists, middleware) goes through graphql-core's ``execute_field``
unchanged.

Anything unusual in a plain field's own value (an exception from the getter,
``None`` where the type is non-null, a value the scalar does not take as is, an
object of the wrong type, ``NOT_LOADED``) makes that field fall back to
``execute_field``, which resolves it again and reports the error exactly as
graphql-core does; the getters are pure, so running one twice is harmless. These
checks all happen before anything below the field runs. Errors from below a
plain field are handled with graphql-core's own ``handle_field_error`` at the
same paths, so null propagation, error paths and awaitables nested under plain
fields behave as with the standard executor. When every field of a subtree is
plain, one generated function builds the whole subtree's result (any surprise
in it: the step-by-step path above takes over for that object).

A query of one root field (``order(id: ...)``) runs shorter still when plans are
shared: the operation and fragments the document selects are kept from its first
request (later ones only coerce their variables, those of built-in scalar types
directly), and the field is resolved and completed in one coroutine with
graphql-core's own steps, its object built by its plan when that is all plain
(``execute_operation``).

It derives from graphql-core's plain ``Executor``, not the incremental one
Strawberry uses: this schema has no @defer/@stream, so that machinery was pure
cost; resolvers get Strawberry's resolve info all the same. For documents
without directives, the collected field sets and plans are kept with the
document and reused by its later requests.

``tests/graphql/test_fastexec.py`` runs the same documents through this and
Strawberry's standard execution context and compares the results.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from keyword import iskeyword
from math import isfinite
from operator import attrgetter
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfoHelpers,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationType,
    Undefined,
)
from graphql.execution.collect_fields import (
    CollectedFields,
    FieldDetailsList,
    GroupedFieldSet,
    collect_fields,
)
from graphql.execution.executor import (
    CollectedErrors,
    Executor,
    default_field_resolver,
    default_type_resolver,
    to_nodes,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import (
    VariableValues,
    VariableValueSource,
    get_argument_values,
    get_variable_values,
)
from graphql.language import OperationDefinitionNode, VariableNode
from graphql.pyutils import Path
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from resolvers.engine.hints import FAST_GETTER, NOT_LOADED

# Where Strawberry keeps its field and type definitions in graphql-core's extensions.
STRAWBERRY_FIELD = STRAWBERRY_DEFINITION = "strawberry-definition"

_NODE = attrgetter("node")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
# Values these scalars return unchanged from ``coerce_output_value`` (checked by exact type).
_AS_IS: dict[GraphQLScalarType, type] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLInt: int,
    GraphQLBoolean: bool,
}


_UNKNOWN: Any = object()  # not worked out yet


class _Fallback(Exception):
    """This field's own value needs graphql-core's general path."""


LEAF, OBJECT, OBJECT_LIST, LEAF_LIST, TYPENAME = range(5)


@dataclass(slots=True)
class _Step:
    name: str
    details: FieldDetailsList
    kind: int | None  # None: graphql-core's execute_field
    get: Callable[[Any], Any] | None = None
    return_type: GraphQLOutputType | None = None
    non_null: bool = False
    item_type: GraphQLOutputType | None = None  # lists: the item type as declared
    item_non_null: bool = False
    named: Any = None  # the leaf or object type under the wrappers
    as_is: type | None = None
    check: Callable[[Any], bool] | None = None  # objects: the type's is_type_of, if any
    attribute: str | None = None  # plain ``getattr`` fields: the attribute read


@dataclass(slots=True)
class _Plan:
    steps: tuple[_Step, ...]
    build: Callable[[Any], dict[str, Any]] | None  # the whole subtree at once, when all plain


def _unwrap(type_: GraphQLOutputType) -> tuple[GraphQLOutputType, bool]:
    if isinstance(type_, GraphQLNonNull):
        return type_.of_type, True
    return type_, False


def _getter(field: Any) -> tuple[Callable[[Any], Any] | None, str | None]:
    """The pure getter for a field (None: resolve it normally), and its attribute if plain."""
    definition = field.extensions.get(STRAWBERRY_FIELD)
    if definition is None or definition.extensions:
        return None, None
    if getattr(field.resolve, "_is_default", False):
        name: str = definition.python_name
        default = definition.default_resolver
        if default is getattr:
            plain = name.isidentifier() and not iskeyword(name)
            return attrgetter(name), name if plain else None
        return (lambda source: default(source, name)), None
    metadata = getattr(definition, "metadata", None) or {}
    getter: Callable[[Any], Any] | None = metadata.get(FAST_GETTER)
    return getter, None


SharedPlans = dict[tuple[Any, ...], Any]
# The attributes of graphql-core's executor that hold one request's state, made anew
# for each (``FastExecutor._fresh``); the others are the same for every request of a
# document and are kept with it. ``_stream_usages`` is kept: only @stream writes it,
# and documents with directives have no shared plans.
PER_REQUEST = frozenset(
    (
        "context_value",
        "variable_values",
        "async_helpers",
        "collected_errors",
        "pending_incremental_futures",
        "background_futures",
        "async_work_finished_hook_task",
        "_relevant_sub_fields",
    )
)
_new_object = object.__new__
# graphql-core's ``execute`` default (``Executor.build``'s ``max_coercion_errors``).
MAX_COERCION_ERRORS = 50


# -- variables of built-in scalar types -------------------------------------------------
#
# Coercing a request's variables through graphql-core (``get_variable_values``) works
# out each variable's signature from the document again and walks the general input
# coercion: about a tenth of a single-object query's engine time. For an operation
# whose variables are all of the built-in scalars, without defaults, the signatures
# are worked out once and the values taken as graphql-core's scalars take them, for
# values of exactly the builtin type each scalar returns unchanged (or, for ID, an
# int as its decimal string). Any other value, and any missing or null value of a
# non-null variable, is no answer (None): graphql-core then coerces the variables
# and reports the errors as ever.


def _id_value(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return value
    if kind is int and -_ID_DIGITS < value < _ID_DIGITS:  # str() refuses huge ints
        return str(value)
    return Undefined


def _string_value(value: Any) -> Any:
    return value if type(value) is str else Undefined


def _int_value(value: Any) -> Any:
    return value if type(value) is int and _INT_MIN <= value <= _INT_MAX else Undefined


def _boolean_value(value: Any) -> Any:
    return value if type(value) is bool else Undefined


def _float_value(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value if isfinite(value) else Undefined
    if kind is int and -_FLOAT_EXACT <= value <= _FLOAT_EXACT:  # float() is exact there
        return float(value)
    return Undefined


_ID_DIGITS = 10**18
_FLOAT_EXACT = 2**53
_SCALAR_VALUES: dict[GraphQLScalarType, Callable[[Any], Any]] = {
    GraphQLID: _id_value,
    GraphQLString: _string_value,
    GraphQLInt: _int_value,
    GraphQLBoolean: _boolean_value,
    GraphQLFloat: _float_value,
}

# Per variable: name, signature, its source when not given, non-null, coercion.
_Variable = tuple[str, GraphQLVariableSignature, VariableValueSource, bool, Callable[[Any], Any]]


def _scalar_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode
) -> tuple[_Variable, ...] | None:
    """The operation's variables when all are of built-in scalar types without
    defaults, with what coercing them takes; None otherwise."""
    variables: list[_Variable] = []
    for definition in operation.variable_definitions or ():
        signature = get_variable_signature(schema, definition)
        if isinstance(signature, GraphQLError) or definition.default_value is not None:
            return None
        type_: Any = signature.type
        non_null = isinstance(type_, GraphQLNonNull)
        coerce = _SCALAR_VALUES.get(type_.of_type if non_null else type_)
        if coerce is None:
            return None
        name = signature.name
        variables.append((name, signature, VariableValueSource(signature), non_null, coerce))
    return tuple(variables)


def _coerce_scalar_variables(
    variables: tuple[_Variable, ...], inputs: dict[str, Any]
) -> VariableValues | None:
    """What ``get_variable_values`` gives for these values, or None: ask it."""
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for name, signature, unset, non_null, coerce in variables:
        value = inputs.get(name, Undefined)
        if value is Undefined:
            if non_null:
                return None
            sources[name] = unset
            continue
        sources[name] = VariableValueSource(signature, value)
        if value is None:
            if non_null:
                return None
            coerced[name] = None
            continue
        value = coerce(value)
        if value is Undefined:
            return None
        coerced[name] = value
    return VariableValues(sources, coerced)


class FastExecutor(Executor[Any]):
    """graphql-core's executor with plain subtrees read directly (see the module doc).

    ``shared_plans`` (optional) keeps collected field sets and plans across the
    requests of one document. Only pass it for documents without directives: then
    which fields are collected does not depend on variables, and what was worked
    out for one request fits every request.
    """

    # Strawberry's resolve info (resolvers get the plain coerced variables).
    build_resolve_info = StrawberryGraphQLCoreExecutionContext.build_resolve_info
    operation_extensions = None

    def __init__(self, *args: Any, shared_plans: SharedPlans | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Plans by (type name, id of the grouped field set): per request, or for
        # every request of the document (its field sets then live as long).
        self._plans: dict[Any, Any] = {} if shared_plans is None else shared_plans
        self._shared = shared_plans

    @classmethod
    def for_document(
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        shared_plans: SharedPlans,
        context_value: Any,
        raw_variable_values: dict[str, Any] | None,
        operation_name: str | None,
        hide_suggestions: bool,
    ) -> FastExecutor | list[GraphQLError]:
        """``build``, for a document whose plans are shared.

        Which operation runs and its fragments depend on the document and the
        operation name only: the first request builds the executor in full and
        keeps them, with the executor's other attributes that are the same for every
        request; the next ones only coerce their variables (as ``build`` does) and
        make the executor from what was kept and their own state (``_fresh``).
        """
        key = ("built", operation_name)
        known = shared_plans.get(key)
        if known is None:
            built = cls.build(
                schema,
                document,
                context_value=context_value,
                raw_variable_values=raw_variable_values,
                operation_name=operation_name,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                hide_suggestions=hide_suggestions,
                shared_plans=shared_plans,
            )
            if isinstance(built, list):
                return built
            assert isinstance(built, FastExecutor)
            operation = built.operation
            template = cls(
                schema,
                built.fragment_definitions,
                built.fragments,
                None,
                None,
                operation,
                built.variable_values,
                default_field_resolver,
                default_type_resolver,
                default_field_resolver,
                False,
                None,
                optimized_is_awaitable,
                None,
                hide_suggestions=hide_suggestions,
                shared_plans=shared_plans,
            )
            kept = {k: v for k, v in vars(template).items() if k not in PER_REQUEST}
            shared_plans[key] = (operation, _scalar_variables(schema, operation), kept)
            return built
        operation, scalar_variables, kept = known
        variable_values = (
            None
            if scalar_variables is None
            else _coerce_scalar_variables(scalar_variables, raw_variable_values or {})
        )
        if variable_values is None:
            coerced = get_variable_values(
                schema,
                operation.variable_definitions or (),
                raw_variable_values or {},
                max_errors=MAX_COERCION_ERRORS,
                hide_suggestions=hide_suggestions,
            )
            if isinstance(coerced, list):
                return coerced
            variable_values = coerced
        return cls._fresh(kept, context_value, variable_values)

    @classmethod
    def _fresh(
        cls, kept: dict[str, Any], context_value: Any, variable_values: VariableValues
    ) -> FastExecutor:
        """What ``__init__`` makes, from the attributes kept for the document and this
        request's own state (``PER_REQUEST``, made as ``Executor.__init__`` makes it)."""
        executor: FastExecutor = _new_object(cls)
        executor.__dict__ = {
            **kept,
            "context_value": context_value,
            "variable_values": variable_values,
            "async_helpers": GraphQLResolveInfoHelpers(
                executor.gather_async_work, executor.track_async_work
            ),
            "collected_errors": CollectedErrors(),
            "pending_incremental_futures": set(),
            "background_futures": set(),
            "async_work_finished_hook_task": None,
            "_relevant_sub_fields": {},
        }
        return executor

    # -- one root field -----------------------------------------------------------

    def execute_operation(self, serially: bool | None = None) -> Any:
        """graphql-core's, with a shorter way for a query of one root field.

        Taken when plans are shared, nothing can abort the operation and no hook
        waits for it: the root field set (collected once per document) is one field
        resolved by its own resolver. That field is then resolved and completed in
        one coroutine, with graphql-core's own steps (``build_resolve_info``,
        ``get_argument_values``, ``complete_value``, ``handle_field_error``) and
        the same outcome, instead of through five nested ones. Anything else:
        graphql-core's path.
        """
        root = self._single_root(serially)
        if root is None:
            return super().execute_operation(serially)
        return self._execute_single_root(*root)

    def _single_root(self, serially: bool | None) -> tuple[Any, ...] | None:
        shared = self._shared
        operation = self.operation
        if (
            shared is None
            or serially
            or operation.operation is not OperationType.QUERY
            or self.abort_signal is not None
            or self.hooks is not None
            or self.middleware_manager is not None
        ):
            return None
        key = ("root", id(operation))
        try:
            found: tuple[Any, ...] | None = shared[key]
            return found
        except KeyError:
            pass
        root_type = self.schema.query_type
        found = None
        if root_type is not None:
            try:
                grouped, new_defer_usages, _ = collect_fields(
                    self.schema,
                    self.fragments,
                    self.variable_values,
                    root_type,
                    operation,
                    self.hide_suggestions,
                )
            except RecursionError:
                return None  # graphql-core's path reports it
            if len(grouped) == 1 and not new_defer_usages:
                ((name, details),) = grouped.items()
                field = self.schema.get_field(root_type, details[0].node.name.value)
                if field is not None and field.resolve is not None:
                    arguments = _variable_arguments(field, details)
                    # Paths are immutable: the one root field's serves every request.
                    path = Path(None, name, root_type.name)
                    found = (root_type, name, details, field, arguments, path)
        shared[key] = found
        return found

    async def _execute_single_root(
        self,
        root_type: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
        field: GraphQLField,
        arguments: tuple[tuple[str, str, bool], ...] | None,
        path: Path,
    ) -> ExecutionResult:
        """``execute_field`` and ``complete_awaitable_value`` for the one root field, then
        ``execute_operation``'s response (see ``execute_operation``)."""
        return_type = field.type
        # Strawberry's, bound to this executor as graphql-core's execute_field calls it.
        info = self.build_resolve_info(field, to_nodes(details), root_type, path)  # type: ignore[misc]
        try:
            args: dict[str, Any] | None = None
            if arguments is not None:  # each a variable: what get_argument_values takes
                args = {}
                coerced = self.variable_values.coerced
                for out_name, variable, non_null in arguments:
                    value = coerced.get(variable, Undefined)
                    if value is Undefined or (value is None and non_null):
                        args = None  # a default, or an error: graphql-core's
                        break
                    args[out_name] = value
            if args is None:
                node = details[0].node
                args = (
                    get_argument_values(
                        field,
                        node,
                        self.variable_values,
                        details[0].fragment_variable_values,
                        self.hide_suggestions,
                    )
                    if field.args or node.arguments
                    else {}
                )
            assert field.resolve is not None
            result = field.resolve(self.root_value, info, **args)
            if self.is_awaitable(result):
                result = await result
            completed: Any = self._built_root(return_type, details, result)
            if completed is None:
                completed = self.complete_value(return_type, details, info, path, result, None)
                if self.is_awaitable(completed):
                    completed = await completed
        except Exception as raw_error:
            try:
                self.handle_field_error(raw_error, return_type, details, path)
            except GraphQLError as error:  # a non-null field: no data at all
                self.collected_errors.add(error, None)
                return self.build_response(None)  # type: ignore[return-value]
            completed = None
        return self.build_response({name: completed})  # type: ignore[return-value]

    def _built_root(
        self, return_type: GraphQLOutputType, details: FieldDetailsList, value: Any
    ) -> dict[str, Any] | None:
        """The root field's object built by its plan when all its subfields are plain
        (what ``complete_value`` would come to through ``execute_fields``), else None:
        ``complete_value`` then does it, and reports what is wrong as graphql-core does.

        What it takes (the type check and the plan's build) is kept with the shared
        plans once worked out, as it depends on the document only."""
        if value is None or isinstance(value, Exception):
            return None
        assert self._shared is not None  # the single-root path runs with shared plans
        key = ("root build", id(details))
        kept: tuple[Any, ...] | None = self._shared.get(key, _UNKNOWN)
        if kept is _UNKNOWN:
            object_type, _ = _unwrap(return_type)
            if not isinstance(object_type, GraphQLObjectType) or _own_is_type_of(object_type):
                self._shared[key] = None
                return None
            check = _type_check(object_type)
            if check is not None and not check(value):
                return None
            grouped, new_defer_usages, _ = self.collect_subfields(object_type, details)
            plan = None if new_defer_usages else self._plan(object_type, grouped)
            build = None if plan is None else plan.build
            kept = self._shared[key] = None if build is None else (check, build)
        if kept is None:
            return None
        check, build = kept
        if check is not None and not check(value):
            return None
        try:
            return build(value)  # type: ignore[no-any-return]
        except Exception:  # _Fallback, or a getter failed: nothing below has run
            return None

    # -- planning ---------------------------------------------------------------

    def _plan(self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet) -> _Plan | None:
        key = (parent_type.name, id(grouped))
        try:
            found: _Plan | None = self._plans[key]
            return found
        except KeyError:
            pass
        steps = tuple(self._step(parent_type, name, details) for name, details in grouped.items())
        plan = None
        if any(s.kind is not None for s in steps):
            plan = _Plan(steps, self._compile(parent_type, steps))
        self._plans[key] = plan
        return plan

    def collect_subfields(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> CollectedFields:
        """graphql-core's, kept for every request of the document when plans are shared.

        The grouped field sets then stay the same objects from request to request,
        so plans are found by their identity.
        """
        shared = self._shared
        if shared is None:
            return super().collect_subfields(return_type, field_details_list)
        key = ("fields", return_type.name, *map(id, map(_NODE, field_details_list)))
        found: CollectedFields | None = shared.get(key)
        if found is None:
            found = shared[key] = super().collect_subfields(return_type, field_details_list)
        return found

    def _compile(
        self, parent_type: GraphQLObjectType, steps: tuple[_Step, ...]
    ) -> Callable[[Any], dict[str, Any]] | None:
        """One function building the whole result of an all-plain subtree, else None.

        It raises (``_Fallback``, or whatever a getter raised) on anything unusual
        anywhere below; nothing in such a subtree has effects, so the caller then
        simply runs the step-by-step path, which reports errors as graphql-core does.
        """
        namespace: dict[str, Any] = {}
        lines: list[str] = []
        entries: list[str] = []
        for index, step in enumerate(steps):
            if step.kind is None or step.kind == LEAF_LIST:
                return None  # resolved normally, or rare here: the step path does it
            if step.kind == TYPENAME:
                entries.append(f"{step.name!r}: {parent_type.name!r}")
                continue
            assert step.get is not None
            value = f"v{index}"
            entries.append(f"{step.name!r}: {value}")
            if step.kind == LEAF and step.as_is is not None:
                # Read, and keep the value as is when the scalar would (the common case).
                if step.attribute is not None:
                    lines.append(f"{value} = source.{step.attribute}")
                else:
                    namespace[f"get{index}"] = step.get
                    lines.append(f"{value} = get{index}(source)")
                namespace[f"other{index}"] = partial(_other_leaf, step.named, step.non_null)
                if step.as_is is int:
                    test = f"type({value}) is not int or not {_INT_MIN} <= {value} <= {_INT_MAX}"
                else:
                    namespace[f"type{index}"] = step.as_is
                    test = f"type({value}) is not type{index}"
                lines += [f"if {test}:", f"    {value} = other{index}({value})"]
                continue
            if step.kind == LEAF:
                namespace[f"read{index}"] = _leaf_reader(
                    step.get, step.named, step.as_is, step.non_null
                )
            else:
                grouped = self._subfields(step)
                child = None if grouped is None else self._plan(step.named, grouped)
                if child is None or child.build is None:
                    return None
                reader = _object_reader if step.kind == OBJECT else _list_reader
                namespace[f"read{index}"] = reader(step, child.build)
            lines.append(f"{value} = read{index}(source)")
        # Generated, not interpreted per object: this runs for every object of a
        # page. Names are GraphQL names (validated) written with repr, attributes
        # are Python identifiers; nothing else from the document enters the code.
        body = "".join(f"    {line}\n" for line in lines)
        code = f"def build(source):\n{body}    return {{{', '.join(entries)}}}\n"
        exec(compile(code, f"<plan for {parent_type.name}>", "exec"), namespace)  # noqa: S102
        build: Callable[[Any], dict[str, Any]] = namespace["build"]
        return build

    def _step(self, parent_type: GraphQLObjectType, name: str, details: FieldDetailsList) -> _Step:
        node = details[0].node
        field_name = node.name.value
        if field_name == "__typename":
            return _Step(name, details, TYPENAME)
        field = self.schema.get_field(parent_type, field_name)
        slow = _Step(name, details, None)
        if field is None or self.middleware_manager or field.args or node.arguments:
            return slow
        get, attribute = _getter(field)
        if get is None:
            return slow
        type_, non_null = _unwrap(field.type)
        step = _Step(name, details, None, get, field.type, non_null, attribute=attribute)
        if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
            step.kind, step.named = LEAF, type_
            step.as_is = _AS_IS.get(type_) if isinstance(type_, GraphQLScalarType) else None
        elif isinstance(type_, GraphQLObjectType):
            if _own_is_type_of(type_):
                return slow
            step.kind, step.named, step.check = OBJECT, type_, _type_check(type_)
        elif isinstance(type_, GraphQLList):
            item, item_non_null = _unwrap(type_.of_type)
            step.item_type, step.item_non_null, step.named = type_.of_type, item_non_null, item
            if isinstance(item, GraphQLObjectType):
                if _own_is_type_of(item):
                    return slow
                step.kind, step.check = OBJECT_LIST, _type_check(item)
            elif isinstance(item, GraphQLScalarType | GraphQLEnumType):
                step.kind = LEAF_LIST
                step.as_is = _AS_IS.get(item) if isinstance(item, GraphQLScalarType) else None
        return step

    # -- execution --------------------------------------------------------------

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        # Root fields (no path yet) are resolvers: nothing there is plain.
        plan = (
            None
            if path is None or position_context is not None
            else self._plan(parent_type, grouped_field_set)
        )
        if plan is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        if plan.build is not None:
            try:
                return plan.build(source_value)
            # _Fallback, or a getter failed: nothing below has run; the general path
            # below answers, errors included.
            except Exception:  # noqa: S110
                pass
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        is_awaitable = self.is_awaitable
        try:
            for step in plan.steps:
                name = step.name
                result: Any = Undefined
                if step.kind is not None:
                    try:
                        result = self._fast(step, parent_type, source_value, path)
                    except _Fallback:
                        result = Undefined
                if result is Undefined:
                    result = self.execute_field(
                        parent_type,
                        source_value,
                        step.details,
                        Path(path, name, parent_type.name),
                        None,
                    )
                    if result is Undefined:
                        continue
                results[name] = result
                if is_awaitable(result):
                    awaitable_fields.append(name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[f] for f in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            values = await gather_with_cancel(*(results[f] for f in awaitable_fields))
            results.update(zip(awaitable_fields, values, strict=True))
            return results

        return get_results()

    def _fast(
        self, step: _Step, parent_type: GraphQLObjectType, source: Any, path: Path | None
    ) -> Any:
        """The completed value of a plain field; ``_Fallback`` when it needs the general path."""
        kind = step.kind
        if kind == TYPENAME:
            return parent_type.name
        assert step.get is not None
        try:
            value = step.get(source)
        except Exception:
            raise _Fallback from None
        if value is None:
            if step.non_null:
                raise _Fallback
            return None
        if value is NOT_LOADED or value is Undefined or isinstance(value, Exception):
            raise _Fallback
        if kind == LEAF:
            return _leaf(step.named, step.as_is, value)
        if kind == LEAF_LIST:
            if type(value) is not list:
                raise _Fallback
            out: list[Any] = []
            for item in value:
                if item is None:
                    if step.item_non_null:
                        raise _Fallback
                    out.append(None)
                else:
                    out.append(_leaf(step.named, step.as_is, item))
            return out
        check = step.check
        if kind == OBJECT:
            if check is not None and not check(value):
                raise _Fallback
            return self._object(step, value, Path(path, step.name, parent_type.name))
        # OBJECT_LIST: check every item before running anything below them.
        if type(value) is not list:
            raise _Fallback
        for item in value:
            if item is None:
                if step.item_non_null:
                    raise _Fallback
            elif item is NOT_LOADED or (check is not None and not check(item)):
                raise _Fallback
        return self._object_list(step, value, Path(path, step.name, parent_type.name))

    def _subfields(self, step: _Step) -> GroupedFieldSet | None:
        grouped, new_defer_usages, _ = self.collect_subfields(step.named, step.details)
        return None if new_defer_usages else grouped

    def _object(self, step: _Step, value: Any, field_path: Path) -> Any:
        assert step.return_type is not None
        return self._complete(step, self._subfields(step), value, field_path, step.return_type)

    def _complete(
        self,
        step: _Step,
        grouped: GroupedFieldSet | None,
        value: Any,
        path: Path,
        type_: GraphQLOutputType,
    ) -> Any:
        """``value``'s subfields, completed; errors are handled at ``path`` as ``type_``'s."""
        try:
            if grouped is None:
                completed = self.collect_and_execute_subfields(
                    step.named, step.details, path, value, None
                )
            else:
                completed = self.execute_fields(step.named, value, path, grouped, None)
        except Exception as error:
            self.handle_field_error(error, type_, step.details, path)
            return None
        if self.is_awaitable(completed):
            return self._await_field(completed, type_, step.details, path)
        return completed

    def _object_list(self, step: _Step, items: list[Any], field_path: Path) -> Any:
        assert step.return_type is not None
        assert step.item_type is not None
        grouped = self._subfields(step)
        is_awaitable = self.is_awaitable
        completed: list[Any] = []
        pending: list[int] = []
        try:
            for index, item in enumerate(items):
                if item is None:
                    completed.append(None)
                    continue
                value = self._complete(
                    step, grouped, item, Path(field_path, index, None), step.item_type
                )
                if is_awaitable(value):
                    pending.append(index)
                completed.append(value)
        except Exception as error:
            if pending:
                self.settle_in_background([completed[i] for i in pending])
            self.handle_field_error(error, step.return_type, step.details, field_path)
            return None
        if not pending:
            return completed

        async def await_items() -> list[Any]:
            values = await gather_with_cancel(*(completed[i] for i in pending))
            for index, value in zip(pending, values, strict=True):
                completed[index] = value
            return completed

        return self._await_field(await_items(), step.return_type, step.details, field_path)

    async def _await_field(
        self,
        awaitable: Awaitable[Any],
        return_type: GraphQLOutputType,
        details: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await awaitable
        except Exception as error:
            self.handle_field_error(error, return_type, details, path)
            return None


def _variable_arguments(
    field: GraphQLField, details: FieldDetailsList
) -> tuple[tuple[str, str, bool], ...] | None:
    """When each of the field's arguments is given as an operation variable: per argument,
    the name it is passed by, the variable's, and whether it is non-null; else None.

    ``get_argument_values`` then takes each variable's coerced value as it is, unless
    the variable has none (the argument's default, or an error) or is null for a
    non-null argument (an error): those cases are left to it.
    """
    if details[0].fragment_variable_values is not None:
        return None
    given = {argument.name.value: argument.value for argument in details[0].node.arguments or ()}
    arguments: list[tuple[str, str, bool]] = []
    for name, definition in field.args.items():
        value = given.get(name)
        if not isinstance(value, VariableNode):
            return None
        non_null = isinstance(definition.type, GraphQLNonNull)
        arguments.append((definition.out_name or name, value.name.value, non_null))
    return tuple(arguments)


def _leaf(type_: GraphQLScalarType | GraphQLEnumType, as_is: type | None, value: Any) -> Any:
    if (
        as_is is not None
        and type(value) is as_is
        and (as_is is not int or _INT_MIN <= value <= _INT_MAX)  # type: ignore[operator]
    ):
        return value
    try:
        coerced = type_.coerce_output_value(value)
    except Exception:
        raise _Fallback from None
    if coerced is None or coerced is Undefined:
        raise _Fallback
    return coerced


# Readers for compiled subtrees: ``read(source)`` is the completed value or ``_Fallback``.


def _leaf_reader(
    get: Callable[[Any], Any], type_: Any, as_is: type | None, non_null: bool
) -> Callable[[Any], Any]:
    if as_is is int:

        def read_int(source: Any) -> Any:
            value = get(source)
            if type(value) is int and _INT_MIN <= value <= _INT_MAX:
                return value
            return _other_leaf(type_, non_null, value)

        return read_int
    if as_is is not None:

        def read_as_is(source: Any) -> Any:
            value = get(source)
            if type(value) is as_is:
                return value
            return _other_leaf(type_, non_null, value)

        return read_as_is

    if isinstance(type_, GraphQLEnumType):
        names: dict[Any, Any] = {}  # enum value -> its name (coercing an enum is pure)

        def read_enum(source: Any) -> Any:
            value = get(source)
            try:
                return names[value]
            except (KeyError, TypeError):
                name = names[value] = _other_leaf(type_, non_null, value)
                return name

        return read_enum

    def read(source: Any) -> Any:
        return _other_leaf(type_, non_null, get(source))

    return read


def _other_leaf(type_: Any, non_null: bool, value: Any) -> Any:
    if value is None:
        if non_null:
            raise _Fallback
        return None
    if value is NOT_LOADED or value is Undefined or isinstance(value, Exception):
        raise _Fallback
    return _leaf(type_, None, value)


def _own_is_type_of(object_type: GraphQLObjectType) -> bool:
    """Whether the type checks objects with a function of its own (it may need ``info``)."""
    if object_type.is_type_of is None:
        return False
    definition = object_type.extensions.get(STRAWBERRY_DEFINITION)
    return definition is None or definition.is_type_of is not None


def _type_check(object_type: GraphQLObjectType) -> Callable[[Any], bool] | None:
    """Strawberry's generated ``is_type_of`` without its info argument (it never reads it).

    It accepts an instance of the type's class that was not ``strawberry.cast`` to
    something else; that case is answered directly, anything else asks it.
    """
    is_type_of = object_type.is_type_of
    if is_type_of is None:
        return None
    origin = object_type.extensions[STRAWBERRY_DEFINITION].origin
    no_info: Any = None

    def check(value: Any) -> bool:
        if type(value) is origin and TYPE_CAST_ATTRIBUTE not in value.__dict__:
            return True
        return is_type_of(value, no_info) is True

    return check


def _object_reader(step: _Step, build: Callable[[Any], dict[str, Any]]) -> Callable[[Any], Any]:
    get, non_null, check = step.get, step.non_null, step.check
    assert get is not None

    def read(source: Any) -> Any:
        value = get(source)
        if value is None:
            if non_null:
                raise _Fallback
            return None
        if value is NOT_LOADED or (check is not None and not check(value)):
            raise _Fallback
        return build(value)

    return read


def _list_reader(step: _Step, build: Callable[[Any], dict[str, Any]]) -> Callable[[Any], Any]:
    get, non_null, item_non_null = step.get, step.non_null, step.item_non_null
    check = step.check
    assert get is not None

    def read(source: Any) -> Any:
        value = get(source)
        if value is None:
            if non_null:
                raise _Fallback
            return None
        if type(value) is not list:
            raise _Fallback
        out: list[Any] = []
        for item in value:
            if item is None:
                if item_non_null:
                    raise _Fallback
                out.append(None)
            elif item is NOT_LOADED or (check is not None and not check(item)):
                raise _Fallback
            else:
                out.append(build(item))
        return out

    return read
