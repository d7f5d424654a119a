"""The contract's scalars: `DateTime` (RFC 3339, served in UTC) and `BigInt` (a decimal string).

Inside jobgate both are plain integers: milliseconds since the epoch, and 64-bit numbers.
"""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from graphql import IntValueNode, StringValueNode, ValueNode
from strawberry.types.scalar import ScalarDefinition

from jobgate.domain.timestamps import parse_datetime, serialize_datetime

DateTime = NewType("DateTime", int)
BigInt = NewType("BigInt", int)

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


def parse_datetime_literal(node: ValueNode, _variables: Any = None) -> int:
    if isinstance(node, StringValueNode):
        return parse_datetime(node.value)
    raise ValueError("DateTime must be an RFC 3339 string")


def parse_bigint(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("BigInt must be an integer or a decimal string")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.lstrip("-").isdecimal():
        number = int(value)
    else:
        raise ValueError("BigInt must be an integer or a decimal string")
    if not BIGINT_MIN <= number <= BIGINT_MAX:
        raise ValueError("BigInt must fit in 64 bits")
    return number


def parse_bigint_literal(node: ValueNode, _variables: Any = None) -> int:
    if isinstance(node, IntValueNode | StringValueNode):
        return parse_bigint(node.value if isinstance(node, StringValueNode) else int(node.value))
    raise ValueError("BigInt must be an integer or a decimal string")


SCALARS: dict[object, ScalarDefinition] = {
    DateTime: strawberry.scalar(
        name="DateTime",
        description="An instant in RFC 3339 form with an offset, served in UTC with a `Z` and "
        "millisecond precision. Input without an offset is rejected.",
        specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339",
        serialize=serialize_datetime,
        parse_value=parse_datetime,
        parse_literal=parse_datetime_literal,
    ),
    BigInt: strawberry.scalar(
        name="BigInt",
        description="A 64-bit integer, served as a decimal string; input accepts a string or "
        "an Int.",
        serialize=str,
        parse_value=parse_bigint,
        parse_literal=parse_bigint_literal,
    ),
}
