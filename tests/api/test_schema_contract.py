"""The served schema keeps every name and shape of the contract (../shared/api/schema.graphql)."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
)

from jobgate.schema.build import build_schema as build_jobgate_schema

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "api" / "schema.graphql"

# Parts the contract marks [live] or [providers]: they arrive with later issues.
LATER_TYPES: set[str] = set()
LATER_FIELDS: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def schemas() -> tuple[GraphQLSchema, GraphQLSchema]:
    if not CONTRACT.exists():
        pytest.fail(f"the contract is missing at {CONTRACT}")
    # Both from SDL: what a client sees when it introspects.
    return build_schema(CONTRACT.read_text()), build_schema(build_jobgate_schema().as_str())


def contract_types(contract: GraphQLSchema) -> list[str]:
    return sorted(
        name for name in contract.type_map if not name.startswith("__") and name not in LATER_TYPES
    )


def test_every_contract_type_is_served_with_the_same_kind(
    schemas: tuple[GraphQLSchema, GraphQLSchema],
) -> None:
    contract, served = schemas
    for name in contract_types(contract):
        assert name in served.type_map, f"{name} is missing"
        assert type(served.type_map[name]) is type(contract.type_map[name]), name


def test_every_contract_field_and_argument_has_the_same_type(
    schemas: tuple[GraphQLSchema, GraphQLSchema],
) -> None:
    contract, served = schemas
    for name in contract_types(contract):
        theirs, ours = contract.type_map[name], served.type_map[name]
        if isinstance(theirs, GraphQLObjectType | GraphQLInterfaceType):
            assert isinstance(ours, GraphQLObjectType | GraphQLInterfaceType)
            for field_name, field in theirs.fields.items():
                if (name, field_name) in LATER_FIELDS:
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


def test_the_parts_for_later_issues_are_not_served_yet(
    schemas: tuple[GraphQLSchema, GraphQLSchema],
) -> None:
    _, served = schemas
    assert not LATER_TYPES & set(served.type_map)
    for type_name, field_name in LATER_FIELDS:
        root = served.type_map[type_name]
        assert isinstance(root, GraphQLObjectType)
        assert field_name not in root.fields
