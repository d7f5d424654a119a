"""An agent outlives every failure that passes: a gateway whose store did not answer, a gateway
that failed unexpectedly (as an HTTP 5xx), a rate refusal. In a CI run, FerretDB's locked file
reached an agent as INTERNAL_SERVER_ERROR and the agent exited, leaving its jobs unrun."""

from __future__ import annotations

import pytest

from jobgate.agent.client import GatewayRefused, GatewayUnavailable, failure_of
from jobgate.agent.runner import command_in


@pytest.mark.parametrize("code", ["STORE_UNAVAILABLE", "INTERNAL_SERVER_ERROR", "RATE_LIMITED"])
def test_a_passing_failure_is_tried_again(code: str) -> None:
    failure = failure_of([{"message": "not now", "extensions": {"code": code}}], "ack")
    assert isinstance(failure, GatewayUnavailable)
    assert failure.message == "ack: not now"


@pytest.mark.parametrize("code", ["FORBIDDEN", "UNAUTHENTICATED", "BAD_USER_INPUT"])
def test_a_refusal_stays_a_refusal(code: str) -> None:
    errors = [
        {"message": "no", "extensions": {"code": code}},
        {"message": "no", "extensions": {"code": code}},
    ]
    failure = failure_of(errors)
    assert isinstance(failure, GatewayRefused)
    assert (failure.message, failure.codes) == ("no", [code, code])


def test_a_command_event_that_carries_errors_is_a_failure_not_a_crash() -> None:
    # Seen in a fault case: `{"data": null, "errors": [...]}` in a `next` message, and the
    # agent died on it with a TypeError.
    errors = [
        {"message": "the job store is unavailable", "extensions": {"code": "STORE_UNAVAILABLE"}}
    ]
    with pytest.raises(GatewayUnavailable):
        command_in({"data": None, "errors": errors})
    command = {"seq": "1", "kind": "SUBMIT"}
    assert command_in({"data": {"providerCommands": command}}) == command
