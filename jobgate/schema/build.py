"""The Strawberry schema: types, resolvers, scalars and the extensions around execution."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig

from jobgate.resolvers.errors import UNEXPECTED_MESSAGE
from jobgate.resolvers.mutation import Mutation
from jobgate.resolvers.query import Query
from jobgate.resolvers.subscription import Subscription
from jobgate.schema.scalars import SCALARS

log = logging.getLogger(__name__)

CACHE_SIZE = 1024


class ErrorCodes(SchemaExtension):
    """Every error leaves with an `extensions.code`; unexpected ones leave masked.

    Resolvers already turn jobgate's own errors into coded GraphQL errors. What is left here is
    graphql-core's own (a document or variables that do not fit the schema) and anything that
    escaped a resolver, which is logged and masked.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [with_code(error) for error in errors]


def document_error_code(message: str) -> str:
    """The code of graphql-core's own error: variables that do not fit, or a document that does
    not fit the schema."""
    return "BAD_USER_INPUT" if message.startswith("Variable") else "GRAPHQL_VALIDATION_FAILED"


def with_code(error: GraphQLError) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        code, message = document_error_code(error.message), error.message
    else:
        log.error("unexpected error", exc_info=original)
        code, message = "INTERNAL_SERVER_ERROR", UNEXPECTED_MESSAGE
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**(error.extensions or {}), "code": code},
    )


def build_schema(*, caches: bool = True) -> strawberry.Schema:
    """The jobgate schema. `caches=False` drops the parser and validation caches (benchmarks)."""
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [ErrorCodes]
    if caches:
        # Factories: a fresh extension per request, sharing one module-level LRU cache.
        extensions += [
            functools.partial(ParserCache, maxsize=CACHE_SIZE),
            functools.partial(ValidationCache, maxsize=CACHE_SIZE),
        ]
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=extensions,
    )
