"""Every GraphQL error leaves with a code; unexpected ones leave masked."""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLError

from jobgate.schema.build import with_code


def test_an_unexpected_error_is_masked_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    error = GraphQLError("db password is hunter2", original_error=RuntimeError("boom"))
    masked = with_code(error)
    assert masked.message == "Unexpected error."
    assert masked.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert "boom" in caplog.text


def test_coded_errors_pass_unchanged() -> None:
    error = GraphQLError("no", extensions={"code": "FORBIDDEN"})
    assert with_code(error) is error


def test_graphql_own_errors_get_a_code() -> None:
    assert with_code(GraphQLError("Cannot query field 'x'")).extensions == {
        "code": "GRAPHQL_VALIDATION_FAILED"
    }
    assert with_code(GraphQLError("Variable '$a' got invalid value")).extensions == {
        "code": "BAD_USER_INPUT"
    }
