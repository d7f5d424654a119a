"""Every GraphQL error leaves with a code; unexpected ones leave masked, and only they are
logged with a traceback."""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLError

from jobgate.errors import StoreUnavailable
from jobgate.schema.build import build_schema, is_unexpected, with_code


def test_an_unexpected_error_is_masked() -> None:
    error = GraphQLError("db password is hunter2", original_error=RuntimeError("boom"))
    masked = with_code(error)
    assert masked.message == "Unexpected error."
    assert masked.extensions == {"code": "INTERNAL_SERVER_ERROR"}


def test_coded_errors_pass_unchanged() -> None:
    error = GraphQLError("no", extensions={"code": "FORBIDDEN"})
    assert with_code(error) is error


def test_variables_that_do_not_fit_are_bad_user_input() -> None:
    coerced = GraphQLError("Variable '$a' got invalid value", original_error=ValueError("x"))
    assert not is_unexpected(coerced)
    assert with_code(coerced).extensions == {"code": "BAD_USER_INPUT"}


def test_only_the_unexpected_is_logged_with_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    schema = build_schema()
    schema.process_errors(
        [
            GraphQLError("send a token", extensions={"code": "UNAUTHENTICATED"}),
            GraphQLError("Syntax Error: x", extensions={"code": "GRAPHQL_PARSE_FAILED"}),
        ]
    )
    assert [(r.levelno, r.exc_info) for r in caplog.records] == [(logging.INFO, None)] * 2
    caplog.clear()
    schema.process_errors([GraphQLError("boom", original_error=RuntimeError("boom"))])
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None


def test_a_refusal_is_logged_with_the_code_its_caller_gets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A store that went away under a field resolver that does not translate its own errors
    # (`Job.updates`): the caller gets STORE_UNAVAILABLE, and so must the log say.
    caplog.set_level(logging.INFO)
    error = GraphQLError("x", original_error=StoreUnavailable("the job store is unavailable"))
    assert with_code(error).extensions == {"code": "STORE_UNAVAILABLE"}
    build_schema().process_errors([error])
    (record,) = caplog.records
    assert record.getMessage() == "refused (STORE_UNAVAILABLE): the job store is unavailable"
