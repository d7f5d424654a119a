"""`WatchPlan`: a `jobUpdates` subscription the lean path can serve, or `None` for the rest.

A subscribe message qualifies when its document is valid under the schema's own rules (graphql-
core's specified rules, Strawberry's, and those its `AddValidationRules` extensions add),
its operation is a subscription whose root selection is the `jobUpdates` field alone with no
directive on it, and its variables coerce. Everything else, including every document with an
error, goes through Strawberry's own path, so errors keep exactly the shape they have there.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_argument_values,
    get_operation_ast,
    parse,
    specified_rules,
    visit,
)
from graphql.validation import ASTValidationRule
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.schema.schema import validate_document

from jobgate.metrics import root_field
from jobgate.schema.build import LEAN_PATH_EXTENSIONS
from jobgate.schema.context import PERMISSIONS_KEY
from jobgate.schema.limits import (
    DEFAULT_LIMITS,
    BoundedParserCache,
    CostLimit,
    cost_problem,
    operation_cost,
)
from jobgate.settings import LimitSettings

ROOT_FIELD = "jobUpdates"
DOCUMENT_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class WatchPlan:
    """What one subscriber asked for: the document to render each event with, and the
    arguments of `jobUpdates`. Subscribers with equal `key`s get equal payloads (given the
    same caller), so they share one rendering per event."""

    document: DocumentNode
    operation_name: str | None
    variables: dict[str, Any]
    job_ids: list[str] | None
    after: str | None
    key: tuple[str, str | None, str]
    depends_on_permissions: bool
    # What the operation costs (`[limits] max_cost`'s count), spent from the caller's allowance.
    cost: int = 0


class WatchPlanner:
    """Parses and validates documents once per distinct text (an LRU, as Strawberry's caches).

    The lean path applies what the schema applies or steps aside: with `enabled=False`, or when
    the schema has an extension the lean path does not know to apply (`known_extensions`),
    every operation takes Strawberry's path.
    """

    def __init__(
        self,
        schema: strawberry.Schema,
        *,
        enabled: bool = True,
        known_extensions: tuple[type[SchemaExtension], ...] = LEAN_PATH_EXTENSIONS,
    ) -> None:
        # graphql-core's schema behind Strawberry's: the lean path executes against it directly.
        self.graphql_schema: GraphQLSchema = schema._schema
        self.executor_class = schema.execution_context_class
        rules: list[type[ASTValidationRule]] = list(specified_rules)
        self.unknown_extensions: list[str] = []
        self._parse: Callable[[str], DocumentNode] = parse
        self._max_cached = DEFAULT_LIMITS.max_cached_query_bytes
        self._cost_limits: LimitSettings | None = None
        for extension in schema.extensions:
            # A class or a factory (Strawberry makes one per request): make one to look at.
            made = extension if isinstance(extension, SchemaExtension) else extension()
            if isinstance(made, AddValidationRules):
                rules.extend(made.validation_rules)
            elif isinstance(made, CostLimit):
                self._cost_limits = made.limits
            elif isinstance(made, BoundedParserCache):
                self._parse = made.parse_bounded  # the same token bound and cache
                self._max_cached = made.parse_bounded.limits.max_cached_query_bytes
            elif not isinstance(made, known_extensions):
                self.unknown_extensions.append(type(made).__name__)
        self.validation_rules = tuple(rules)
        self.enabled = enabled and not self.unknown_extensions
        self._cached_document = functools.lru_cache(maxsize=DOCUMENT_CACHE_SIZE)(
            self._valid_document
        )

    def subscription_field(self, query: str, operation_name: str | None) -> str:
        """The root field a subscription document asks for, or `invalid` for one that does
        not parse or validate (or is no subscription): a label from the schema's names only."""
        analysed = self._document(query)
        document = None if analysed is None else analysed[0]
        return root_field(document, operation_name, OperationType.SUBSCRIPTION)

    def _document(self, query: str) -> tuple[DocumentNode, bool] | None:
        # Only documents up to the size bound are kept: distinct large ones cannot fill memory.
        if len(query) <= self._max_cached:
            return self._cached_document(query)
        return self._valid_document(query)

    def plan(
        self, query: str, variables: dict[str, Any] | None, operation_name: str | None
    ) -> WatchPlan | None:
        if not self.enabled:
            return None
        analysed = self._document(query)
        if analysed is None:
            return None
        document, depends_on_permissions = analysed
        cost = 0
        if self._cost_limits is not None:
            found = operation_cost(
                self.graphql_schema, document, operation_name, variables, self._cost_limits
            )
            if cost_problem(found, self._cost_limits):
                return None  # Strawberry's path refuses it, with its code
            cost = found or 0
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
            return None
        selections = operation.selection_set.selections
        if len(selections) != 1:
            return None
        field = selections[0]
        if not isinstance(field, FieldNode) or field.name.value != ROOT_FIELD or field.directives:
            return None
        executor = self.executor_class.build(
            self.graphql_schema, document, None, None, variables, operation_name
        )
        if isinstance(executor, list):
            return None  # variables that do not coerce: Strawberry reports them
        subscription = self.graphql_schema.subscription_type
        assert subscription is not None
        try:
            arguments = get_argument_values(
                subscription.fields[ROOT_FIELD], field, executor.variable_values
            )
        except GraphQLError:
            return None
        job_ids = arguments.get("jobIds")
        canonical = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
        return WatchPlan(
            document=document,
            operation_name=operation_name,
            variables=dict(variables or {}),
            job_ids=None if job_ids is None else [str(job_id) for job_id in job_ids],
            after=arguments.get("after"),
            key=(query, operation_name, canonical),
            depends_on_permissions=depends_on_permissions,
            cost=cost,
        )

    def _valid_document(self, query: str) -> tuple[DocumentNode, bool] | None:
        """The parsed document, if valid, and whether any field it selects (in any fragment,
        too) depends on who asks."""
        try:
            document = self._parse(query)
        except GraphQLError:
            return None  # Strawberry's path reports it, with its code
        if validate_document(self.graphql_schema, document, self.validation_rules):
            return None
        type_info = TypeInfo(self.graphql_schema)
        finder = _CallerDependentField(type_info)
        visit(document, TypeInfoVisitor(type_info, finder))
        return document, finder.found


class _CallerDependentField(Visitor):
    """Finds a selected field whose Strawberry definition carries `DEPENDS_ON_PERMISSIONS`."""

    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.found = False

    def enter_field(self, *_args: object) -> None:
        definition = self.type_info.get_field_def()
        strawberry_field = (
            None if definition is None else definition.extensions.get("strawberry-definition")
        )
        metadata = getattr(strawberry_field, "metadata", None) or {}
        if metadata.get(PERMISSIONS_KEY):
            self.found = True
