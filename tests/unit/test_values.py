"""Scalars, cursors, command rendering and token handling."""

from __future__ import annotations

import pytest

from jobgate.access import ProviderIdentity, User
from jobgate.auth import ANONYMOUS, Authenticator
from jobgate.cursors import decode_page_cursor, decode_position, encode_page_cursor
from jobgate.domain.catalog import render_command
from jobgate.domain.timestamps import parse_datetime, serialize_datetime
from jobgate.domain.values import (
    BooleanValue,
    FileValue,
    FloatingPointValue,
    IntegerValue,
    ModulesValue,
    PeerValue,
    TextValue,
    value_from_wire,
    value_to_wire,
)
from jobgate.errors import InvalidCursor
from jobgate.schema.scalars import parse_bigint
from jobgate.storage.base import JobFilter, JobOrder, OrderField, PageKey


def test_datetimes_are_served_in_utc_with_milliseconds() -> None:
    assert serialize_datetime(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    # The same second again (formatted once, then remembered), and its edges.
    assert serialize_datetime(1_700_000_000_000) == "2023-11-14T22:13:20.000Z"
    assert serialize_datetime(1_700_000_000_999) == "2023-11-14T22:13:20.999Z"
    assert serialize_datetime(0) == "1970-01-01T00:00:00.000Z"
    assert serialize_datetime(-1) == "1969-12-31T23:59:59.999Z"


def test_served_datetimes_parse_back_to_the_same_instant() -> None:
    for value in (0, 1, 999, 1_700_000_000_123, 253_402_300_799_999):
        assert parse_datetime(serialize_datetime(value)) == value


def test_datetimes_with_an_offset_parse_to_the_same_instant() -> None:
    assert parse_datetime("2023-11-14T23:13:20.123+01:00") == 1_700_000_000_123
    assert parse_datetime("2023-11-14T22:13:20.123Z") == 1_700_000_000_123


def test_datetimes_without_an_offset_are_rejected() -> None:
    with pytest.raises(ValueError, match="no offset"):
        parse_datetime("2023-11-14T22:13:20")


def test_bigints_take_strings_and_ints_within_64_bits() -> None:
    assert parse_bigint("9223372036854775807") == 2**63 - 1
    assert parse_bigint(-5) == -5
    for bad in ("9223372036854775808", "1.5", True, 1.5):
        with pytest.raises(ValueError, match="BigInt"):
            parse_bigint(bad)


def test_job_cursors_are_tied_to_their_filter_and_order() -> None:
    job_filter, order = JobFilter(application="echo"), JobOrder(OrderField.NAME)
    cursor = encode_page_cursor(PageKey("abc", 7), job_filter, order)
    assert decode_page_cursor(cursor, job_filter, order) == PageKey("abc", 7)
    with pytest.raises(InvalidCursor):
        decode_page_cursor(cursor, JobFilter(application="sleep"), order)
    with pytest.raises(InvalidCursor):
        decode_page_cursor(cursor, job_filter, JobOrder(OrderField.NAME, descending=False))
    with pytest.raises(InvalidCursor):
        decode_page_cursor("not-a-cursor", job_filter, order)


def test_update_cursors_are_log_positions() -> None:
    assert decode_position("42") == 42
    for bad in ("-1", "x", "1" * 19):
        with pytest.raises(InvalidCursor):
            decode_position(bad)


def test_commands_substitute_each_value_into_one_argument() -> None:
    argv = render_command(
        ["printf", "%s|%s", "{word}", "--times={times}", "{flag}"],
        {
            "word": TextValue("$(rm -rf /); echo"),
            "times": IntegerValue(3),
            "flag": BooleanValue(True),
        },
    )
    assert argv == ["printf", "%s|%s", "$(rm -rf /); echo", "--times=3", "true"]


def test_arguments_naming_an_absent_optional_parameter_are_left_out() -> None:
    assert render_command(["run", "--n={n}", "{x}"], {"x": FileValue("/data/in")}) == [
        "run",
        "/data/in",
    ]


@pytest.mark.parametrize(
    "value",
    [
        FileValue("/a", True),
        BooleanValue(False),
        TextValue("t"),
        IntegerValue(2**62),
        FloatingPointValue(0.5),
        PeerValue("db", "9"),
        ModulesValue(("a", "b")),
    ],
)
def test_parameter_values_survive_their_wire_form(value: object) -> None:
    assert value_from_wire(value_to_wire(value)) == value  # type: ignore[arg-type]


async def test_tokens_identify_users_and_providers_and_nothing_else() -> None:
    alice = User.member_of("alice", {"p"})
    authenticator = Authenticator({"a-token": alice, "p-token": ProviderIdentity("local")})
    assert (await authenticator.authenticate("Bearer a-token")).identity == alice
    local = ProviderIdentity("local")
    assert (await authenticator.authenticate("bearer p-token")).identity == local
    for header in ("Bearer wrong", "a-token", "Basic a-token", "Bearer "):
        refused = await authenticator.authenticate(header)
        assert refused.identity is None, header
        assert refused.rejection, header
    for nothing in ("", None):
        assert await authenticator.authenticate(nothing) == ANONYMOUS
