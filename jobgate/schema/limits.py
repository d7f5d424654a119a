"""What one GraphQL document may ask of the gateway, checked before anything runs.

Every path applies these, because they are schema extensions and validation rules: HTTP,
subscriptions on both WebSocket protocols through Strawberry, and the lean `jobUpdates` path
(which applies the schema's validation rules and parses through `bounded_parse`). A refusal is
a request error with `extensions.code` `LIMIT_EXCEEDED` and `extensions.limit` naming the
setting (`limits.max_depth`), so a client knows which bound it met.

- **Tokens** bound the parser's work: graphql-core stops at `max_tokens`.
- **Aliases, depth and cost** bound execution. Cost counts the fields the document may resolve:
  each field once per object it is resolved on, where a list field's size is its `first`
  argument (given as a literal; a variable counts as the largest page, `MAX_PAGE_SIZE`), or
  `ASSUMED_LIST_SIZE` for lists without one. A connection's `first` sizes the list below it.
- **Caches** keep parsed and validated documents only up to `max_cached_query_bytes`, so distinct
  large documents cannot fill memory.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_list_type,
    parse,
)
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from jobgate.schema.codes import LIMIT_EXCEEDED, PARSE_FAILED, tag
from jobgate.settings import LimitSettings

# The largest `first` a list field takes (services.jobs.MAX_PAGE_SIZE): what a variable may be.
MAX_PAGE_SIZE = 1000
# How many items a list field without `first` is counted as: a job has 3 to 5 updates in its
# life (IN_QUEUE, RUNNING, its end, the odd extension), its parameters a handful.
ASSUMED_LIST_SIZE = 5
CACHE_ENTRIES = 1024


# `[limits]` as the settings give them by default (their one owner is `LimitSettings`).
DEFAULT_LIMITS = LimitSettings()


def limit_error(message: str, setting: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": LIMIT_EXCEEDED, "limit": f"limits.{setting}"})


class BoundedParse:
    """graphql-core's `parse` with the token bound, caching documents up to the size bound.

    A syntax error leaves with `GRAPHQL_PARSE_FAILED`, a document past the bound with
    `LIMIT_EXCEEDED`.
    """

    def __init__(self, limits: LimitSettings, *, cache: bool = True) -> None:
        self.limits = limits
        self.cache = cache
        self._cached = functools.lru_cache(maxsize=CACHE_ENTRIES)(
            functools.partial(parse, max_tokens=limits.max_tokens)
        )

    def __call__(self, query: str) -> DocumentNode:
        try:
            if self.cache and len(query) <= self.limits.max_cached_query_bytes:
                return self._cached(query)
            return parse(query, max_tokens=self.limits.max_tokens)
        except GraphQLError as error:
            if "tokens. Parsing aborted" in error.message:
                raise limit_error(
                    f"the document has more than {self.limits.max_tokens} tokens "
                    "(limits.max_tokens)",
                    "max_tokens",
                ) from None
            tag(error, PARSE_FAILED)
            raise


class BoundedParserCache(SchemaExtension):
    """Parses with the token bound; caches only documents up to the size bound."""

    def __init__(self, parse_bounded: BoundedParse) -> None:
        super().__init__()
        self.parse_bounded = parse_bounded

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        failure: GraphQLError | None = None
        try:
            context.graphql_document = self.parse_bounded(context.query or "")
        except GraphQLError as error:
            # Not raised here: Strawberry turns only errors of its own parse into a refusal (on
            # a subscription, an error raised by this hook ends the connection's worker). Its
            # parse fails at once, at its first token (parsing up to the bound again doubled
            # the cost of every refused document), and its error becomes this one.
            failure = error
            context.parse_options["max_tokens"] = 0
        yield
        if failure is not None:
            for refusal in context.pre_execution_errors or []:
                # In place, as `ErrorCodes` tags: these very objects are in Strawberry's result.
                refusal.message = failure.message
                refusal.extensions = failure.extensions
                refusal.locations = failure.locations


class BoundedValidationCache(SchemaExtension):
    """Validates once per distinct document text, for documents up to the size bound."""

    def __init__(self, limits: LimitSettings, validate: Callable[..., list[GraphQLError]]) -> None:
        super().__init__()
        self.limits = limits
        self.validate = validate

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query or ""
        if len(query) <= self.limits.max_cached_query_bytes:
            errors = self.validate(query, context.schema._schema, context.validation_rules)
        else:
            assert context.graphql_document is not None, "parsed before it is validated"
            errors = validate_document(
                context.schema._schema, context.graphql_document, context.validation_rules
            )
        context.pre_execution_errors = errors
        yield


def cached_validation(parse_bounded: BoundedParse) -> Callable[..., Any]:
    """Validation results by document text (the parse of that text is cached alongside)."""

    @functools.lru_cache(maxsize=CACHE_ENTRIES)
    def validate(
        query: str, schema: GraphQLSchema, rules: tuple[type[ASTValidationRule], ...]
    ) -> list[GraphQLError]:
        return validate_document(schema, parse_bounded(query), rules)

    def validate_any(
        query: str, schema: GraphQLSchema, rules: Sequence[type[ASTValidationRule]]
    ) -> list[GraphQLError]:
        return validate(query, schema, tuple(rules))

    return validate_any


def limit_rule(limits: LimitSettings) -> type[ValidationRule]:
    """The aliases and depth bounds as one validation rule, for every path (they do not depend
    on variables, so they are cached with the rest of validation)."""

    class DocumentLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments: dict[str, FragmentDefinitionNode] = {}

        def enter_document(self, node: DocumentNode, *_args: object) -> None:
            self.fragments = _fragments(node)
            aliases = _count_aliases(node)
            if aliases > limits.max_aliases:
                self.report_error(
                    limit_error(
                        f"the document has {aliases} aliases; at most {limits.max_aliases}",
                        "max_aliases",
                    )
                )

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: object) -> Any:
            walk = _Walk(self.context.schema, self.fragments, limits, variables=None)
            walk.operation(node)
            if walk.deepest > limits.max_depth:
                self.report_error(
                    limit_error(
                        f"the document nests {walk.deepest} fields deep; at most "
                        f"{limits.max_depth}",
                        "max_depth",
                    )
                )
            return None

    return DocumentLimits


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    limits: LimitSettings,
) -> int | None:
    """What the operation may cost with these variables; None if the document has no such
    operation (validation reports that)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    walk = _Walk(schema, _fragments(document), limits, variables=variables or {})
    walk.operation(operation)
    return walk.cost


def cost_problem(cost: int | None, limits: LimitSettings) -> GraphQLError | None:
    """Why an operation of this cost is refused, or None."""
    if cost is None or cost <= limits.max_cost:
        return None
    return limit_error(
        f"the document may resolve {cost} fields; at most {limits.max_cost} "
        "(a list counts as its `first`)",
        "max_cost",
    )


@runtime_checkable
class ChargesCost(Protocol):
    """A request context that spends a caller's allowance (`jobgate.schema.context.Context`)."""

    async def charge_cost(self, cost: int) -> GraphQLError | None: ...


class CostLimit(SchemaExtension):
    """Refuses an operation past `max_cost`, with its variables' values, after validation (the
    schema's last extension, so the validation cache has run), and spends its cost from the
    caller's allowance per minute (`limits.cost_per_minute`)."""

    def __init__(self, limits: LimitSettings) -> None:
        super().__init__()
        self.limits = limits

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            if context.pre_execution_errors is None:
                context.pre_execution_errors = validate_document(
                    context.schema._schema, document, context.validation_rules
                )
            if not context.pre_execution_errors:
                cost = operation_cost(
                    context.schema._schema,
                    document,
                    context.operation_name,
                    context.variables,
                    self.limits,
                )
                problem = cost_problem(cost, self.limits)
                charges = context.context
                if problem is None and cost is not None and isinstance(charges, ChargesCost):
                    problem = await charges.charge_cost(cost)
                if problem is not None:
                    context.pre_execution_errors = [problem]
        yield


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _count_aliases(document: DocumentNode) -> int:
    count = 0
    stack: list[Any] = list(document.definitions)
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode) and node.alias is not None:
            count += 1
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return count


@dataclass(frozen=True, slots=True)
class _At:
    """Where the walk is: how deep, how many times the current field resolves, the page size a
    connection above set for the list below, and whether it is inside introspection."""

    depth: int = 1
    multiplier: int = 1
    page: int | None = None
    introspection: bool = False


class _Walk:
    """Depth and cost of one operation, fragments spread where they are used.

    Introspection is bounded by the schema, not by `first`: it counts towards the depth, not
    the cost (GraphiQL's own query would cost about 50,000 by this model). graphql-core's own
    rule (`MaxIntrospectionDepthRule`) refuses the cyclic introspection query
    (`types { fields { type { fields { type { fields ... } } } } }`).
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        limits: LimitSettings,
        *,
        variables: dict[str, Any] | None,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.limits = limits
        self.variables = variables  # None: depth only
        self.deepest = 0
        self.cost = 0
        self._spreading: set[str] = set()

    @property
    def exceeded(self) -> bool:
        return self.deepest > self.limits.max_depth or self.cost > self.limits.max_cost

    def operation(self, node: OperationDefinitionNode) -> None:
        root = self.schema.get_root_type(node.operation)
        if root is not None:
            self.selections(node.selection_set, root, _At())

    def selections(self, selection_set: SelectionSetNode, parent: Any, at: _At) -> None:
        """Walk a selection set. Fragments on other types than `parent` (the branches of a
        union or an interface) are exclusive: each object takes one, so only the costliest
        counts."""
        if self.exceeded:
            return  # the answer is known: a hostile document costs little more here
        branches: dict[str, int] = {}
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.field(selection, parent, at)
                continue
            if isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on_name = None if condition is None else condition.name.value
                inner = selection.selection_set
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in self._spreading:
                    continue  # unknown or cyclic: other rules report those
                on_name, inner = fragment.type_condition.name.value, fragment.selection_set
            else:
                continue
            on = parent if on_name is None else self._type(on_name, parent)
            before = self.cost
            if isinstance(selection, FragmentSpreadNode):
                self._spreading.add(selection.name.value)
            self.selections(inner, on, at)
            if isinstance(selection, FragmentSpreadNode):
                self._spreading.discard(selection.name.value)
            if on is not parent and on_name is not None:
                # A branch: set its cost aside, and keep the costliest per selection set.
                branches[on_name] = branches.get(on_name, 0) + self.cost - before
                self.cost = before
        self.cost += max(branches.values(), default=0)

    def field(self, node: FieldNode, parent: Any, at: _At) -> None:
        name = node.name.value
        if name == "__typename":
            return
        self.deepest = max(self.deepest, at.depth)
        introspection = at.introspection or name.startswith("__")
        if not introspection and self.variables is not None:
            self.cost += at.multiplier
        definition = self.schema.get_field(parent, name)
        if definition is None or node.selection_set is None:
            return
        field_type: GraphQLOutputType = definition.type
        multiplier, page = at.multiplier, at.page
        first = _first_argument(node, definition, self.variables or {})
        if not introspection and is_list_type(get_nullable_type(field_type)):
            multiplier *= page if page is not None else (first or ASSUMED_LIST_SIZE)
            page = None
        elif not introspection and first is not None:
            page = first  # a connection: the list below it has this many items
        below = _At(at.depth + 1, multiplier, page, introspection)
        self.selections(node.selection_set, get_named_type(field_type), below)

    def _type(self, name: str, parent: Any) -> Any:
        return self.schema.get_type(name) or parent


def _first_argument(node: FieldNode, definition: Any, variables: dict[str, Any]) -> int | None:
    """The list size `first` asks for: a literal, a variable's value, or the argument's default
    (a variable given no value); the largest page when none of these is a number."""
    for argument in node.arguments or ():
        if argument.name.value != "first":
            continue
        value: Any = None
        if isinstance(argument.value, IntValueNode):
            # A literal of thousands of digits is the Int type's to refuse, not int()'s.
            text = argument.value.value
            value = int(text) if len(text) <= 9 else MAX_PAGE_SIZE
        elif isinstance(argument.value, VariableNode):
            value = variables.get(argument.value.name.value)
            if value is None:
                default = getattr(definition.args.get("first"), "default_value", None)
                value = default if isinstance(default, int) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return max(0, min(value, MAX_PAGE_SIZE))
        return MAX_PAGE_SIZE
    return None
