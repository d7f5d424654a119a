"""Turning jobgate's errors into GraphQL errors that carry `extensions.code`."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from graphql import GraphQLError

from jobgate.errors import JobgateError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

UNEXPECTED_MESSAGE = "Unexpected error."


def as_graphql_error(error: JobgateError) -> GraphQLError:
    return GraphQLError(error.message, extensions={"code": error.code})


def unexpected_error() -> GraphQLError:
    return GraphQLError(UNEXPECTED_MESSAGE, extensions={"code": "INTERNAL_SERVER_ERROR"})


def coded(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Resolver decorator: expected errors keep their message and code; others are masked."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except Exception as error:
            leaving = translated(error, fn.__qualname__)
            if leaving is error:
                raise
            raise leaving from error

    return wrapper


def coded_stream(fn: Callable[P, AsyncIterator[T]]) -> Callable[P, AsyncIterator[T]]:
    """`coded` for subscription resolvers (async generators)."""
    assert inspect.isasyncgenfunction(fn)

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        try:
            async for item in fn(*args, **kwargs):
                yield item
        except Exception as error:
            leaving = translated(error, fn.__qualname__)
            if leaving is error:
                raise
            raise leaving from error

    return wrapper


def translated(error: Exception, where: str) -> GraphQLError:
    """The GraphQL error a resolver's exception leaves as."""
    if isinstance(error, GraphQLError):
        return error
    if isinstance(error, JobgateError):
        return as_graphql_error(error)
    log.error("unexpected error in %s", where, exc_info=error)
    return unexpected_error()
