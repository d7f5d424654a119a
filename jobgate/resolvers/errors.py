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
        except JobgateError as error:
            raise as_graphql_error(error) from error
        except GraphQLError:
            raise
        except Exception as error:
            log.exception("unexpected error in %s", fn.__qualname__)
            raise unexpected_error() from error

    return wrapper


def coded_stream(fn: Callable[P, AsyncIterator[T]]) -> Callable[P, AsyncIterator[T]]:
    """`coded` for subscription resolvers (async generators)."""
    assert inspect.isasyncgenfunction(fn)

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        try:
            async for item in fn(*args, **kwargs):
                yield item
        except JobgateError as error:
            raise as_graphql_error(error) from error
        except GraphQLError:
            raise
        except Exception as error:
            log.exception("unexpected error in %s", fn.__qualname__)
            raise unexpected_error() from error

    return wrapper
