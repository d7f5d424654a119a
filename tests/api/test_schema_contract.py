"""The served schema keeps every name and shape of the contract.

The contract lives in the steering repository (`../shared/api/schema.graphql`); a copy of it is
pinned here (`tests/api/contract.graphql`) so that a checkout standing alone tests against it
too. Where `../shared` exists, the pinned copy must equal it and the served schema is compared
with both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
)

from jobgate.schema.build import build_schema as build_jobgate_schema

PINNED = Path(__file__).with_name("contract.graphql")
SHARED = Path(__file__).resolve().parents[3] / "shared" / "api" / "schema.graphql"
CONTRACTS = [PINNED, *([SHARED] if SHARED.exists() else [])]

# Parts the contract marks as optional: [sessions] (interactive sessions), served unless a site
# turns them off (`[sessions] enabled = false`), when none of them is. ([identity] is always
# served.)
OPTIONAL_TYPES: dict[str, set[str]] = {
    "[sessions]": {
        "InteractiveSessionType",
        "InteractiveSession",
        "InteractiveSessionRequest",
        "OpenInteractiveSessionsInput",
        "OpenInteractiveSessionsPayload",
    },
}
OPTIONAL_FIELDS: dict[str, set[tuple[str, str]]] = {
    "[sessions]": {
        ("Mutation", "openInteractiveSessions"),
        ("ComputeSupport", "web"),
        ("ComputeSupport", "terminal"),
        ("ComputeSupport", "vnc"),
    },
}
ALL_OPTIONAL_TYPES = set().union(*OPTIONAL_TYPES.values())
ALL_OPTIONAL_FIELDS = set().union(*OPTIONAL_FIELDS.values())


@pytest.fixture(scope="module")
def served() -> GraphQLSchema:
    # From SDL: what a client sees when it introspects.
    return build_schema(build_jobgate_schema().as_str())


def contract_of(path: Path) -> GraphQLSchema:
    return build_schema(path.read_text(encoding="utf-8"))


def contract_types(contract: GraphQLSchema, later: set[str]) -> list[str]:
    return sorted(
        name for name in contract.type_map if not name.startswith("__") and name not in later
    )


def test_the_pinned_contract_is_the_shared_one() -> None:
    if SHARED.exists():
        assert PINNED.read_text(encoding="utf-8") == SHARED.read_text(encoding="utf-8"), (
            f"the contract changed: copy {SHARED} to {PINNED}"
        )
    # Standing alone, the pinned copy is the contract; it must at least be one.
    assert "type Query" in PINNED.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", CONTRACTS, ids=lambda p: p.parent.parent.name)
def test_every_contract_type_is_served_with_the_same_kind(
    path: Path, served: GraphQLSchema
) -> None:
    assert_same_kinds(contract_of(path), served, set())


@pytest.mark.parametrize("path", CONTRACTS, ids=lambda p: p.parent.parent.name)
def test_every_contract_field_and_argument_has_the_same_type(
    path: Path, served: GraphQLSchema
) -> None:
    assert_same_fields(contract_of(path), served, set(), set())


def assert_same_kinds(contract: GraphQLSchema, served: GraphQLSchema, later: set[str]) -> None:
    for name in contract_types(contract, later):
        assert name in served.type_map, f"{name} is missing"
        assert type(served.type_map[name]) is type(contract.type_map[name]), name


def assert_same_fields(
    contract: GraphQLSchema,
    served: GraphQLSchema,
    later: set[str],
    later_fields: set[tuple[str, str]],
) -> None:
    for name in contract_types(contract, later):
        theirs, ours = contract.type_map[name], served.type_map[name]
        if isinstance(theirs, GraphQLObjectType | GraphQLInterfaceType):
            assert isinstance(ours, GraphQLObjectType | GraphQLInterfaceType)
            for field_name, field in theirs.fields.items():
                if (name, field_name) in later_fields:
                    continue
                assert field_name in ours.fields, f"{name}.{field_name} is missing"
                mine = ours.fields[field_name]
                assert str(mine.type) == str(field.type), f"{name}.{field_name}"
                for arg_name, arg in field.args.items():
                    assert arg_name in mine.args, f"{name}.{field_name}({arg_name})"
                    assert str(mine.args[arg_name].type) == str(arg.type), f"{name}.{field_name}"
                    assert mine.args[arg_name].default_value == arg.default_value
        elif isinstance(theirs, GraphQLInputObjectType):
            assert isinstance(ours, GraphQLInputObjectType)
            assert ours.is_one_of == theirs.is_one_of, name
            assert set(ours.fields) == set(theirs.fields), name
            for field_name, field in theirs.fields.items():
                assert str(ours.fields[field_name].type) == str(field.type), f"{name}.{field_name}"
        elif isinstance(theirs, GraphQLEnumType):
            assert isinstance(ours, GraphQLEnumType)
            assert set(theirs.values) <= set(ours.values), name
        elif isinstance(theirs, GraphQLUnionType):
            assert isinstance(ours, GraphQLUnionType)
            assert {t.name for t in ours.types} == {t.name for t in theirs.types}, name


def _marked(description: str | None) -> str | None:
    for mark in OPTIONAL_TYPES:
        if description is not None and description.startswith(mark):
            return mark
    return None


@pytest.mark.parametrize("path", CONTRACTS, ids=lambda p: p.parent.parent.name)
def test_every_part_the_contract_marks_optional_is_listed_here(path: Path) -> None:
    contract = contract_of(path)
    for name, named in contract.type_map.items():
        mark = _marked(named.description)
        if mark is not None:
            assert name in OPTIONAL_TYPES[mark], f"{name} is marked {mark}"
        if isinstance(named, GraphQLObjectType | GraphQLInputObjectType):
            for field_name, field in named.fields.items():
                mark = _marked(field.description)
                if mark is not None and name not in ALL_OPTIONAL_TYPES:
                    assert (name, field_name) in OPTIONAL_FIELDS[mark], f"{name}.{field_name}"
    # ...and every listed part is in the contract, so a rename there shows here.
    for name in ALL_OPTIONAL_TYPES:
        assert name in contract.type_map, name
    for type_name, field_name in ALL_OPTIONAL_FIELDS:
        owner: GraphQLNamedType = contract.type_map[type_name]
        assert isinstance(owner, GraphQLObjectType)
        assert field_name in owner.fields, f"{type_name}.{field_name}"


def test_with_sessions_turned_off_none_of_their_parts_is_served() -> None:
    """A site that turns sessions off serves the contract without its [sessions] parts, and
    nothing of them."""
    without = build_schema(build_jobgate_schema(sessions=False).as_str())
    assert ALL_OPTIONAL_TYPES, "the optional parts are listed"
    for name in ALL_OPTIONAL_TYPES:
        assert name not in without.type_map, f"{name} is served with sessions off"
    for type_name, field_name in ALL_OPTIONAL_FIELDS:
        root = without.type_map[type_name]
        assert isinstance(root, GraphQLObjectType)
        assert field_name not in root.fields, (
            f"{type_name}.{field_name} is served with sessions off"
        )
    for path in CONTRACTS:
        assert_same_kinds(contract_of(path), without, ALL_OPTIONAL_TYPES)
        assert_same_fields(contract_of(path), without, ALL_OPTIONAL_TYPES, ALL_OPTIONAL_FIELDS)
