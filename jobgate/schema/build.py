"""The Strawberry schema: types, resolvers, scalars and the extensions around execution."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField
from strawberry.types.graphql import OperationType

from jobgate.errors import JobgateError
from jobgate.metrics import root_field
from jobgate.resolvers.errors import UNEXPECTED_MESSAGE
from jobgate.resolvers.identity import IdentityMutation, IdentityQuery
from jobgate.resolvers.mutation import Mutation
from jobgate.resolvers.query import Query
from jobgate.resolvers.sessions import SessionMutation
from jobgate.resolvers.subscription import Subscription
from jobgate.schema.codes import (
    BAD_USER_INPUT,
    INTERNAL,
    PARSE_FAILED,
    VALIDATION_FAILED,
    code_of,
    tag,
)
from jobgate.schema.descriptions import describe
from jobgate.schema.executor import GraphqlCoreExecutor, JobgateExecutor
from jobgate.schema.limits import (
    DEFAULT_LIMITS,
    BoundedParse,
    BoundedParserCache,
    BoundedValidationCache,
    CostLimit,
    cached_validation,
    limit_rule,
)
from jobgate.schema.scalars import SCALARS
from jobgate.settings import LimitSettings

log = logging.getLogger(__name__)


class ErrorCodes(SchemaExtension):
    """Every error leaves with an `extensions.code`; unexpected ones leave masked.

    Resolvers already turn jobgate's own errors into coded GraphQL errors. What is left here is
    graphql-core's own, coded by the phase that found them: a document that does not parse
    (`GRAPHQL_PARSE_FAILED`), one that does not fit the schema (`GRAPHQL_VALIDATION_FAILED`,
    literals of the wrong type included), variables that do not fit (`BAD_USER_INPUT`); and
    anything that escaped a resolver, which is masked (`INTERNAL_SERVER_ERROR`).
    """

    def on_parse(self) -> Iterator[None]:
        yield
        self._tag(PARSE_FAILED)

    def on_validate(self) -> Iterator[None]:
        yield
        self._tag(VALIDATION_FAILED)

    def _tag(self, code: str) -> None:
        # In place: Strawberry has already put these very objects into its result.
        for error in self.execution_context.pre_execution_errors or []:
            tag(error, code)

    def on_execute(self) -> Iterator[None]:
        if _subscription_over_http(self.execution_context):
            # Raised here, it becomes the request's only error, before anything runs.
            raise GraphQLError(
                "subscriptions are served over WebSocket (graphql-transport-ws or graphql-ws), "
                "not over HTTP",
                extensions={"code": VALIDATION_FAILED},
            )
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [with_code(error) for error in errors]


def is_variable_error(message: str) -> bool:
    """graphql-core's message for variable values that do not fit their type."""
    return message.startswith("Variable '$")


def _subscription_over_http(context: ExecutionContext) -> bool:
    request = getattr(context.context, "request", None)
    try:
        operation = context.operation_type
    except RuntimeError:
        return False
    return operation is OperationType.SUBSCRIPTION and isinstance(request, Request)


def _copy(error: GraphQLError, message: str, code: str, *, keep_original: bool) -> GraphQLError:
    """The error, at the same place, with this message and code; without `keep_original`,
    nothing of what it wrapped (its cause, its other extensions) leaves with it."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error if keep_original else None,
        extensions={**(error.extensions or {}), "code": code} if keep_original else {"code": code},
    )


def is_unexpected(error: GraphQLError) -> bool:
    """An error no client could cause: something escaped a resolver (a bug, to be logged)."""
    code = code_of(error)
    if code is not None:
        return code == INTERNAL
    original = error.original_error
    if original is None or isinstance(original, GraphQLError | JobgateError):
        return False
    # Variable values that do not fit their type fail during execution, with no path.
    return not (error.path is None and is_variable_error(error.message))


def with_code(error: GraphQLError) -> GraphQLError:
    """The error with its code; an unexpected one with its message masked."""
    if code_of(error) is not None:
        return error
    if isinstance(error.original_error, JobgateError):
        # jobgate's own error from a field resolver that does not translate its errors (a
        # store that went away while `Job.updates` loaded): its code and message, as anywhere.
        original = error.original_error
        return _copy(error, original.message, original.code, keep_original=False)
    if is_unexpected(error):
        return _copy(error, UNEXPECTED_MESSAGE, INTERNAL, keep_original=False)
    # Left without a phase's code: variables that do not fit (coerced before execution).
    return _copy(error, error.message, BAD_USER_INPUT, keep_original=True)


class MeasureOperations(SchemaExtension):
    """Counts every operation Strawberry serves by root field and outcome, times it, and counts
    the limits that refused requests (`jobgate.metrics`). First in the list, so it sees the
    errors as they leave (coded by `ErrorCodes`)."""

    def on_operation(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        context = self.execution_context
        metrics = getattr(getattr(context.context, "services", None), "metrics", None)
        if metrics is None:  # a schema used without the app (tools, benchmarks)
            return
        valid = context.graphql_document if not context.pre_execution_errors else None
        operation = root_field(valid, context.operation_name)
        # The result carries the errors found before execution too (the same objects).
        errors = getattr(context.result, "errors", None) or context.pre_execution_errors or []
        outcome = (code_of(errors[0]) or INTERNAL) if errors else "ok"
        metrics.count_request(operation, outcome, time.perf_counter() - start)
        for error in errors:
            limit = (error.extensions or {}).get("limit")
            if isinstance(limit, str):
                metrics.refusals.labels(limit).inc()


@strawberry.type(name="Query")
class QueryRoot(Query, IdentityQuery):
    """Jobs and the catalog (`Query`), and who is calling (`IdentityQuery`)."""


@strawberry.type(name="Mutation")
class MutationRoot(Mutation, IdentityMutation, SessionMutation):
    """Jobs' lifecycle (`Mutation`), sharing and access tokens (`IdentityMutation`),
    interactive sessions (`SessionMutation`, left out with `[sessions] enabled = false`)."""


# The fields of interactive sessions (by GraphQL type and Python name): left out with
# `[sessions] enabled = false`; their own types are then unreachable, so unserved too.
SESSION_FIELDS = frozenset(
    {
        ("Mutation", "open_interactive_sessions"),
        ("ComputeSupport", "web"),
        ("ComputeSupport", "terminal"),
        ("ComputeSupport", "vnc"),
        ("ProviderCommand", "session"),
        ("Application", "interactive"),
    }
)


class JobgateSchema(strawberry.Schema):
    """Strawberry's schema, logging a client's mistake as one INFO line and only the
    unexpected with a traceback; without `sessions`, the fields of `SESSION_FIELDS` left out."""

    def __init__(self, *args: Any, sessions: bool = True, **kwargs: Any) -> None:
        self.sessions = sessions  # read by get_fields while the schema is built below
        super().__init__(*args, **kwargs)

    def get_fields(self, type_definition: StrawberryObjectDefinition) -> list[StrawberryField]:
        fields = super().get_fields(type_definition)
        if self.sessions:
            return fields
        return [f for f in fields if (type_definition.name, f.python_name) not in SESSION_FIELDS]

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if is_unexpected(error):
                log.error("unexpected error: %s", error.message, exc_info=error.original_error)
            else:
                # As the caller gets it: `ErrorCodes` codes the result after this runs.
                leaving = with_code(error)
                log.info("refused (%s): %.200s", code_of(leaving), leaving.message)


# Extensions the lean `jobUpdates` path applies itself (codes through `with_code`, the same
# bounded parse, the schema's validation rules); any other extension sends every subscription
# down Strawberry's path.
LEAN_PATH_EXTENSIONS: tuple[type[SchemaExtension], ...] = (
    MeasureOperations,  # the lean path counts its subscriptions itself
    ErrorCodes,
    AddValidationRules,
    BoundedParserCache,
    BoundedValidationCache,
    CostLimit,
)


def build_schema(
    *,
    caches: bool = True,
    plans: bool = True,
    limits: LimitSettings = DEFAULT_LIMITS,
    metrics: bool = True,
    sessions: bool = True,
) -> strawberry.Schema:
    """The jobgate schema, with the document `limits` on every path. `caches=False` parses and
    validates every document afresh (benchmarks); `plans=False` completes queries by
    graphql-core alone (comparisons); `metrics=False` measures no operation;
    `sessions` serves interactive sessions."""
    parse_bounded = BoundedParse(limits, cache=caches)
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        *([MeasureOperations] if metrics else []),
        ErrorCodes,
        functools.partial(AddValidationRules, [limit_rule(limits)]),
        # Factories: a fresh extension per request, sharing one bounded cache.
        functools.partial(BoundedParserCache, parse_bounded),
    ]
    if caches:
        validate = cached_validation(parse_bounded)
        extensions.append(functools.partial(BoundedValidationCache, limits, validate))
    # Last: it needs validation done, and the request's variables.
    extensions.append(functools.partial(CostLimit, limits))
    schema = JobgateSchema(
        execution_context_class=JobgateExecutor if plans else GraphqlCoreExecutor,
        query=QueryRoot,
        mutation=MutationRoot,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=extensions,
        sessions=sessions,
    )
    describe(schema._schema)
    return schema
